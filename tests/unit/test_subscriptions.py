"""Subscription rules (core/subscriptions.py): the shipped file, and every way to get it wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from involvement_hub.config import load_policy, load_rules
from involvement_hub.core.policy import Link, RecipientRole, all_kinds, parse_policy
from involvement_hub.core.subscriptions import parse_rules
from involvement_hub.errors import ConfigError, SubscriptionError
from support.core_builders import POLICY_FILE, RULES_DIR

POLICY = load_policy(POLICY_FILE)


def rule(**fields: Any) -> dict[str, Any]:
    return {"id": "r1", "role": "LEAD_PRACTITIONER", "kinds": ["INVOLVEMENT_*"], **fields}


# --- The shipped file --------------------------------------------------------------------


def test_the_shipped_rules_load() -> None:
    rules = load_rules(RULES_DIR, POLICY)
    assert [r.rule_id for r in rules.rules] == [
        "lead-practitioner",
        "team-around-the-child",
        "explicit-subscription",
    ]


def test_the_lead_practitioner_hears_of_every_kind_through_every_link() -> None:
    lead = load_rules(RULES_DIR, POLICY).rules[0]
    assert lead.role is RecipientRole.LEAD_PRACTITIONER
    assert set(lead.kinds) == set(all_kinds())
    # CHILD and CARED_FOR only name an edge seen from the adult's side: an event never
    # reaches a child's team "about a child of the child".
    assert lead.links == frozenset(Link) - {Link.CHILD, Link.CARED_FOR}


def test_the_team_hears_of_involvements_and_a_few_life_events_about_the_child_only() -> None:
    rules = load_rules(RULES_DIR, POLICY)
    team = rules.rules[1]
    assert team.role is RecipientRole.TEAM_MEMBER
    assert team.links == {Link.SELF}
    assert [r.rule_id for r in rules.matching("SCHOOL_EXCLUSION", Link.SELF)] == [
        "lead-practitioner",
        "explicit-subscription",
    ]
    assert [r.rule_id for r in rules.matching("INVOLVEMENT_ENDED", Link.SELF)] == [
        "lead-practitioner",
        "team-around-the-child",
        "explicit-subscription",
    ]
    assert [r.rule_id for r in rules.matching("MISSING_EPISODE", Link.PARENT)] == [
        "lead-practitioner"
    ]


def test_patterns_expand_to_kinds_once_each() -> None:
    rules = parse_rules(
        {"rule": [rule(kinds=["INVOLVEMENT_*", "INVOLVEMENT_STARTED", "*_ENDED"])]}, POLICY
    )
    assert rules.rules[0].kinds == (
        "INVOLVEMENT_STARTED",
        "INVOLVEMENT_UPDATED",
        "INVOLVEMENT_ENDED",
        "RELATIONSHIP_ENDED",
        "SUBSCRIPTION_ENDED",
    )


def test_explicit_subscribers_hear_only_of_events_about_the_child() -> None:
    explicit = load_rules(RULES_DIR, POLICY).rules[2]
    assert explicit.role is RecipientRole.EXPLICIT_SUBSCRIBER
    assert explicit.links == {Link.SELF}
    assert set(explicit.kinds) == set(all_kinds())
    rules = load_rules(RULES_DIR, POLICY)
    assert [r.rule_id for r in rules.matching("SCHOOL_EXCLUSION", Link.SIBLING)] == [
        "lead-practitioner"
    ]


def test_links_default_to_self() -> None:
    (only,) = parse_rules({"rule": [rule()]}, POLICY).rules
    assert only.links == {Link.SELF}
    assert only.description == ""
    assert only.matches("INVOLVEMENT_STARTED", Link.SELF)
    assert not only.matches("INVOLVEMENT_STARTED", Link.PARENT)
    assert not only.matches("BIRTH", Link.SELF)


# --- Errors name the problem -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({"rule": [rule(), rule()]}, "rule id 'r1' is used twice", id="id-twice"),
        pytest.param(
            {"rule": [rule(role="ANYONE")]},
            r"rule 1 \(r1\): role 'ANYONE' is not one of LEAD_PRACTITIONER, TEAM_MEMBER",
            id="unknown-role",
        ),
        pytest.param(
            {"rule": [rule(kinds=["INVOLVEMENT_*", "BIRTHDAY*"])]},
            r"kind pattern 'BIRTHDAY\*' matches no event kind",
            id="pattern-matches-nothing",
        ),
        pytest.param(
            {"rule": [rule(kinds=[])]}, "'kinds' must be a non-empty list", id="empty-kinds"
        ),
        pytest.param(
            {"rule": [rule(kinds="INVOLVEMENT_*")]},
            "'kinds' must be a non-empty list",
            id="kinds-not-a-list",
        ),
        pytest.param(
            {"rule": [rule(links=["NEIGHBOUR"])]},
            "'links' must be drawn from SELF, PARENT",
            id="unknown-link",
        ),
        pytest.param(
            {"rule": [rule(role="TEAM_MEMBER", kinds=["SCHOOL_EXCLUSION", "BIRTH"])]},
            "rule 'r1' can never send anything: the policy allows TEAM_MEMBER none of its kinds",
            id="role-never-allowed",
        ),
        pytest.param(
            {"rule": [rule(kinds=["MISSING_EPISODE"], links=["PARENT", "SIBLING"])]},
            "rule 'r1' can never send anything",
            id="link-never-fanned-out",
        ),
        pytest.param(
            {"rule": [rule(kinds=["OTHER"])]},
            "rule 'r1' can never send anything",
            id="kind-without-policy",
        ),
        pytest.param(
            {"rule": [rule(links=[])]}, "rule 'r1' can never send anything", id="no-links"
        ),
        pytest.param({"rule": [rule(audience="all")]}, "unknown key 'audience'", id="rule-key"),
        pytest.param({"rule": [rule()], "version": 2}, "unknown key 'version'", id="top-key"),
        pytest.param({"rule": []}, r"needs at least one \[\[rule\]\]", id="no-rules"),
        pytest.param({}, r"needs at least one \[\[rule\]\]", id="missing-rules"),
        pytest.param({"rule": ["lead"]}, "rule 1: must be a table", id="rule-not-a-table"),
        pytest.param(
            {"rule": [{"id": "r1", "kinds": ["*"]}]}, r"rule 1: missing 'role'", id="no-role"
        ),
        pytest.param(
            {"rule": [{"role": "LEAD_PRACTITIONER", "kinds": ["*"]}]},
            "rule 1: missing 'id'",
            id="no-id",
        ),
        pytest.param(
            {"rule": [rule(), {"id": "r2", "role": "LEAD_PRACTITIONER"}]},
            "rule 2: missing 'kinds'",
            id="no-kinds",
        ),
    ],
)
def test_invalid_rules_are_refused_with_a_message_naming_the_problem(
    data: dict[str, Any], message: str
) -> None:
    with pytest.raises(SubscriptionError, match=message) as caught:
        parse_rules(data, POLICY, "rules.toml")
    assert str(caught.value).startswith("rules.toml")


def test_a_rule_is_checked_against_the_policy_it_is_loaded_with() -> None:
    lead_only = parse_policy(
        {
            "version": "t",
            "kind": {
                "BIRTH": {
                    "lawful_basis": "PUBLIC_TASK",
                    "recipient_roles": ["LEAD_PRACTITIONER"],
                    "content_level": "EMPTY",
                    "urgency": "ROUTINE",
                }
            },
        }
    )
    team_rule = {"rule": [rule(id="t", role="TEAM_MEMBER", kinds=["*"])]}
    assert parse_rules(team_rule, POLICY).rules[0].rule_id == "t"
    with pytest.raises(SubscriptionError, match="rule 't' can never send anything"):
        parse_rules(team_rule, lead_only)


def test_subscription_errors_stop_the_hub_as_config_errors() -> None:
    assert issubclass(SubscriptionError, ConfigError)


def test_a_missing_rules_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SubscriptionError, match=r"subscription rules not found: .*rules\.toml"):
        load_rules(tmp_path, POLICY)


def test_a_rules_file_that_is_not_toml_is_named(tmp_path: Path) -> None:
    (tmp_path / "rules.toml").write_text("[[rule]\n", encoding="utf-8")
    with pytest.raises(SubscriptionError, match=r"rules\.toml"):
        load_rules(tmp_path, POLICY)
