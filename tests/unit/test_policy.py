"""The governance policy (IG-1, core/policy.py): the shipped file, and every way to get it wrong."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from involvement_hub.config import load_policy
from involvement_hub.core.model import LawfulBasis, ServiceCategory, Urgency
from involvement_hub.core.policy import (
    ContentLevel,
    Link,
    RecipientRole,
    all_kinds,
    parse_policy,
)
from involvement_hub.errors import ConfigError, PolicyError
from support.core_builders import POLICY_FILE

ENTRY: dict[str, Any] = {
    "lawful_basis": "PUBLIC_TASK",
    "recipient_roles": ["LEAD_PRACTITIONER"],
    "content_level": "REFERENCE",
    "urgency": "ROUTINE",
}
VALID: dict[str, Any] = {"version": "t-1", "grace_period_days": 7, "kind": {"BIRTH": ENTRY}}


def with_change(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(VALID)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


def without(path: tuple[str, ...]) -> dict[str, Any]:
    data = copy.deepcopy(VALID)
    target = data
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return data


# --- The shipped file --------------------------------------------------------------------


def test_the_shipped_policy_loads() -> None:
    policy = load_policy(POLICY_FILE)
    assert policy.version
    assert policy.grace_period == dt.timedelta(days=14)


def test_the_shipped_policy_decides_on_every_kind_but_other() -> None:
    # OTHER is absent on purpose: an event its sender could not classify is quarantined
    # (no_policy) for a person to look at, rather than sent to practitioners on a guess.
    policy = load_policy(POLICY_FILE)
    assert set(policy.kinds) == set(all_kinds()) - {"OTHER"}


def test_the_shipped_policy_reads_its_values() -> None:
    entry = load_policy(POLICY_FILE).kinds["DOMESTIC_ABUSE_INCIDENT"]
    assert entry.lawful_basis is LawfulBasis.PUBLIC_TASK
    assert entry.recipient_roles == {RecipientRole.LEAD_PRACTITIONER}
    assert entry.content_level is ContentLevel.REFERENCE
    assert entry.urgency is Urgency.URGENT
    assert entry.fan_out == {
        Link.PARENT,
        Link.PARTNER,
        Link.PARENTS_PARTNER,
        Link.CARER,
        Link.HOUSEHOLD_MEMBER,
    }
    assert entry.service_categories == frozenset(ServiceCategory)


@pytest.mark.parametrize("kind", ["SUBSCRIPTION_STARTED", "SUBSCRIPTION_ENDED"])
def test_subscription_changes_alert_nobody(kind: str) -> None:
    # A subscription changes state only: no role may be told that one started or ended.
    entry = load_policy(POLICY_FILE).kinds[kind]
    assert entry.recipient_roles == frozenset()
    assert entry.fan_out == frozenset()


def test_explicit_subscribers_are_allowed_only_where_the_policy_says() -> None:
    policy = load_policy(POLICY_FILE)
    allowed = {
        k for k, e in policy.kinds.items() if RecipientRole.EXPLICIT_SUBSCRIBER in e.recipient_roles
    }
    assert {"SCHOOL_EXCLUSION", "POLICE_CUSTODY", "INVOLVEMENT_STARTED"} <= allowed
    # Health and safeguarding-incident details stay with the lead practitioner.
    assert not allowed & {"HOSPITAL_ATTENDANCE", "HOSPITAL_ADMISSION", "DOMESTIC_ABUSE_INCIDENT"}


def test_a_minimal_policy_takes_its_defaults() -> None:
    policy = parse_policy({"version": " v1 ", "kind": {"BIRTH": ENTRY}})
    assert policy.version == "v1"
    assert policy.grace_period == dt.timedelta(days=14)
    assert policy.kinds["BIRTH"].fan_out == frozenset()
    assert policy.for_kind("DEATH") is None


def test_content_levels_include_the_ones_before_them() -> None:
    empty, reference, summary = ContentLevel
    assert summary.includes(reference)
    assert summary.includes(empty)
    assert reference.includes(empty)
    assert not reference.includes(summary)
    assert not empty.includes(reference)


def test_all_kinds_covers_involvements_life_events_and_relationships() -> None:
    kinds = all_kinds()
    assert len(kinds) == len(set(kinds))
    assert {"INVOLVEMENT_STARTED", "RELATIONSHIP_ENDED", "SCHOOL_EXCLUSION", "OTHER"} <= set(kinds)


# --- Errors name the problem -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            {**VALID, "kind": {"BIRTHDAY": ENTRY}},
            r"\[kind\.BIRTHDAY\]: unknown event kind",
            id="unknown-kind",
        ),
        pytest.param({**VALID, "colour": "blue"}, "unknown key 'colour'", id="unknown-top-key"),
        pytest.param(
            with_change(("kind", "BIRTH", "audience"), "all"),
            r"\[kind\.BIRTH\]: unknown key 'audience'",
            id="unknown-kind-key",
        ),
        pytest.param(
            with_change(("kind", "BIRTH", "lawful_basis"), "BECAUSE"),
            "lawful_basis 'BECAUSE' is not one of CONSENT, LEGAL_OBLIGATION",
            id="bad-lawful-basis",
        ),
        pytest.param(
            without(("kind", "BIRTH", "lawful_basis")),
            r"\[kind\.BIRTH\]: missing 'lawful_basis'",
            id="missing-lawful-basis",
        ),
        pytest.param(
            without(("kind", "BIRTH", "recipient_roles")),
            "missing 'recipient_roles'",
            id="missing-recipient-roles",
        ),
        pytest.param(
            without(("kind", "BIRTH", "content_level")),
            "missing 'content_level'",
            id="missing-content-level",
        ),
        pytest.param(
            without(("kind", "BIRTH", "urgency")), "missing 'urgency'", id="missing-urgency"
        ),
        pytest.param(
            with_change(("kind", "BIRTH", "content_level"), "EVERYTHING"),
            "content_level 'EVERYTHING' is not one of EMPTY, REFERENCE, SUMMARY",
            id="bad-content-level",
        ),
        pytest.param(
            with_change(("kind", "BIRTH", "urgency"), "SOMEDAY"),
            "urgency 'SOMEDAY' is not one of",
            id="bad-urgency",
        ),
        pytest.param(
            with_change(("kind", "BIRTH", "recipient_roles"), ["EVERYONE"]),
            "recipient_roles 'EVERYONE' is not one of LEAD_PRACTITIONER, TEAM_MEMBER",
            id="bad-role",
        ),
        pytest.param(
            with_change(("kind", "BIRTH", "recipient_roles"), "LEAD_PRACTITIONER"),
            "'recipient_roles' must be a list",
            id="roles-not-a-list",
        ),
        pytest.param(
            with_change(("kind", "BIRTH", "service_categories"), ["ASTROLOGY"]),
            "service_categories 'ASTROLOGY' is not one of",
            id="bad-service-category",
        ),
        pytest.param(
            with_change(("kind", "BIRTH", "service_categories"), "SOME"),
            "'service_categories' must be a list",
            id="categories-neither-all-nor-list",
        ),
        pytest.param(
            with_change(("kind", "BIRTH", "fan_out"), ["NEIGHBOUR"]),
            "fan_out 'NEIGHBOUR' is not one of",
            id="bad-fan-out-link",
        ),
        pytest.param(
            with_change(("kind", "BIRTH"), "everyone"),
            r"\[kind\.BIRTH\]: must be a table",
            id="kind-not-a-table",
        ),
        pytest.param({**VALID, "version": ""}, "'version' must be a non-empty string", id="empty"),
        pytest.param({**VALID, "version": "   "}, "'version' must be", id="blank-version"),
        pytest.param({**VALID, "version": 3}, "'version' must be", id="version-not-a-string"),
        pytest.param(without(("version",)), "'version' must be", id="missing-version"),
        pytest.param(
            {**VALID, "grace_period_days": -1}, "'grace_period_days' must be", id="grace<0"
        ),
        pytest.param({**VALID, "grace_period_days": 366}, "0-365", id="grace>365"),
        pytest.param({**VALID, "grace_period_days": 1.5}, "whole number", id="grace-fraction"),
        pytest.param({**VALID, "grace_period_days": True}, "whole number", id="grace-bool"),
        pytest.param({**VALID, "kind": {}}, r"at least one \[kind\.<KIND>\]", id="no-kinds"),
        pytest.param(without(("kind",)), r"at least one \[kind\.<KIND>\]", id="missing-kinds"),
    ],
)
def test_an_invalid_policy_is_refused_with_a_message_naming_the_problem(
    data: dict[str, Any], message: str
) -> None:
    with pytest.raises(PolicyError, match=message) as caught:
        parse_policy(data, "policy.toml")
    assert str(caught.value).startswith("policy.toml")


@pytest.mark.parametrize("grace", [0, 365])
def test_grace_period_bounds_are_inclusive(grace: int) -> None:
    policy = parse_policy({**VALID, "grace_period_days": grace})
    assert policy.grace_period == dt.timedelta(days=grace)


def test_policy_errors_stop_the_hub_as_config_errors() -> None:
    assert issubclass(PolicyError, ConfigError)


def test_a_missing_policy_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(PolicyError, match=r"policy file not found: .*nowhere\.toml"):
        load_policy(missing)


def test_a_policy_file_that_is_not_toml_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "policy.toml"
    broken.write_text('version = "unterminated\n', encoding="utf-8")
    with pytest.raises(PolicyError, match=r"policy\.toml"):
        load_policy(broken)


def test_the_file_name_is_the_origin_of_a_load_error(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('version = "v"\n[kind.NOPE]\n', encoding="utf-8")
    with pytest.raises(PolicyError, match=r"policy\.toml: \[kind\.NOPE\]: unknown event kind"):
        load_policy(path)
