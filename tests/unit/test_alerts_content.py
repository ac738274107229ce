"""What an alert may say (IG-4, core/alerts.py): content levels, the team list, no personal data."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from involvement_hub.core.alerts import Alert, Detail, build_alert
from involvement_hub.core.model import (
    Address,
    Event,
    InvolvementChange,
    LifeEventKind,
    ServiceCategory,
    Urgency,
)
from involvement_hub.core.policy import ContentLevel, Link, Policy, parse_policy
from involvement_hub.core.routing import Decision, Outcome, route
from involvement_hub.core.subscriptions import parse_rules
from involvement_hub.core.team import Team
from involvement_hub.kafka import wire
from support.core_builders import (
    CHILD_ID,
    CHILD_PERSONAL_DATA,
    NOW,
    involvement,
    life_event,
    route_for_child,
    team_of,
)

DAY = dt.timedelta(days=1)
INGESTED = NOW - dt.timedelta(minutes=3)
GRACE = dt.timedelta(days=14)
LEAD_ID = "northshire-social-care/PR-LEAD"

LEAD = involvement("INV-L", practitioner_id="PR-LEAD", is_lead=True, at=NOW - 60 * DAY)
SCHOOL = involvement(
    "INV-S",
    agency="oakfield-primary",
    practitioner_id="PR-SCHOOL",
    category=ServiceCategory.EDUCATION,
    at=NOW - 50 * DAY,
)
CLINIC = involvement(
    "INV-SH",
    agency="northshire-health",
    practitioner_id="PR-CLINIC",
    category=ServiceCategory.SEXUAL_HEALTH,
    consent=None,
    at=NOW - 40 * DAY,
)
CAMHS = involvement(
    "INV-MH",
    agency="northshire-health",
    practitioner_id="PR-CAMHS",
    category=ServiceCategory.MENTAL_HEALTH,
    consent=True,
    at=NOW - 30 * DAY,
)
SAME_AGENCY_SENSITIVE = involvement(
    "INV-DA",
    agency="northshire-social-care",
    practitioner_id="PR-REFUGE",
    category=ServiceCategory.DOMESTIC_ABUSE_SUPPORT,
    consent=None,
    at=NOW - 20 * DAY,
)
FORMER = involvement(
    "INV-F",
    agency="northshire-police",
    practitioner_id="PR-FORMER",
    category=ServiceCategory.POLICE,
    change=InvolvementChange.ENDED,
    at=NOW - 5 * DAY,
)
TEAM = team_of(LEAD, SCHOOL, CLINIC, CAMHS, SAME_AGENCY_SENSITIVE, FORMER)
NEW_MEMBER = involvement(
    "INV-YJ",
    agency="northshire-youth-justice",
    practitioner_id="PR-YOT",
    category=ServiceCategory.YOUTH_JUSTICE,
    at=NOW - DAY,
)


def policy_at(level: ContentLevel) -> Policy:
    entry = {
        "lawful_basis": "PUBLIC_TASK",
        "recipient_roles": ["LEAD_PRACTITIONER"],
        "content_level": level.value,
        "urgency": "ROUTINE",
    }
    return parse_policy(
        {"version": "alerts-test", "kind": {"INVOLVEMENT_STARTED": entry, "ADDRESS_CHANGED": entry}}
    )


def alert_for(event: Event, level: ContentLevel, before: Team = TEAM) -> Alert:
    decision, after = decision_for(event, level, before)
    return build_alert(decision, event, after, now=NOW, ingested_at=INGESTED, grace=GRACE)


def decision_for(event: Event, level: ContentLevel, before: Team = TEAM) -> tuple[Decision, Team]:
    policy = policy_at(level)
    rules = parse_rules(
        {"rule": [{"id": "lead", "role": "LEAD_PRACTITIONER", "kinds": ["*"]}]}, policy
    )
    decisions, after = route_for_child(event, before, policy=policy, rules=rules)
    (decision,) = [d for d in decisions if d.recipient.recipient_id == LEAD_ID]
    assert decision.outcome is Outcome.SEND
    return decision, after


# -- IG-2 again when sending ------------------------------------------------------------


def test_an_alert_may_be_sent_until_a_grace_period_after_it_was_routed() -> None:
    alert = alert_for(NEW_MEMBER, ContentLevel.EMPTY)

    assert alert.send_by == NOW + GRACE
    assert not alert.expired(NOW + GRACE)
    assert alert.expired(NOW + GRACE + dt.timedelta(seconds=1))
    # Who the decision was about, for the audit record should it expire unsent.
    assert (alert.person_id, alert.about_person_id, alert.role) == (
        CHILD_ID,
        CHILD_ID,
        "LEAD_PRACTITIONER",
    )


def test_an_alert_to_an_ended_involvement_may_be_sent_only_within_its_grace_period() -> None:
    decision, after = decision_for(NEW_MEMBER, ContentLevel.EMPTY)
    ended = dataclasses.replace(decision.recipient, ended_at=NOW - 10 * DAY)
    decision = dataclasses.replace(decision, recipient=ended)

    alert = build_alert(decision, NEW_MEMBER, after, now=NOW, ingested_at=INGESTED, grace=GRACE)

    assert alert.send_by == NOW - 10 * DAY + GRACE  # four days from now, not fourteen
    assert alert.expired(NOW + 5 * DAY)


def test_an_empty_alert_says_only_that_a_case_has_an_update() -> None:
    alert = alert_for(NEW_MEMBER, ContentLevel.EMPTY)
    assert alert.source_agency is None
    assert alert.team == ()
    assert alert.changes == ()
    assert alert.case_ref == LEAD.envelope.source.record_ref
    assert alert.recipient_email == "pr-lead@northshire.example"


def test_a_reference_alert_adds_the_source_agency_and_the_team_but_no_changes() -> None:
    alert = alert_for(NEW_MEMBER, ContentLevel.REFERENCE)
    assert alert.source_agency == "northshire-youth-justice"
    assert alert.team
    assert alert.changes == ()


def test_a_summary_alert_adds_the_details() -> None:
    alert = alert_for(NEW_MEMBER, ContentLevel.SUMMARY)
    assert alert.source_agency == "northshire-youth-justice"
    assert alert.team
    details = {d.key: d.value for d in alert.details}
    assert details["change"] == "STARTED"
    assert details["lead"] == "no"
    assert details["service_category"] == "YOUTH_JUSTICE"  # codes: the email has the words
    assert alert.changes == ()


def test_a_summary_of_a_life_event_lists_its_details() -> None:
    event = life_event(
        LifeEventKind.ADDRESS_CHANGED,
        details=(("moved_with", "both parents"),),
        new_address=Address(uprn="999000000202", postcode="ZZ99 4QZ"),
    )
    alert = alert_for(event, ContentLevel.SUMMARY)
    assert alert.details == (Detail("moved_with", "both parents"),)


def test_the_alert_carries_its_decision() -> None:
    alert = alert_for(NEW_MEMBER, ContentLevel.REFERENCE)
    assert alert.kind == "INVOLVEMENT_STARTED"
    assert alert.event_key == NEW_MEMBER.envelope.key
    assert alert.policy_version == "alerts-test"
    assert alert.lawful_basis == "PUBLIC_TASK"
    assert alert.urgency is Urgency.ROUTINE
    assert alert.occurred_at == NEW_MEMBER.envelope.occurred_at
    assert (alert.created_at, alert.ingested_at) == (NOW, INGESTED)
    assert "lead practitioner" in alert.why
    assert "about the child" in alert.why


def test_the_team_list_leaves_out_the_recipient_and_unconsented_sensitive_work() -> None:
    alert = alert_for(NEW_MEMBER, ContentLevel.REFERENCE)
    listed = {(c.agency_id, c.email) for c in alert.team}
    assert listed == {
        ("oakfield-primary", "pr-school@northshire.example"),
        ("northshire-health", "pr-camhs@northshire.example"),  # consent recorded
        ("northshire-youth-justice", "pr-yot@northshire.example"),  # the new member
    }
    # Not the recipient, not the unconsented clinic, not the ended police involvement, and
    # not the unconsented refuge service even though it belongs to the recipient's own
    # agency: IG-3 is per service.


def test_the_team_list_gives_contact_details() -> None:
    alert = alert_for(NEW_MEMBER, ContentLevel.REFERENCE)
    (school,) = [c for c in alert.team if c.agency_id == "oakfield-primary"]
    assert school.service_category == "EDUCATION"
    assert school.phone == "01632 960001"
    assert school.out_of_hours_phone == "01632 960999"
    assert not school.is_lead


EVENTS: dict[str, Event] = {
    "involvement": NEW_MEMBER,
    "life-event": life_event(
        LifeEventKind.ADDRESS_CHANGED,
        details=(("tenure", "private rented"),),
        new_address=Address(uprn="999000000202", postcode="ZZ99 4QZ"),
    ),
}


@pytest.mark.parametrize("level", list(ContentLevel))
@pytest.mark.parametrize("which", sorted(EVENTS))
def test_no_alert_carries_the_childs_personal_data(level: ContentLevel, which: str) -> None:
    text = wire.dumps(alert_for(EVENTS[which], level)).decode("utf-8")
    leaked = [p for p in (*CHILD_PERSONAL_DATA, "999000000202", "ZZ99 4QZ") if p in text]
    assert leaked == []


def test_only_a_send_decision_becomes_an_alert() -> None:
    decision: Decision = dataclasses.replace(
        route(
            NEW_MEMBER,
            person_id=CHILD_ID,
            about_person_id=CHILD_ID,
            link=Link.SELF,
            before=TEAM,
            after=TEAM,
            policy=policy_at(ContentLevel.SUMMARY),
            rules=parse_rules(
                {"rule": [{"id": "lead", "role": "LEAD_PRACTITIONER", "kinds": ["*"]}]},
                policy_at(ContentLevel.SUMMARY),
            ),
            now=NOW,
        )[0],
        outcome=Outcome.SUPPRESS,
    )
    with pytest.raises(ValueError, match="only a SEND decision"):
        build_alert(decision, NEW_MEMBER, TEAM, now=NOW, ingested_at=INGESTED, grace=GRACE)


def test_with_no_grace_period_an_alert_routed_to_an_active_lead_may_still_be_sent_for_an_hour() -> (
    None
):
    decision, after = decision_for(NEW_MEMBER, ContentLevel.EMPTY)

    alert = build_alert(
        decision, NEW_MEMBER, after, now=NOW, ingested_at=INGESTED, grace=dt.timedelta(0)
    )

    assert alert.send_by == NOW + dt.timedelta(hours=1)
