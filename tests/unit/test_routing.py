"""Routing (core/routing.py): who is told, who is not and why, under the shipped policy.

Team of the examples: a social-care lead (PR-LEAD) and a school team member (PR-SCHOOL).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from involvement_hub.config import load_policy, load_rules
from involvement_hub.core.catch_up import WHY as CATCH_UP_WHY
from involvement_hub.core.family import PersonState
from involvement_hub.core.messages import PersonEvent
from involvement_hub.core.model import (
    Event,
    InvolvementChange,
    InvolvementEvent,
    LifeEventKind,
    ServiceCategory,
    Urgency,
)
from involvement_hub.core.person_stage import Context, on_person_message
from involvement_hub.core.policy import Link, Policy, RecipientRole, parse_policy
from involvement_hub.core.routing import Decision, Outcome, Suppression
from involvement_hub.core.subscriptions import SubscriptionRules, parse_rules
from involvement_hub.core.team import Team, apply_involvement, involvement_key
from involvement_hub.errors import RejectedEvent
from involvement_hub.kafka import wire
from support.core_builders import (
    CHILD_ID,
    CHILD_PERSONAL_DATA,
    NOW,
    POLICY_FILE,
    RULES_DIR,
    involvement,
    life_event,
    route_for_child,
    team_of,
)

POLICY = load_policy(POLICY_FILE)
RULES = load_rules(RULES_DIR, POLICY)
STARTED, UPDATED, ENDED = InvolvementChange
DAY = dt.timedelta(days=1)

LEAD = involvement("INV-L", practitioner_id="PR-LEAD", is_lead=True, at=NOW - 60 * DAY)
SCHOOL = involvement(
    "INV-S",
    agency="oakfield-primary",
    practitioner_id="PR-SCHOOL",
    category=ServiceCategory.EDUCATION,
    at=NOW - 50 * DAY,
)
TEAM = team_of(LEAD, SCHOOL)


def decide(
    event: Event,
    before: Team = TEAM,
    *,
    policy: Policy = POLICY,
    rules: SubscriptionRules = RULES,
    now: dt.datetime = NOW,
) -> dict[str, Decision]:
    """Route ``event`` for the child, by recipient id (routing gives one decision each)."""
    decisions, _ = route_for_child(event, before, policy=policy, rules=rules, now=now)
    by_recipient = {d.recipient.recipient_id: d for d in decisions}
    assert len(by_recipient) == len(decisions), "one decision per recipient"
    return by_recipient


def outcomes(decisions: dict[str, Decision]) -> dict[str, tuple[str, str | None]]:
    return {
        r: (d.outcome.value, d.suppression and d.suppression.value) for r, d in decisions.items()
    }


LEAD_ID = "northshire-social-care/PR-LEAD"
SCHOOL_ID = "oakfield-primary/PR-SCHOOL"
HEALTH_ID = "northshire-health/PR-HEALTH"


def new_health_member(**overrides: Any) -> InvolvementEvent:
    fields: dict[str, Any] = {
        "involvement_id": "INV-H",
        "agency": "northshire-health",
        "practitioner_id": "PR-HEALTH",
        "category": ServiceCategory.HEALTH,
    }
    return involvement(**{**fields, **overrides})


# --- Who is told ----------------------------------------------------------------------


def test_a_new_team_member_is_announced_to_the_lead_and_the_team() -> None:
    decisions = decide(new_health_member())
    assert set(decisions) == {LEAD_ID, SCHOOL_ID}
    lead, school = decisions[LEAD_ID], decisions[SCHOOL_ID]
    assert (lead.outcome, lead.role, lead.rule_id) == (
        Outcome.SEND,
        RecipientRole.LEAD_PRACTITIONER,
        "lead-practitioner",
    )
    assert (school.outcome, school.role, school.rule_id) == (
        Outcome.SEND,
        RecipientRole.TEAM_MEMBER,
        "team-around-the-child",
    )


def test_the_practitioner_whose_involvement_it_is_gets_nothing() -> None:
    assert HEALTH_ID not in decide(new_health_member())
    assert LEAD_ID not in decide(
        involvement("INV-L", practitioner_id="PR-LEAD", change=UPDATED, is_lead=True)
    )


def test_the_first_involvement_with_a_child_tells_nobody() -> None:
    assert decide(new_health_member(is_lead=True), Team(CHILD_ID)) == {}


def test_a_decision_carries_the_policy_and_the_event() -> None:
    event = new_health_member()
    lead = decide(event)[LEAD_ID]
    assert lead.event_key == event.envelope.key == "northshire-health/" + event.envelope.event_id
    assert lead.kind == "INVOLVEMENT_STARTED"
    assert lead.policy_version == POLICY.version
    assert lead.lawful_basis.value == "PUBLIC_TASK"
    assert lead.content_level.value == "SUMMARY"
    assert (lead.person_id, lead.about_person_id, lead.link) == (CHILD_ID, CHILD_ID, Link.SELF)


def test_a_new_lead_and_the_old_lead_are_both_told_of_a_change_of_lead() -> None:
    decisions = decide(new_health_member(is_lead=True))
    assert outcomes(decisions) == {
        LEAD_ID: ("SEND", None),
        HEALTH_ID: ("SEND", None),
        SCHOOL_ID: ("SEND", None),
    }
    assert decisions[LEAD_ID].role is RecipientRole.LEAD_PRACTITIONER
    assert decisions[HEALTH_ID].role is RecipientRole.LEAD_PRACTITIONER


def test_a_team_member_promoted_to_lead_is_told_with_the_old_lead() -> None:
    promoted = involvement(
        "INV-S",
        agency="oakfield-primary",
        practitioner_id="PR-SCHOOL",
        category=ServiceCategory.EDUCATION,
        change=UPDATED,
        is_lead=True,
    )
    decisions = decide(promoted)
    assert outcomes(decisions) == {LEAD_ID: ("SEND", None), SCHOOL_ID: ("SEND", None)}
    assert decisions[SCHOOL_ID].role is RecipientRole.LEAD_PRACTITIONER


def test_when_the_old_lead_steps_down_the_new_lead_is_told() -> None:
    # The old lead is the actor of their own UPDATED and, like every actor, is not told.
    with_two_leads = apply_involvement(TEAM, new_health_member(is_lead=True))
    step_down = involvement(
        "INV-L", practitioner_id="PR-LEAD", change=UPDATED, is_lead=False, at=NOW - DAY / 2
    )
    decisions = decide(step_down, with_two_leads)
    assert outcomes(decisions) == {HEALTH_ID: ("SEND", None), SCHOOL_ID: ("SEND", None)}
    assert decisions[HEALTH_ID].role is RecipientRole.LEAD_PRACTITIONER


def test_a_life_event_goes_to_the_lead_only_when_the_team_is_not_subscribed() -> None:
    decisions = decide(life_event(LifeEventKind.SCHOOL_EXCLUSION))
    assert outcomes(decisions) == {LEAD_ID: ("SEND", None)}
    assert decisions[LEAD_ID].rule_id == "lead-practitioner"


def test_a_life_event_the_team_subscribes_to_reaches_the_team() -> None:
    decisions = decide(life_event(LifeEventKind.MISSING_EPISODE, agency="northshire-police"))
    assert outcomes(decisions) == {LEAD_ID: ("SEND", None), SCHOOL_ID: ("SEND", None)}


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        (Urgency.ROUTINE, Urgency.PRIORITY),  # the policy's PRIORITY is never downgraded
        (Urgency.PRIORITY, Urgency.PRIORITY),
        (Urgency.URGENT, Urgency.URGENT),  # a sender may raise it
    ],
)
def test_urgency_is_the_higher_of_the_senders_and_the_policys(
    sent: Urgency, expected: Urgency
) -> None:
    assert POLICY.kinds["SCHOOL_EXCLUSION"].urgency is Urgency.PRIORITY
    decision = decide(life_event(LifeEventKind.SCHOOL_EXCLUSION, urgency=sent))[LEAD_ID]
    assert decision.urgency is expected


def test_involvement_events_take_the_policys_urgency() -> None:
    assert (
        decide(new_health_member())[LEAD_ID].urgency is POLICY.kinds["INVOLVEMENT_STARTED"].urgency
    )


def test_one_practitioner_with_two_involvements_gets_one_decision() -> None:
    second = involvement(
        "INV-S2",
        agency="oakfield-primary",
        practitioner_id="PR-SCHOOL",
        category=ServiceCategory.EDUCATION,
        at=NOW - 40 * DAY,
    )
    decisions = decide(new_health_member(), apply_involvement(TEAM, second))
    assert outcomes(decisions) == {LEAD_ID: ("SEND", None), SCHOOL_ID: ("SEND", None)}


def test_practitioner_ids_are_told_apart_by_agency() -> None:
    same_id_elsewhere = involvement(
        "INV-P", agency="northshire-police", practitioner_id="PR-SCHOOL", at=NOW - 40 * DAY
    )
    decisions = decide(new_health_member(), apply_involvement(TEAM, same_id_elsewhere))
    assert set(decisions) == {LEAD_ID, SCHOOL_ID, "northshire-police/PR-SCHOOL"}


# --- IG-2: an ended involvement ---------------------------------------------------------


def ended_lead(days_ago: float) -> Team:
    return apply_involvement(
        TEAM,
        involvement(
            "INV-L",
            practitioner_id="PR-LEAD",
            is_lead=True,
            change=ENDED,
            at=NOW - days_ago * DAY,
        ),
    )


def test_an_involvement_ended_within_the_grace_period_still_receives() -> None:
    assert POLICY.grace_period == 14 * DAY
    assert outcomes(decide(life_event(), ended_lead(13))) == {LEAD_ID: ("SEND", None)}


def test_an_involvement_ended_beyond_the_grace_period_is_suppressed() -> None:
    decisions = decide(life_event(), ended_lead(15))
    assert outcomes(decisions) == {LEAD_ID: ("SUPPRESS", "involvement_ended")}


# --- IG-3: sensitive services ---------------------------------------------------------------


@pytest.mark.parametrize(
    "category",
    [
        ServiceCategory.MENTAL_HEALTH,
        ServiceCategory.SEXUAL_HEALTH,
        ServiceCategory.SUBSTANCE_MISUSE,
        ServiceCategory.DOMESTIC_ABUSE_SUPPORT,
    ],
)
@pytest.mark.parametrize("consent", [None, False])
def test_a_sensitive_involvement_without_consent_is_not_revealed_to_other_agencies(
    category: ServiceCategory, consent: bool | None
) -> None:
    decisions = decide(new_health_member(category=category, consent=consent))
    assert outcomes(decisions) == {
        LEAD_ID: ("SUPPRESS", "sensitive_without_consent"),
        SCHOOL_ID: ("SUPPRESS", "sensitive_without_consent"),
    }


def test_a_sensitive_involvement_without_consent_is_not_told_to_other_services_of_its_agency() -> (
    None
):
    # IG-3 is per service: a health visitor at the same health agency is not told of an
    # unconsented sexual-health involvement.
    colleague = new_health_member(involvement_id="INV-H0", practitioner_id="PR-COLLEAGUE")
    before = apply_involvement(TEAM, colleague)
    sensitive = new_health_member(category=ServiceCategory.SEXUAL_HEALTH, consent=None)
    decisions = decide(sensitive, before)
    assert outcomes(decisions)["northshire-health/PR-COLLEAGUE"] == (
        "SUPPRESS",
        "sensitive_without_consent",
    )
    assert outcomes(decisions)[LEAD_ID] == ("SUPPRESS", "sensitive_without_consent")


def test_a_sensitive_involvement_with_consent_is_told() -> None:
    decisions = decide(new_health_member(category=ServiceCategory.MENTAL_HEALTH, consent=True))
    assert outcomes(decisions) == {LEAD_ID: ("SEND", None), SCHOOL_ID: ("SEND", None)}


def test_withdrawn_consent_stops_the_next_update_being_told() -> None:
    consented = new_health_member(category=ServiceCategory.MENTAL_HEALTH, consent=True)
    before = apply_involvement(TEAM, consented)
    withdrawn = new_health_member(
        category=ServiceCategory.MENTAL_HEALTH, consent=None, change=UPDATED, at=NOW - DAY / 2
    )
    assert outcomes(decide(withdrawn, before))[LEAD_ID] == ("SUPPRESS", "sensitive_without_consent")


def test_a_life_event_from_an_agency_known_only_for_sensitive_work_is_suppressed() -> None:
    sensitive = new_health_member(category=ServiceCategory.SUBSTANCE_MISUSE, at=NOW - 9 * DAY)
    before = apply_involvement(TEAM, sensitive)
    event = life_event(LifeEventKind.MISSING_EPISODE, agency="northshire-health")
    assert outcomes(decide(event, before)) == {
        LEAD_ID: ("SUPPRESS", "sensitive_without_consent"),
        SCHOOL_ID: ("SUPPRESS", "sensitive_without_consent"),
        HEALTH_ID: ("SEND", None),
    }


# --- What the policy does not permit ------------------------------------------------------


def small_policy(**started: Any) -> Policy:
    entry = {
        "lawful_basis": "PUBLIC_TASK",
        "recipient_roles": ["LEAD_PRACTITIONER", "TEAM_MEMBER"],
        "content_level": "SUMMARY",
        "urgency": "ROUTINE",
    }
    return parse_policy(
        {
            "version": "test-1",
            "kind": {
                "INVOLVEMENT_STARTED": {**entry, **started},
                "INVOLVEMENT_ENDED": entry,
            },
        }
    )


def both_roles_rules(policy: Policy) -> SubscriptionRules:
    return parse_rules(
        {
            "rule": [
                {"id": "leads", "role": "LEAD_PRACTITIONER", "kinds": ["INVOLVEMENT_*"]},
                {"id": "team", "role": "TEAM_MEMBER", "kinds": ["INVOLVEMENT_*"]},
            ]
        },
        policy,
    )


def test_a_role_the_policy_does_not_allow_is_suppressed() -> None:
    policy = small_policy(recipient_roles=["LEAD_PRACTITIONER"])
    decisions = decide(new_health_member(), policy=policy, rules=both_roles_rules(policy))
    assert outcomes(decisions) == {
        LEAD_ID: ("SEND", None),
        SCHOOL_ID: ("SUPPRESS", "role_not_permitted"),
    }
    assert decisions[SCHOOL_ID].rule_id == "team"


def test_a_recipient_service_the_policy_does_not_list_is_suppressed() -> None:
    policy = small_policy(service_categories=["SOCIAL_CARE"])
    decisions = decide(new_health_member(), policy=policy, rules=both_roles_rules(policy))
    assert outcomes(decisions) == {
        LEAD_ID: ("SEND", None),
        SCHOOL_ID: ("SUPPRESS", "service_not_permitted"),
    }


def test_a_kind_without_policy_is_rejected() -> None:
    assert POLICY.for_kind("OTHER") is None
    with pytest.raises(RejectedEvent) as caught:
        decide(life_event(LifeEventKind.OTHER))
    assert caught.value.reason == "no_policy"


def test_a_kind_no_rule_asks_for_gives_no_decisions() -> None:
    policy = small_policy()
    rules = parse_rules(
        {"rule": [{"id": "ended", "role": "LEAD_PRACTITIONER", "kinds": ["INVOLVEMENT_ENDED"]}]},
        policy,
    )
    assert decide(new_health_member(), policy=policy, rules=rules) == {}


# --- alert ids ---------------------------------------------------------------------------


def test_alert_id_is_deterministic() -> None:
    event = new_health_member()
    assert decide(event)[LEAD_ID].alert_id == decide(event)[LEAD_ID].alert_id


def test_alert_id_differs_by_recipient_event_case_and_policy_version() -> None:
    base = decide(new_health_member())[LEAD_ID]
    recipient = base.recipient
    variants = [
        dataclasses.replace(base, event_key=base.event_key + "x"),
        dataclasses.replace(
            base,
            recipient=dataclasses.replace(
                recipient,
                practitioner=dataclasses.replace(recipient.practitioner, practitioner_id="PR-2"),
            ),
        ),
        dataclasses.replace(base, recipient=dataclasses.replace(recipient, agency_id="elsewhere")),
        dataclasses.replace(base, recipient=dataclasses.replace(recipient, record_ref="CASE-2")),
        dataclasses.replace(base, policy_version="2099-01-01.1"),
    ]
    ids = {base.alert_id, *(v.alert_id for v in variants)}
    assert len(ids) == len(variants) + 1


def test_alert_id_does_not_depend_on_the_outcome_or_urgency() -> None:
    base = decide(new_health_member())[LEAD_ID]
    other = dataclasses.replace(base, urgency=Urgency.URGENT, outcome=Outcome.SUPPRESS)
    assert other.alert_id == base.alert_id


# --- Property: IG-2, IG-3 and IG-5 over random histories ---------------------------------

# Involvement slots: (involvement id, agency, practitioner, category). PR-MULTI holds two.
SLOTS = (
    ("INV-1", "northshire-social-care", "PR-A", ServiceCategory.SOCIAL_CARE),
    ("INV-2", "oakfield-primary", "PR-MULTI", ServiceCategory.EDUCATION),
    ("INV-3", "oakfield-primary", "PR-MULTI", ServiceCategory.EDUCATION),
    ("INV-4", "northshire-health", "PR-C", ServiceCategory.SEXUAL_HEALTH),
    ("INV-5", "northshire-health", "PR-D", ServiceCategory.HEALTH),
    ("INV-6", "northshire-drug-alcohol", "PR-E", ServiceCategory.SUBSTANCE_MISUSE),
    ("INV-7", "northshire-police", "PR-F", ServiceCategory.POLICE),
)
LIFE_KINDS = [k for k in LifeEventKind if k is not LifeEventKind.OTHER]
AGENCIES = sorted({agency for _, agency, _, _ in SLOTS} | {"riverside-academy"})

involvement_steps = st.builds(
    lambda slot, change, lead, consent, days: ("involvement", slot, change, lead, consent, days),
    st.integers(0, len(SLOTS) - 1),
    st.sampled_from(list(InvolvementChange)),
    st.booleans(),
    st.sampled_from([None, False, True]),
    st.integers(0, 120),
)
life_steps = st.builds(
    lambda kind, agency, urgency, days: ("life", kind, agency, urgency, days),
    st.sampled_from(LIFE_KINDS),
    st.sampled_from(AGENCIES),
    st.sampled_from(list(Urgency)),
    st.integers(0, 120),
)
histories = st.lists(st.one_of(involvement_steps, life_steps), min_size=1, max_size=12)


def event_for(index: int, step: tuple[Any, ...]) -> Event:
    if step[0] == "involvement":
        _, slot, change, lead, consent, days = step
        inv, agency, practitioner_id, category = SLOTS[slot]
        return involvement(
            inv,
            agency=agency,
            practitioner_id=practitioner_id,
            practitioner_name=f"Imaginary Practitioner {practitioner_id}",
            category=category,
            change=change,
            is_lead=lead,
            consent=consent,
            at=NOW - days * DAY,
            event_id=f"ev-{index:03d}",
        )
    _, kind, agency, urgency, days = step
    return life_event(
        kind, agency=agency, urgency=urgency, at=NOW - days * DAY, event_id=f"ev-{index:03d}"
    )


def reveals_unconsented_involvement(event: Event, after: Team, recipient_agency: str) -> bool:
    """Does telling ``recipient_agency`` about ``event`` reveal a sensitive involvement
    whose recorded consent (after this event) is not given?"""
    if not isinstance(event, InvolvementEvent):
        return False
    member = after.member(involvement_key(event))
    assert member is not None
    return (
        member.service.sensitive
        and member.consent_to_share is not True
        and member.agency_id != recipient_agency
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories)
def test_no_history_sends_against_ig2_or_ig3_and_every_decision_is_audited(
    history: list[tuple[Any, ...]],
) -> None:
    state: PersonState | None = None
    context = Context(POLICY, RULES, 90 * DAY, NOW)
    for index, step in enumerate(history):
        event = event_for(index, step)
        message = PersonEvent(event, CHILD_ID, (), NOW)
        result = on_person_message(message, state, context)
        assert result.state is not None
        after = result.state.team
        # IG-5: one audit record per decision, sends and suppressions alike. A send names
        # the email: its own alert, or the catch-up email that tells of it.
        assert len(result.audit) == len(result.decisions)
        catch_ups = {e.alert_id: a.alert_id for a in result.alerts for e in a.earlier}
        assert [(r.recipient_id, r.outcome, r.alert_id) for r in result.audit] == [
            (
                d.recipient.recipient_id,
                d.outcome.value,
                (catch_ups[d.alert_id] if r.why == CATCH_UP_WHY else d.alert_id)
                if d.outcome is Outcome.SEND
                else None,
            )
            for d, r in zip(result.decisions, result.audit, strict=True)
        ]
        personal = {*CHILD_PERSONAL_DATA, event.envelope.subject.given_name or "?"}
        if isinstance(event, InvolvementEvent):
            personal |= {event.practitioner.name, event.practitioner.email}
        for record in result.audit:
            text = wire.dumps(record).decode("utf-8")
            assert not [p for p in personal if p in text]
        for decision in result.decisions:
            if decision.outcome is not Outcome.SEND:
                continue
            recipient_id = decision.recipient.recipient_id
            # IG-2: the recipient holds an involvement with the child that may receive.
            assert any(
                m.recipient_id == recipient_id and m.may_receive(NOW, POLICY.grace_period)
                for m in after.members
            ), f"{recipient_id} told without an active involvement"
            # IG-3: nothing sensitive revealed to another agency without consent.
            assert not reveals_unconsented_involvement(event, after, decision.recipient.agency_id)
        for alert in result.alerts:
            for contact in alert.team:
                if contact.agency_id == alert.recipient_id.split("/")[0]:
                    continue
                assert any(
                    m.agency_id == contact.agency_id
                    and m.practitioner.email == contact.email
                    and m.shareable
                    and m.current
                    for m in after.members
                ), f"{alert.recipient_id} shown an unshareable involvement"
        state = result.state


def test_the_property_generator_reaches_sends_and_suppressions() -> None:
    """Guards the property above against a generator that never exercises it."""
    history: list[tuple[Any, ...]] = [
        ("involvement", 0, STARTED, True, None, 30),
        ("involvement", 1, STARTED, False, None, 20),
        ("involvement", 3, STARTED, False, None, 10),
        ("life", LifeEventKind.MISSING_EPISODE, "northshire-police", Urgency.URGENT, 1),
    ]
    state: PersonState | None = None
    seen: set[tuple[str, str | None]] = set()
    for index, step in enumerate(history):
        result = on_person_message(
            PersonEvent(event_for(index, step), CHILD_ID, (), NOW),
            state,
            Context(POLICY, RULES, 90 * DAY, NOW),
        )
        seen |= {(d.outcome.value, d.suppression and d.suppression.value) for d in result.decisions}
        state = result.state
    assert seen == {("SEND", None), ("SUPPRESS", Suppression.SENSITIVE_WITHOUT_CONSENT.value)}


def test_a_lead_involvement_reallocated_to_another_practitioner_tells_both_and_the_team() -> None:
    # The same involvement, UPDATED with a new social worker: the case is reallocated.
    reallocated = involvement(
        "INV-L", practitioner_id="PR-NEW-LEAD", is_lead=True, change=UPDATED, at=NOW - DAY
    )
    decided = outcomes(decide(reallocated))
    assert decided == {
        LEAD_ID: ("SEND", None),  # the old lead hears who took over
        "northshire-social-care/PR-NEW-LEAD": ("SEND", None),  # the new lead hears who else works
        SCHOOL_ID: ("SEND", None),  # the team hears of the change
    }
