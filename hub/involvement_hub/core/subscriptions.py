"""Declarative subscription rules: who wants to hear about what, by role and link.

Rules live in ``subscriptions/rules.toml`` and express demand ("a child's lead practitioner
hears about everything that happens to the child"). The governance policy expresses
permission; routing sends only what a rule asks for *and* the policy allows, and records a
suppression for what a rule asks for but the policy forbids.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import SubscriptionError
from .policy import Link, Policy, RecipientRole, all_kinds


@dataclass(frozen=True, slots=True)
class SubscriptionRule:
    rule_id: str
    description: str
    role: RecipientRole
    kinds: tuple[str, ...]  # expanded from the file's glob patterns
    links: frozenset[Link]

    def matches(self, kind: str, link: Link) -> bool:
        return link in self.links and kind in self.kinds


@dataclass(frozen=True, slots=True)
class SubscriptionRules:
    rules: tuple[SubscriptionRule, ...]

    def matching(self, kind: str, link: Link) -> tuple[SubscriptionRule, ...]:
        return tuple(r for r in self.rules if r.matches(kind, link))


def parse_rules(
    data: Mapping[str, Any], policy: Policy, origin: str = "rules"
) -> SubscriptionRules:
    unknown = sorted(set(data) - {"rule"})
    if unknown:
        raise SubscriptionError(f"{origin}: unknown key '{unknown[0]}'; rules are [[rule]] tables")
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list) or not raw_rules:
        raise SubscriptionError(f"{origin}: needs at least one [[rule]]")
    rules = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_rules):
        rule = _rule(raw, f"{origin}: rule {index + 1}")
        if rule.rule_id in seen:
            raise SubscriptionError(f"{origin}: rule id '{rule.rule_id}' is used twice")
        seen.add(rule.rule_id)
        _check_allowed(rule, policy, origin)
        rules.append(rule)
    return SubscriptionRules(tuple(rules))


_KEYS = {"id", "description", "role", "kinds", "links"}


def _rule(raw: Any, where: str) -> SubscriptionRule:
    if not isinstance(raw, Mapping):
        raise SubscriptionError(f"{where}: must be a table")
    extra = sorted(set(raw) - _KEYS)
    if extra:
        raise SubscriptionError(
            f"{where}: unknown key '{extra[0]}'; allowed: {', '.join(sorted(_KEYS))}"
        )
    for key in ("id", "role", "kinds"):
        if key not in raw:
            raise SubscriptionError(f"{where}: missing '{key}'")
    rule_id = raw["id"]
    where = f"{where} ({rule_id})"
    try:
        role = RecipientRole(raw["role"])
    except ValueError:
        allowed = ", ".join(r.value for r in RecipientRole)
        raise SubscriptionError(f"{where}: role {raw['role']!r} is not one of {allowed}") from None
    patterns = raw["kinds"]
    if not isinstance(patterns, list) or not patterns:
        raise SubscriptionError(f"{where}: 'kinds' must be a non-empty list of kinds or patterns")
    kinds: list[str] = []
    for pattern in patterns:
        matched = fnmatch.filter(all_kinds(), str(pattern))
        if not matched:
            raise SubscriptionError(f"{where}: kind pattern {pattern!r} matches no event kind")
        kinds.extend(k for k in matched if k not in kinds)
    try:
        links = frozenset(Link(x) for x in raw.get("links", ["SELF"]))
    except ValueError:
        allowed = ", ".join(x.value for x in Link)
        raise SubscriptionError(f"{where}: 'links' must be drawn from {allowed}") from None
    return SubscriptionRule(
        str(rule_id), str(raw.get("description", "")), role, tuple(kinds), links
    )


def _check_allowed(rule: SubscriptionRule, policy: Policy, origin: str) -> None:
    """A rule the policy can never satisfy is a mistake worth stopping for."""
    for kind in rule.kinds:
        entry = policy.for_kind(kind)
        if entry is None or rule.role not in entry.recipient_roles:
            continue
        if rule.links & (entry.fan_out | {Link.SELF}):
            return
    raise SubscriptionError(
        f"{origin}: rule '{rule.rule_id}' can never send anything: the policy allows "
        f"{rule.role.value} none of its kinds through any of its links"
    )
