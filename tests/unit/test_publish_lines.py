"""``hub publish`` checks every JSON line before sending it; a bad line is named, never echoed.

No broker here: :func:`prepare_lines` is the pure half of publishing. Synthetic people only
(NHS numbers from :func:`involvement_hub_devtools.synthetic.nhs_number`, addresses at ``.example``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from involvement_hub.cli.publish import LineError, Prepared, prepare_lines
from involvement_hub.settings import DEFAULT_AGENCIES
from involvement_hub_devtools.synthetic import nhs_number
from involvement_hub_producer import SchemaRegistry, decode

REGISTRY = SchemaRegistry.packaged()
README = Path(__file__).resolve().parents[2] / "schemas" / "README.md"
CHILD_NHS = nhs_number(3)
PARENT_NHS = nhs_number(4)
GIVEN, FAMILY = "Robin", "Testperson"

CHILD = {
    "identifiers": [
        {"scheme": "nhs_number", "value": CHILD_NHS},
        {"scheme": "la_person_id", "value": "NSC-P-1001"},
    ],
    "given_name": GIVEN,
    "family_name": FAMILY,
    "date_of_birth": "2017-03-14",
    "address": {"uprn": "999000000101", "postcode": "ZZ99 3AZ"},
}
INVOLVEMENT: dict[str, Any] = {
    "schema": "Involvement",
    "event_id": "nsc-cm-88412",
    "occurred_at": "2026-11-02T09:30:00Z",
    "recorded_at": 1793612460000,
    "source": {
        "agency_id": "northshire-social-care",
        "system": "case-management",
        "record_ref": "CM-2026-004711",
    },
    "subject": CHILD,
    "involvement_id": "CIN-2026-0042",
    "change": "STARTED",
    "service": {
        "service_id": "CIN-2",
        "name": "Children in Need Team 2",
        "category": "SOCIAL_CARE",
        "level": "STATUTORY",
    },
    "practitioner": {
        "practitioner_id": "SW-0043",
        "name": "Jo Placeholder",
        "role": "social worker",
        "email": "jo.placeholder@northshire.example",
    },
    "is_lead": True,
    "lawful_basis": "PUBLIC_TASK",
    "started_on": "2026-11-02",
}
LIFE_EVENT: dict[str, Any] = {
    "schema": "LifeEvent",
    "event_id": "oakfield-excl-000173",
    "occurred_at": "2026-11-03T14:05:00Z",
    "recorded_at": "2026-11-03T15:00:00+00:00",
    "source": {"agency_id": "oakfield-primary", "system": "school-mis", "record_ref": "PUPIL-173"},
    "subject": CHILD,
    "kind": "SCHOOL_EXCLUSION",
    "urgency": "PRIORITY",
    "related": [
        {
            "person": {"identifiers": [{"scheme": "nhs_number", "value": PARENT_NHS}]},
            "relationship": "PARENT",
        }
    ],
    "details": {"exclusion_type": "fixed_term", "days": "3"},
}
RELATIONSHIP: dict[str, Any] = {
    "schema": "Relationship",
    "event_id": "nsp-hh-5521",
    "occurred_at": "2026-11-04T22:10:00Z",
    "recorded_at": "2026-11-05T08:02:00Z",
    "source": {
        "agency_id": "northshire-police",
        "system": "records-management",
        "record_ref": "OCC-26-004211",
    },
    "subject": {"identifiers": [{"scheme": "police_id", "value": "NSP-77120"}]},
    "relationship": "HOUSEHOLD_MEMBER_WITH",
    "related_person": CHILD,
    "change": "STARTED",
}
GOOD = {"Involvement": INVOLVEMENT, "LifeEvent": LIFE_EVENT, "Relationship": RELATIONSHIP}


def line(
    record: dict[str, Any], change: Callable[[dict[str, Any]], object] = lambda _: None
) -> str:
    edited = copy.deepcopy(record)
    change(edited)
    return json.dumps(edited)


def prepare(
    *lines: str, agencies: tuple[str, ...] = DEFAULT_AGENCIES
) -> list[Prepared | LineError]:
    return list(prepare_lines(lines, REGISTRY, agencies))


def only_error(*lines: str, agencies: tuple[str, ...] = DEFAULT_AGENCIES) -> LineError:
    (result,) = prepare(*lines, agencies=agencies)
    assert isinstance(result, LineError), result
    return result


@pytest.mark.parametrize("record_type", sorted(GOOD))
def test_a_good_line_of_each_type_is_prepared(record_type: str) -> None:
    record = GOOD[record_type]

    (result,) = prepare(line(record))

    assert isinstance(result, Prepared)
    assert result.line == 1
    assert result.agency_id == record["source"]["agency_id"]
    assert result.key == record["source"]["record_ref"].encode("utf-8")
    decoded = decode(result.value, REGISTRY)
    assert decoded.name == record_type
    assert decoded.record["event_id"] == record["event_id"]


def test_the_readme_examples_are_accepted() -> None:
    examples = [t for t in README.read_text("utf-8").splitlines() if t.startswith('{"schema"')]

    results = prepare(*examples)

    assert len(results) == 4  # one per record type
    assert all(isinstance(r, Prepared) for r in results), [str(r) for r in results]


def test_blank_lines_are_skipped_and_numbering_follows_the_file() -> None:
    results = prepare("", line(LIFE_EVENT), "   \n", "\t", "{", line(RELATIONSHIP))

    assert [(type(r).__name__, r.line) for r in results] == [
        ("Prepared", 2),
        ("LineError", 5),
        ("Prepared", 6),
    ]


def test_invalid_json_names_the_line_and_column() -> None:
    results = prepare(line(LIFE_EVENT), '{"schema": "LifeEvent",, }')

    error = results[1]
    assert isinstance(error, LineError)
    assert error.line == 2
    assert str(error).startswith("line 2: not valid JSON")
    assert "column 24" in error.reason


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000, '{"schema": "LifeEvent", "days": 1' + "0" * 5000 + "}"],
    ids=["nested-too-deep", "integer-too-long"],
)
def test_json_that_python_cannot_hold_is_a_line_error(text: str) -> None:
    """json.loads raises RecursionError and ValueError here, not JSONDecodeError."""
    error = only_error(text)

    assert error.reason.startswith("not valid JSON")


def test_a_line_must_be_an_object() -> None:
    assert only_error(json.dumps([LIFE_EVENT])).reason == "a line must be a JSON object"


def test_a_missing_schema_lists_the_record_types() -> None:
    error = only_error(line(LIFE_EVENT, lambda r: r.pop("schema")))

    assert '"schema"' in error.reason
    for name in ("Involvement", "LifeEvent", "Relationship"):
        assert name in error.reason


def test_an_unknown_schema_is_named_with_the_known_ones() -> None:
    error = only_error(line(LIFE_EVENT, lambda r: r.update(schema="LifeEvnt")))

    assert "unknown record type 'LifeEvnt'" in error.reason
    assert "LifeEvent" in error.reason


def test_an_unknown_field_is_named_by_its_path() -> None:
    error = only_error(line(LIFE_EVENT, lambda r: r["subject"].update(nickname="Bobbin")))

    assert "unknown field subject.nickname" in error.reason
    assert "Bobbin" not in error.reason


def test_a_missing_required_field_is_named() -> None:
    error = only_error(line(INVOLVEMENT, lambda r: r.pop("started_on")))

    assert "missing required field started_on" in error.reason


def test_a_misspelt_enum_lists_the_symbols_allowed() -> None:
    error = only_error(line(LIFE_EVENT, lambda r: r.update(urgency="PRIORTY")))

    assert error.reason == (
        "urgency: 'PRIORTY' is not one of ROUTINE, PRIORITY, URGENT (did you mean PRIORITY?)"
    )


def test_a_timestamp_without_a_zone_is_refused() -> None:
    error = only_error(line(LIFE_EVENT, lambda r: r.update(occurred_at="2026-11-03T14:05:00")))

    assert "occurred_at" in error.reason
    assert "zone" in error.reason


def test_an_agency_the_hub_does_not_know_is_refused() -> None:
    agencies = ("northshire-social-care", "northshire-police")

    results = prepare(line(LIFE_EVENT), line(RELATIONSHIP), agencies=agencies)

    assert isinstance(results[0], LineError)
    assert "'oakfield-primary' is not one of the hub's agencies" in results[0].reason
    assert isinstance(results[1], Prepared)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(record: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = record
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value

    return change


# Each mistake sits beside personal data, or puts personal data where it does not belong.
MISTAKES = {
    "nhs-number-as-integer": _set("subject.identifiers.0.value", int(CHILD_NHS)),
    "name-as-list": _set("subject.given_name", [GIVEN, FAMILY]),
    "name-in-an-enum": _set("kind", f"{GIVEN} {FAMILY}"),
    "name-in-urgency": _set("urgency", f"{GIVEN} {CHILD_NHS}"),
    "nhs-number-in-a-timestamp": _set("occurred_at", CHILD_NHS),
    "name-in-a-date": _set("subject.date_of_birth", f"{GIVEN} 2017"),
    "address-as-text": _set("subject.address", f"1 {FAMILY} Street, ZZ99 3AZ"),
    "wrong-address-field-type": _set("subject.address", {"uprn": 101, "postcode": CHILD_NHS}),
    "details-as-text": _set("details", f"{GIVEN} {FAMILY} {CHILD_NHS}"),
    "details-value-as-number": _set("details", {"nhs": int(CHILD_NHS)}),
    "related-not-a-list": _set("related", {"name": GIVEN, "nhs": CHILD_NHS}),
    "related-person-as-text": _set("related.0.person", f"{GIVEN} {FAMILY} {PARENT_NHS}"),
    "null-identifier": _set("subject.identifiers.1", {"scheme": "nhs_number", "value": None}),
    "record-ref-as-number": _set("source.record_ref", int(CHILD_NHS)),
    "subject-as-text": _set("subject", f"{GIVEN} {FAMILY}, NHS {CHILD_NHS}"),
    "missing-identifiers": lambda r: r["subject"].pop("identifiers"),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_an_error_never_echoes_personal_data(mistake: str) -> None:
    text = line(LIFE_EVENT, MISTAKES[mistake])

    error = str(only_error(text))

    for personal in (GIVEN, FAMILY, CHILD_NHS, PARENT_NHS, "ZZ99 3AZ", "2017-03-14"):
        assert personal not in error
