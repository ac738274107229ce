"""Everything the hub loads and validates before it starts: schemas, policy, rules.

A problem in any of them is a :class:`ConfigError` (or :class:`SchemaError`) whose message
names the file and the problem; the command line prints it and exits with status 2.
"""

from __future__ import annotations

from dataclasses import dataclass

from involvement_hub_producer import SchemaRegistry

from involvement_hub.core.delivery_plan import DeliveryPlan
from involvement_hub.core.policy import Policy, load_policy
from involvement_hub.core.subscriptions import SubscriptionRules, load_rules
from involvement_hub.delivery.settings_files import load_plan
from involvement_hub.settings import Settings


@dataclass(frozen=True)
class HubConfig:
    registry: SchemaRegistry
    policy: Policy
    rules: SubscriptionRules
    delivery: DeliveryPlan


def load_config(settings: Settings) -> HubConfig:
    registry = (
        SchemaRegistry.from_directory(settings.schema_dir)
        if settings.schema_dir
        else SchemaRegistry.packaged()
    )
    policy = load_policy(settings.policy_file)
    rules = load_rules(settings.subscriptions_dir, policy)
    delivery = load_plan(settings.subscriptions_dir)
    return HubConfig(registry, policy, rules, delivery)
