"""The JSON form agencies write by hand: strict conversion to Avro-ready records and back.

Synthetic people only: NHS numbers from the 999 test range, ZZ99 pseudo-postcodes.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from involvement_hub_producer.codec import SchemaRegistry, decode, encode
from involvement_hub_producer.errors import EncodeError
from involvement_hub_producer.json_form import from_json, to_json

REGISTRY = SchemaRegistry.packaged()
UTC = dt.UTC


def schema_of(name: str) -> Any:
    return REGISTRY.current(name).source


def with_defaults(expected: dict[str, Any], name: str) -> dict[str, Any]:
    """``expected``, and the default (in JSON form already) of every field of the current
    version it leaves out: a later version's new fields read back as their defaults."""
    fields = schema_of(name)["fields"]
    return {f["name"]: expected.get(f["name"], f.get("default")) for f in fields}


SUBJECT = {
    "identifiers": [
        {"scheme": "nhs_number", "value": "9990012377"},
        {"scheme": "upn", "value": "A999000000001"},
    ],
    "given_name": "Robin",
    "family_name": "Testperson",
    "date_of_birth": "2017-03-14",
    "address": {"uprn": "999000000101", "postcode": "ZZ99 3AZ"},
}
LIFE_EVENT: dict[str, Any] = {
    "event_id": "mis-le-000001",
    "occurred_at": "2026-11-03T14:05:00Z",
    "recorded_at": "2026-11-03T15:00:00Z",
    "source": {
        "agency_id": "oakfield-primary",
        "system": "school-mis",
        "record_ref": "UPN-A999000000001",
    },
    "subject": SUBJECT,
    "kind": "SCHOOL_EXCLUSION",
    "urgency": "PRIORITY",
}
LIFE_EVENT_DEFAULTS = {"related": [], "new_address": None, "details": {}}
INVOLVEMENT: dict[str, Any] = {
    "event_id": "cm-inv-000002",
    "occurred_at": "2026-11-02T09:30:00Z",
    "recorded_at": "2026-11-02T09:41:00Z",
    "source": {
        "agency_id": "northshire-childrens-services",
        "system": "case-management",
        "record_ref": "CM-2026-004711",
    },
    "subject": SUBJECT,
    "involvement_id": "INV-77-0002",
    "change": "ENDED",
    "service": {
        "service_id": "CSC-CIN-2",
        "name": "Children in Need Team 2",
        "category": "SOCIAL_CARE",
        "level": "STATUTORY",
    },
    "practitioner": {
        "practitioner_id": "PR-0043",
        "name": "Jo Placeholder",
        "role": "social worker",
        "email": "jo.placeholder@northshire.example",
    },
    "is_lead": True,
    "lawful_basis": "PUBLIC_TASK",
    "consent_to_share": None,
    "started_on": "2026-01-05",
    "ended_on": "2026-11-02",
    "end_reason": "case closed",
}


def test_dates_become_dates() -> None:
    record = from_json(LIFE_EVENT, schema_of("LifeEvent"))
    assert record["subject"]["date_of_birth"] == dt.date(2017, 3, 14)


def test_timestamps_with_a_zone_become_aware_datetimes() -> None:
    record = from_json(
        {**LIFE_EVENT, "occurred_at": "2026-11-03T14:05:00+01:00"}, schema_of("LifeEvent")
    )
    assert record["occurred_at"] == dt.datetime(2026, 11, 3, 13, 5, tzinfo=UTC)
    assert record["recorded_at"] == dt.datetime(2026, 11, 3, 15, 0, tzinfo=UTC)


def test_epoch_milliseconds_are_accepted_as_they_are() -> None:
    millis = 1_793_714_700_000
    record = from_json({**LIFE_EVENT, "occurred_at": millis}, schema_of("LifeEvent"))
    assert record["occurred_at"] == millis
    decoded = decode(encode(record, REGISTRY.current("LifeEvent")), REGISTRY)
    assert decoded.record["occurred_at"] == dt.datetime.fromtimestamp(millis / 1000, UTC)


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(EncodeError, match="occurred_at: timestamp needs a zone offset"):
        from_json({**LIFE_EVENT, "occurred_at": "2026-11-03T14:05:00"}, schema_of("LifeEvent"))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("subject", "date_of_birth"), "14/03/2017", r"subject\.date_of_birth: not a date"),
        (("recorded_at",), "yesterday", "recorded_at: not an ISO-8601 timestamp"),
    ],
)
def test_unreadable_dates_and_timestamps_name_the_field(
    path: tuple[str, ...], value: str, message: str
) -> None:
    record = copy.deepcopy(LIFE_EVENT)
    target = record
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(EncodeError, match=message):
        from_json(record, schema_of("LifeEvent"))


def test_unknown_fields_are_refused_with_their_path() -> None:
    with pytest.raises(EncodeError, match="unknown field colour in LifeEvent"):
        from_json({**LIFE_EVENT, "colour": "blue"}, schema_of("LifeEvent"))
    with pytest.raises(EncodeError, match=r"unknown field subject\.nickname in PersonRef"):
        from_json({**LIFE_EVENT, "subject": {**SUBJECT, "nickname": "R"}}, schema_of("LifeEvent"))
    related = [{"person": {**SUBJECT, "shoe_size": 3}, "relationship": "SIBLING"}]
    with pytest.raises(EncodeError, match=r"unknown field related\[0\]\.person\.shoe_size"):
        from_json({**LIFE_EVENT, "related": related}, schema_of("LifeEvent"))


