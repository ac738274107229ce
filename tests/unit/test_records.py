"""Decoded records to domain events (core/records.py), on exactly what the hub decodes.

Each record is written in the agencies' JSON form, converted with the producer library,
encoded and decoded through the codec: the dict given to ``event_from_record`` is the one
the hub sees.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from involvement_hub.core.model import (
    Identifier,
    InvolvementChange,
    InvolvementEvent,
    LifeEvent,
    LifeEventKind,
    RelationshipEvent,
    RelationshipKind,
    RelationshipToSubject,
    ServiceCategory,
    Urgency,
)
from involvement_hub.core.records import MAX_DETAIL_CHARS, MAX_DETAILS, event_from_record
from involvement_hub.errors import RejectedEvent
from involvement_hub_devtools.synthetic import nhs_number, upn
from involvement_hub_producer.codec import SchemaRegistry, decode, encode
from involvement_hub_producer.json_form import from_json

REGISTRY = SchemaRegistry.packaged()
CHILD_NHS = nhs_number(21)
PARENT_NHS = nhs_number(22)

SUBJECT: dict[str, Any] = {
    "identifiers": [
        {"scheme": "nhs_number", "value": f"{CHILD_NHS[:3]} {CHILD_NHS[3:6]} {CHILD_NHS[6:]}"},
        {"scheme": "upn", "value": upn(21)},
    ],
    "given_name": "Robin",
    "family_name": "Testperson",
    "date_of_birth": "2017-03-14",
    "address": {"uprn": "999000000101", "postcode": "ZZ99 3AZ"},
}
PARENT: dict[str, Any] = {"identifiers": [{"scheme": "nhs_number", "value": PARENT_NHS}]}
ENVELOPE: dict[str, Any] = {
    "event_id": "ev-000001",
    "occurred_at": "2026-11-03T14:05:00Z",
    "recorded_at": "2026-11-03T15:00:00+01:00",
    "source": {
        "agency_id": "northshire-social-care",
        "system": "case-management",
        "record_ref": "CM-2026-000001",
    },
    "subject": SUBJECT,
}
INVOLVEMENT: dict[str, Any] = {
    **ENVELOPE,
    "involvement_id": "INV-0001",
    "change": "STARTED",
    "service": {
        "service_id": "CSC-CIN-1",
        "name": "Imaginary Children in Need Team",
        "category": "SOCIAL_CARE",
        "level": "STATUTORY",
    },
    "practitioner": {
        "practitioner_id": "PR-0001",
        "name": "Jo Placeholder",
        "role": "social worker",
        "email": "jo.placeholder@northshire.example",
    },
    "is_lead": True,
    "lawful_basis": "PUBLIC_TASK",
    "started_on": "2026-11-03",
}
LIFE_EVENT: dict[str, Any] = {
    **ENVELOPE,
    "kind": "ADDRESS_CHANGED",
    "urgency": "PRIORITY",
    "related": [{"person": PARENT, "relationship": "PARENT"}],
    "new_address": {"postcode": "ZZ99 4QZ"},
    "details": {"moved_with": "both parents", "tenure": "private rented"},
}
RELATIONSHIP: dict[str, Any] = {
    **ENVELOPE,
    "relationship": "PARENT_OF",
    "related_person": PARENT,
    "change": "ENDED",
}


def as_hub_sees(name: str, json_record: dict[str, Any]) -> dict[str, Any]:
    record = from_json(json_record, REGISTRY.current(name).source)
    decoded = decode(encode(record, REGISTRY.current(name)), REGISTRY)
    assert decoded.name == name
    return decoded.record


def event_of(name: str, json_record: dict[str, Any]) -> Any:
    return event_from_record(name, as_hub_sees(name, json_record))


def rejection(name: str, json_record: dict[str, Any]) -> RejectedEvent:
    with pytest.raises(RejectedEvent) as caught:
        event_of(name, json_record)
    return caught.value


# --- Kinds and fields -------------------------------------------------------------------


@pytest.mark.parametrize("change", ["STARTED", "UPDATED", "ENDED"])
def test_involvement_records_become_involvement_events(change: str) -> None:
    event = event_of("Involvement", {**INVOLVEMENT, "change": change})
    assert isinstance(event, InvolvementEvent)
    assert event.kind == f"INVOLVEMENT_{change}"
    assert event.change is InvolvementChange(change)


def test_involvement_fields_are_carried_over() -> None:
    event = event_of("Involvement", {**INVOLVEMENT, "consent_to_share": True})
    assert event.envelope.key == "northshire-social-care/ev-000001"
    assert event.envelope.source.record_ref == "CM-2026-000001"
    assert event.service.category is ServiceCategory.SOCIAL_CARE
    assert event.practitioner.email == "jo.placeholder@northshire.example"
    assert event.practitioner.phone is None
    assert event.is_lead is True
    assert event.consent_to_share is True
    assert event.started_on == dt.date(2026, 11, 3)
    assert event.ended_on is None


def test_timestamps_are_utc_and_dates_are_dates() -> None:
    event = event_of("Involvement", INVOLVEMENT)
    assert event.envelope.occurred_at == dt.datetime(2026, 11, 3, 14, 5, tzinfo=dt.UTC)
    assert event.envelope.recorded_at == dt.datetime(2026, 11, 3, 14, 0, tzinfo=dt.UTC)
    assert event.envelope.occurred_at.utcoffset() == dt.timedelta(0)
    assert event.envelope.subject.date_of_birth == dt.date(2017, 3, 14)


def test_the_subject_keeps_its_identifiers_as_sent() -> None:
    # Normalisation is identity's job; the event keeps what the agency wrote.
    event = event_of("Involvement", INVOLVEMENT)
    assert event.envelope.subject.identifiers[0] == Identifier(
        "nhs_number", SUBJECT["identifiers"][0]["value"]
    )


@pytest.mark.parametrize("kind", [k.value for k in LifeEventKind])
def test_life_event_records_keep_their_kind(kind: str) -> None:
    event = event_of("LifeEvent", {**LIFE_EVENT, "kind": kind})
    assert isinstance(event, LifeEvent)
    assert event.kind == kind


def test_life_event_fields_are_carried_over() -> None:
    event = event_of("LifeEvent", LIFE_EVENT)
    assert event.urgency is Urgency.PRIORITY
    assert event.details == (("moved_with", "both parents"), ("tenure", "private rented"))
    assert event.new_address is not None
    assert event.new_address.postcode == "ZZ99 4QZ"
    (related,) = event.related
    assert related.relationship is RelationshipToSubject.PARENT
    assert related.person.identifiers == (Identifier("nhs_number", PARENT_NHS),)


@pytest.mark.parametrize("change", ["STARTED", "ENDED"])
def test_relationship_records_become_relationship_events(change: str) -> None:
    event = event_of("Relationship", {**RELATIONSHIP, "change": change})
    assert isinstance(event, RelationshipEvent)
    assert event.kind == f"RELATIONSHIP_{change}"
    assert event.relationship is RelationshipKind.PARENT_OF


def test_an_unknown_record_type_is_rejected() -> None:
    record = as_hub_sees("Involvement", INVOLVEMENT)
    with pytest.raises(RejectedEvent) as caught:
        event_from_record("Invoice", record)
    assert caught.value.reason == "unknown_record_type"


# --- Rejections -----------------------------------------------------------------------------


def test_a_subject_with_only_invalid_identifiers_is_rejected() -> None:
    wrong_check = CHILD_NHS[:9] + str((int(CHILD_NHS[9]) + 1) % 10)
    subject = {
        **SUBJECT,
        "identifiers": [
            {"scheme": "nhs_number", "value": wrong_check},
            {"scheme": "upn", "value": "not-a-upn"},
            {"scheme": "passport", "value": "X1"},
        ],
    }
    problem = rejection("Involvement", {**INVOLVEMENT, "subject": subject})
    assert problem.reason == "no_usable_identifier"
    assert "subject" in problem.detail
    # The message never quotes the identifiers it refused.
    assert wrong_check not in str(problem)


def test_a_subject_with_no_identifiers_is_rejected() -> None:
    problem = rejection("LifeEvent", {**LIFE_EVENT, "subject": {"identifiers": []}})
    assert problem.reason == "no_usable_identifier"


def test_one_usable_identifier_is_enough() -> None:
    subject = {
        **SUBJECT,
        "identifiers": [{"scheme": "passport", "value": "X1"}, {"scheme": "upn", "value": upn(3)}],
    }
    assert event_of("Involvement", {**INVOLVEMENT, "subject": subject}).kind


def test_a_related_person_without_a_usable_identifier_is_rejected() -> None:
    related = [
        {"person": {"identifiers": [{"scheme": "upn", "value": "?"}]}, "relationship": "SIBLING"}
    ]
    problem = rejection("LifeEvent", {**LIFE_EVENT, "related": related})
    assert problem.reason == "no_usable_identifier"
    assert "related[0].person" in problem.detail


def test_a_relationship_to_a_person_without_a_usable_identifier_is_rejected() -> None:
    problem = rejection("Relationship", {**RELATIONSHIP, "related_person": {"identifiers": []}})
    assert problem.reason == "no_usable_identifier"
    assert "related_person" in problem.detail


def details(count: int, width: int = 5) -> dict[str, str]:
    return {f"k{i:02d}": "x" * width for i in range(count)}


def test_twenty_details_are_accepted() -> None:
    assert MAX_DETAILS == 20
    event = event_of("LifeEvent", {**LIFE_EVENT, "details": details(20)})
    assert len(event.details) == 20


def test_twenty_one_details_are_too_many() -> None:
    assert rejection("LifeEvent", {**LIFE_EVENT, "details": details(21)}).reason == (
        "details_too_large"
    )


def test_a_detail_value_longer_than_the_limit_is_too_large() -> None:
    assert event_of("LifeEvent", {**LIFE_EVENT, "details": details(1, MAX_DETAIL_CHARS)})
    problem = rejection("LifeEvent", {**LIFE_EVENT, "details": details(1, MAX_DETAIL_CHARS + 1)})
    assert problem.reason == "details_too_large"


def test_a_detail_key_longer_than_the_limit_is_too_large() -> None:
    long_key = {"k" * (MAX_DETAIL_CHARS + 1): "v"}
    assert rejection("LifeEvent", {**LIFE_EVENT, "details": long_key}).reason == (
        "details_too_large"
    )


def test_more_than_twenty_related_persons_are_too_many() -> None:
    one = {"person": PARENT, "relationship": "HOUSEHOLD_MEMBER"}
    assert event_of("LifeEvent", {**LIFE_EVENT, "related": [one] * 20})
    problem = rejection("LifeEvent", {**LIFE_EVENT, "related": [copy.deepcopy(one)] * 21})
    assert problem.reason == "too_many_related"
