"""JSON on the hub's internal topics (wire.py): every message type round-trips exactly."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from involvement_hub.config import load_policy, load_rules
from involvement_hub.core.alerts import Alert, build_alert
from involvement_hub.core.audit import DisclosureRecord, disclosure_record
from involvement_hub.core.family import RELATIONSHIP as RELATIONSHIP_VIA
from involvement_hub.core.family import (
    Edge,
    Household,
    PersonState,
    household_rank,
    set_subscription,
)
from involvement_hub.core.household import HouseholdState, Member
from involvement_hub.core.messages import (
    DeliveryOutcome,
    DeliveryStatus,
    EdgeUpdate,
    FanOut,
    Handover,
    HouseholdChange,
    HouseholdMessage,
    HouseholdRename,
    Merge,
    PersonEvent,
    PersonMessage,
    RenameNeighbour,
    SetHousehold,
    ToResolve,
)
from involvement_hub.core.model import (
    Address,
    Envelope,
    Event,
    Identifier,
    InvolvementChange,
    LifeEvent,
    LifeEventKind,
    PersonRef,
    RelatedPerson,
    RelationshipChange,
    RelationshipEvent,
    RelationshipKind,
    RelationshipToSubject,
    ServiceCategory,
    Source,
    SubscriptionChange,
    SubscriptionEvent,
    Urgency,
)
from involvement_hub.core.policy import Link
from involvement_hub.core.routing import Outcome
from involvement_hub.core.team import Team
from involvement_hub.kafka import wire
from involvement_hub_devtools.synthetic import nhs_number
from support.core_builders import (
    CHILD,
    CHILD_ID,
    NOW,
    POLICY_FILE,
    RULES_DIR,
    involvement,
    practitioner,
    route_for_child,
    team_of,
)

DAY = dt.timedelta(days=1)
PARENT = PersonRef(identifiers=(Identifier("nhs_number", nhs_number(30)),), given_name="Sam")

INVOLVEMENT = involvement(
    "INV-1", is_lead=True, consent=True, category=ServiceCategory.MENTAL_HEALTH, end_reason="x"
)
ENDED = involvement("INV-2", agency="oakfield-primary", change=InvolvementChange.ENDED)
LIFE = LifeEvent(
    envelope=Envelope(
        "le-1",
        NOW - DAY,
        NOW,
        Source("northshire-housing", "housing-system", "HSG-1"),
        CHILD,
    ),
    life_event_kind=LifeEventKind.ADDRESS_CHANGED,
    urgency=Urgency.URGENT,
    related=(RelatedPerson(PARENT, RelationshipToSubject.PARENT),),
    new_address=Address(postcode="ZZ99 4QZ"),
    details=(("moved_with", "parent"), ("tenure", "social")),
)
RELATIONSHIP = RelationshipEvent(
    envelope=Envelope(
        "rel-1", NOW - DAY, NOW, Source("northshire-police", "records", "POL-1"), CHILD
    ),
    relationship=RelationshipKind.PARENT_OF,
    related_person=PARENT,
    change=RelationshipChange.ENDED,
)
EVENTS: dict[str, Event] = {
    "involvement": INVOLVEMENT,
    "ended-involvement": ENDED,
    "life-event": LIFE,
    "relationship": RELATIONSHIP,
}
TEAM = team_of(INVOLVEMENT, ENDED)


def round_trip(value: Any, cls: Any = None) -> Any:
    return wire.loads(cls if cls is not None else type(value), wire.dumps(value, cls))


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_to_resolve_round_trips_each_kind_of_event(name: str) -> None:
    message = ToResolve(EVENTS[name], NOW)
    again = round_trip(message)
    assert again == message
    assert type(again.event) is type(message.event)


def test_nested_unions_carry_their_class_name() -> None:
    data = json.loads(wire.dumps(ToResolve(LIFE, NOW)))
    assert data["event"]["@"] == "LifeEvent"
    assert "@" not in data["event"]["envelope"]  # a plain dataclass field needs no tag


STAMP = (NOW - DAY, "northshire-housing/le-1")
EDGE = Edge("P-PARENT", Link.CHILD, True, STAMP, RELATIONSHIP_VIA)
SUBSCRIBE = SubscriptionEvent(
    envelope=Envelope("sub-1", NOW - DAY, NOW, Source("oakfield-primary", "mis", "PUP-1"), CHILD),
    subscription_id="SUB-1",
    change=SubscriptionChange.STARTED,
    practitioner=practitioner("DSL-1"),
    kinds=("SCHOOL_EXCLUSION",),
    reason="attendance support plan",
)
FULL_STATE = set_subscription(
    PersonState(
        CHILD_ID,
        TEAM,
        edges=(EDGE,),
        household=Household("999000000101", STAMP, observed=True),
    ),
    SUBSCRIBE,
)
PERSON_MESSAGES: dict[str, PersonMessage] = {
    "person-event": PersonEvent(INVOLVEMENT, CHILD_ID, (("P-PARENT", "PARENT"),), NOW),
    "fan-out": FanOut(LIFE, CHILD_ID, "P-PARENT", Link.PARENT, True, None, NOW),
    "fan-out-onwards": FanOut(
        LIFE, CHILD_ID, "P-PARTNER", Link.PARTNER, False, Link.PARENTS_PARTNER, NOW
    ),
    "merge": Merge("P-FROM", CHILD_ID),
    "handover": Handover("P-FROM", CHILD_ID, PersonState(CHILD_ID, TEAM)),
    "full-handover": Handover("P-FROM", CHILD_ID, FULL_STATE),
    "edge-update": EdgeUpdate(CHILD_ID, EDGE),
    "set-household": SetHousehold(CHILD_ID, None, STAMP, False, only_from="999000000101"),
    "rename-neighbour": RenameNeighbour(CHILD_ID, "P-FROM", "P-INTO"),
    "subscription-event": PersonEvent(SUBSCRIBE, CHILD_ID, (), NOW),
    "empty-handover": Handover("P-FROM", CHILD_ID, PersonState.empty("P-FROM")),
}


@pytest.mark.parametrize("name", sorted(PERSON_MESSAGES))
def test_person_messages_round_trip_through_their_union(name: str) -> None:
    message = PERSON_MESSAGES[name]
    raw = wire.dumps(message, PersonMessage)
    assert json.loads(raw)["@"] == type(message).__name__
    again = wire.loads(PersonMessage, raw)
    assert again == message
    assert type(again) is type(message)


@pytest.mark.parametrize("name", sorted(PERSON_MESSAGES))
def test_person_messages_round_trip_as_their_own_class(name: str) -> None:
    message = PERSON_MESSAGES[name]
    assert round_trip(message) == message


@pytest.mark.parametrize(
    "message",
    [
        HouseholdChange("999000000101", CHILD_ID, True, household_rank(False, STAMP)),
        HouseholdRename("999000000101", "P-FROM", CHILD_ID),
    ],
    ids=["change", "rename"],
)
def test_household_messages_round_trip_through_their_union(message: HouseholdMessage) -> None:
    again = wire.loads(HouseholdMessage, wire.dumps(message, HouseholdMessage))
    assert again == message
    assert type(again) is type(message)


def test_a_household_round_trips_with_its_ranks_and_counter() -> None:
    household = HouseholdState(
        "999000000101",
        (
            Member(CHILD_ID, True, household_rank(True, STAMP)),
            Member("P-PARENT", False, household_rank(False, STAMP)),
        ),
        changes=7,
    )
    assert round_trip(household) == household


def test_a_merged_away_person_keeps_its_redirect() -> None:
    state = PersonState(CHILD_ID, TEAM, merged_into="P-INTO")
    assert round_trip(state) == state


def test_datetimes_keep_their_instant_and_zone() -> None:
    again = round_trip(ToResolve(INVOLVEMENT, NOW))
    assert again.ingested_at == NOW
    assert again.ingested_at.utcoffset() == dt.timedelta(0)
    assert again.event.started_on == INVOLVEMENT.started_on


def test_a_team_round_trips_with_its_versions() -> None:
    again = round_trip(TEAM)
    assert again == TEAM
    assert isinstance(again.members[0].version, tuple)


def test_delivery_outcomes_round_trip() -> None:
    outcome = DeliveryOutcome(
        "a" * 32, "oakfield-primary/PR-9", DeliveryStatus.FAILED, NOW, "550 no mailbox"
    )
    assert round_trip(outcome) == outcome
    short = wire.loads(
        DeliveryOutcome,
        b'{"alert_id":"a","recipient_id":"r","status":"SENT","at":"2026-11-25T12:00:00+00:00"}',
    )
    assert short.detail == ""


def decisions_for(event: Event) -> Any:
    policy = load_policy(POLICY_FILE)
    lead = involvement("INV-L", practitioner_id="PR-LEAD", is_lead=True, at=NOW - 9 * DAY)
    before = team_of(lead, involvement("INV-T", agency="oakfield-primary", at=NOW - 8 * DAY))
    return route_for_child(event, before, policy=policy, rules=load_rules(RULES_DIR, policy))


def test_alerts_round_trip() -> None:
    decisions, after = decisions_for(INVOLVEMENT)
    sent = [d for d in decisions if d.outcome is Outcome.SEND]
    assert sent
    for decision in sent:
        alert = build_alert(
            decision, INVOLVEMENT, after, now=NOW, ingested_at=NOW - DAY, grace=14 * DAY
        )
        assert alert.team
        assert alert.details
        assert alert.children
        assert alert.recipient_card is not None
        assert round_trip(alert) == alert
        assert wire.loads(Alert, wire.dumps(alert)).content_level is alert.content_level


def test_disclosure_records_round_trip() -> None:
    decisions, _ = decisions_for(LIFE)
    assert decisions
    for decision in decisions:
        record = disclosure_record(decision, NOW)
        assert round_trip(record) == record
        assert wire.loads(DisclosureRecord, wire.dumps(record)).alert_id == record.alert_id


# --- Malformed input is a ValueError -----------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "raw"),
    [
        pytest.param(PersonMessage, b"not json", id="not-json"),
        pytest.param(PersonMessage, b"", id="empty"),
        pytest.param(PersonMessage, b'{"@":"Nonsense","from_id":"a"}', id="unknown-class"),
        pytest.param(PersonMessage, b'{"from_id":"a","into_id":"b"}', id="untagged-union"),
        pytest.param(PersonMessage, b"null", id="null"),
        pytest.param(PersonMessage, b"[1,2]", id="list"),
        pytest.param(Merge, b'{"from_id":"a"}', id="missing-field"),
        pytest.param(Merge, b"42", id="number"),
        pytest.param(Merge, b'{"@":"Handover","from_id":"a","into_id":"b"}', id="wrong-class-tag"),
        pytest.param(
            FanOut,
            json.dumps(
                {**json.loads(wire.dumps(PERSON_MESSAGES["fan-out"])), "link": "COUSIN"}
            ).encode(),
            id="bad-enum",
        ),
        pytest.param(
            DeliveryOutcome,
            b'{"alert_id":"a","recipient_id":"r","status":"SENT","at":"yesterday"}',
            id="bad-datetime",
        ),
        pytest.param(
            ToResolve,
            json.dumps(
                {"event": {"@": "Invoice"}, "ingested_at": "2026-11-25T12:00:00+00:00"}
            ).encode(),
            id="bad-nested-union",
        ),
        pytest.param(Team, b'{"person_id":"P","members":[{"agency_id":"x"}]}', id="bad-member"),
    ],
)
def test_malformed_input_is_a_value_error(cls: Any, raw: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 -- the type is the contract; messages vary
        wire.loads(cls, raw)


def test_a_value_error_names_the_expected_class() -> None:
    with pytest.raises(ValueError, match="not a valid Merge"):
        wire.loads(Merge, b'{"from_id":"a"}')


@pytest.mark.parametrize(
    ("cls", "raw"),
    [
        pytest.param(Merge, b'{"from_id":5,"into_id":"b"}', id="number-for-string"),
        pytest.param(Merge, b'{"from_id":null,"into_id":"b"}', id="null-for-string"),
        pytest.param(
            PersonMessage,
            json.dumps(
                {
                    **json.loads(wire.dumps(PERSON_MESSAGES["handover"], PersonMessage)),
                    "state": {
                        "person_id": CHILD_ID,
                        "team": {"person_id": ["P"], "members": []},
                    },
                }
            ).encode(),
            id="list-for-string",
        ),
    ],
)
def test_a_value_of_the_wrong_json_type_is_a_value_error(cls: Any, raw: bytes) -> None:
    with pytest.raises(ValueError, match="not a valid"):
        wire.loads(cls, raw)