def test_a_misspelt_enum_symbol_names_the_field_the_value_and_the_symbols() -> None:
    with pytest.raises(EncodeError) as error:
        from_json({**LIFE_EVENT, "urgency": "PRIORTY"}, schema_of("LifeEvent"))
    assert str(error.value) == (
        "urgency: 'PRIORTY' is not one of ROUTINE, PRIORITY, URGENT (did you mean PRIORITY?)"
    )


def test_an_enum_inside_a_list_is_checked_with_its_path() -> None:
    related = [{"person": SUBJECT, "relationship": "sibling"}]
    with pytest.raises(EncodeError) as error:
        from_json({**LIFE_EVENT, "related": related}, schema_of("LifeEvent"))
    message = str(error.value)
    assert message.startswith("related[0].relationship: a str is not one of PARENT, ")
    assert message.endswith("(did you mean SIBLING?)")


@pytest.mark.parametrize("value", ["Robin Testperson", "Robin", 7, None, "X" * 41])
def test_an_enum_value_that_is_not_symbol_shaped_is_not_echoed(value: Any) -> None:
    with pytest.raises(EncodeError) as error:
        from_json({**LIFE_EVENT, "urgency": value}, schema_of("LifeEvent"))
    message = str(error.value)
    assert message.startswith(f"urgency: a {type(value).__name__} is not one of ROUTINE, ")
    assert "Robin" not in message
    assert "XX" not in message


def test_the_schema_key_is_not_a_field() -> None:
    # `hub publish` removes "schema" before conversion; left in, it is an unknown field.
    with pytest.raises(EncodeError, match="unknown field schema"):
        from_json({**LIFE_EVENT, "schema": "LifeEvent"}, schema_of("LifeEvent"))


def test_missing_required_fields_are_named() -> None:
    with pytest.raises(EncodeError, match="missing required field urgency"):
        from_json({k: v for k, v in LIFE_EVENT.items() if k != "urgency"}, schema_of("LifeEvent"))
    source = {"agency_id": "oakfield-primary", "system": "school-mis"}
    with pytest.raises(EncodeError, match=r"missing required field source\.record_ref"):
        from_json({**LIFE_EVENT, "source": source}, schema_of("LifeEvent"))


def test_defaults_are_filled() -> None:
    subject = {"identifiers": [{"scheme": "nhs_number", "value": "9990012377"}]}
    record = from_json({**LIFE_EVENT, "subject": subject}, schema_of("LifeEvent"))
    assert {k: record[k] for k in LIFE_EVENT_DEFAULTS} == LIFE_EVENT_DEFAULTS
    assert record["subject"] == {
        **subject,
        "given_name": None,
        "family_name": None,
        "date_of_birth": None,
        "address": None,
    }


def test_null_unions_take_null_or_the_bare_value() -> None:
    schema = schema_of("Involvement")
    record = from_json(INVOLVEMENT, schema)
    assert record["consent_to_share"] is None
    assert record["ended_on"] == dt.date(2026, 11, 2)
    still_open = from_json({**INVOLVEMENT, "change": "STARTED", "ended_on": None}, schema)
    assert still_open["ended_on"] is None
    moved = from_json(
        {**LIFE_EVENT, "kind": "ADDRESS_CHANGED", "new_address": {"postcode": "ZZ99 4QZ"}},
        schema_of("LifeEvent"),
    )
    assert moved["new_address"] == {"uprn": None, "postcode": "ZZ99 4QZ"}


def test_to_json_inverts_from_json() -> None:
    record = from_json(LIFE_EVENT, schema_of("LifeEvent"))
    assert to_json(record) == with_defaults({**LIFE_EVENT, **LIFE_EVENT_DEFAULTS}, "LifeEvent")


def test_to_json_writes_timestamps_in_utc() -> None:
    when = dt.datetime(2026, 11, 3, 14, 5, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert to_json({"at": when, "on": dt.date(2026, 1, 2)}) == {
        "at": "2026-11-03T13:05:00Z",
        "on": "2026-01-02",
    }


PRACTITIONER_DEFAULTS = {"phone": None, "team": None, "out_of_hours_phone": None}


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("LifeEvent", LIFE_EVENT, {**LIFE_EVENT, **LIFE_EVENT_DEFAULTS}),
        (
            "Involvement",
            INVOLVEMENT,
            {
                **INVOLVEMENT,
                "practitioner": {**INVOLVEMENT["practitioner"], **PRACTITIONER_DEFAULTS},
                "safeguarding_override": None,  # v2's new field, filled with its default
            },
        ),
    ],
    ids=["LifeEvent", "Involvement"],
)
def test_json_to_wire_and_back(name: str, value: dict[str, Any], expected: dict[str, Any]) -> None:
    schema = REGISTRY.current(name)
    decoded = decode(encode(from_json(value, schema.source), schema), REGISTRY)
    assert to_json(decoded.record) == with_defaults(expected, name)
