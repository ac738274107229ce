"""Everything the hub loads and validates before it starts: schemas, policy, rules.

The loaders: they read the files and hand their contents to the core's parsers
(``core.policy.parse_policy``, ``core.subscriptions.parse_rules``), which do no I/O. A
problem in any of them is a :class:`ConfigError` (or :class:`SchemaError`) whose message
names the file and the problem; the command line prints it and exits with status 2.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from involvement_hub_producer import SchemaRegistry

from involvement_hub.core.delivery_plan import DeliveryPlan
from involvement_hub.core.errors import ConfigError, PolicyError, SubscriptionError
from involvement_hub.core.policy import Policy, parse_policy
from involvement_hub.core.subscriptions import SubscriptionRules, parse_rules
from involvement_hub.core.vocabulary import Vocabulary, VocabularyError, parse_vocabulary
from involvement_hub.delivery.settings_files import load_plan
from involvement_hub.settings import Settings

RULES_FILE = "rules.toml"


def _read_toml(path: Path, error: type[ConfigError], what: str) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise error(f"{what} not found: {path}") from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise error(f"{path}: {exc}") from exc


def load_policy(path: Path) -> Policy:
    """Read and validate a policy file; :class:`PolicyError` names any problem."""
    return parse_policy(_read_toml(path, PolicyError, "policy file"), str(path))


def load_vocabulary(path: Path) -> Vocabulary:
    """Read and validate the emails' words; :class:`VocabularyError` names any problem."""
    return parse_vocabulary(_read_toml(path, VocabularyError, "vocabulary file"), str(path))


def load_rules(folder: Path, policy: Policy) -> SubscriptionRules:
    """Read and validate ``rules.toml`` in ``folder`` against the policy."""
    path = folder / RULES_FILE
    return parse_rules(_read_toml(path, SubscriptionError, "subscription rules"), policy, str(path))


@dataclass(frozen=True)
class HubConfig:
    registry: SchemaRegistry
    policy: Policy
    rules: SubscriptionRules
    delivery: DeliveryPlan
    vocabulary: Vocabulary


def load_registry(folder: Path | None) -> SchemaRegistry:
    """The writer schemas in ``folder``, or those shipped with the hub when it is None.

    :class:`SchemaError` names any problem, :class:`IncompatibleSchemaError` each way in
    which a version of a record cannot read an earlier one or be read by it.
    """
    return SchemaRegistry.from_directory(folder) if folder else SchemaRegistry.packaged()


def load_config(settings: Settings) -> HubConfig:
    registry = load_registry(settings.schema_dir)
    policy = load_policy(settings.policy_file)
    rules = load_rules(settings.subscriptions_dir, policy)
    delivery = load_plan(settings.subscriptions_dir)
    vocabulary = load_vocabulary(settings.vocabulary_path)
    return HubConfig(registry, policy, rules, delivery, vocabulary)
