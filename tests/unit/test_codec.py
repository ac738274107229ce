"""Single-object encoding: round trips, schema evolution, and bytes sent to hurt the hub.

All people here are synthetic: NHS numbers come from the 999 range reserved for testing,
postcodes from the ZZ99 pseudo-postcode range, phone numbers from Ofcom's drama range.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import struct
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from involvement_hub_producer.codec import (
    BAD_MAGIC,
    DECODE_REASONS,
    MAGIC,
    MALFORMED_BODY,
    TOO_LARGE,
    TRAILING_BYTES,
    TRUNCATED_HEADER,
    UNKNOWN_SCHEMA,
    Decoded,
    KnownSchema,
    SchemaRegistry,
    decode,
    encode,
    load_schema,
)
from involvement_hub_producer.errors import (
    DecodeError,
    EncodeError,
    IncompatibleSchemaError,
    SchemaError,
)
from involvement_hub_producer.fingerprint import fingerprint

SCHEMAS = Path(__file__).parents[2] / "schemas"
REGISTRY = SchemaRegistry.packaged()
UTC = dt.UTC

# Valid modulus-11 check digits, all in the 999 range reserved for testing.
NHS_CHILD = "9990012377"
NHS_PARENT = "9990037116"
NHS_SIBLING = "9990049483"


def nhs_number_is_valid(number: str) -> bool:
    digits = [int(c) for c in number]
    check = 11 - sum(w * d for w, d in zip(range(10, 1, -1), digits[:9], strict=True)) % 11
    return len(digits) == 10 and check != 10 and check % 11 == digits[9]


def person(nhs: str, la_id: str, given: str, dob: dt.date) -> dict[str, Any]:
    return {
        "identifiers": [
            {"scheme": "nhs_number", "value": nhs},
            {"scheme": "la_person_id", "value": la_id},
        ],
        "given_name": given,
        "family_name": "Testperson",
        "date_of_birth": dob,
        "address": {"uprn": "999000000101", "postcode": "ZZ99 3AZ"},
    }


SOURCE = {
    "agency_id": "northshire-childrens-services",
    "system": "case-management",
    "record_ref": "CM-2026-004711",
}
CHILD = person(NHS_CHILD, "NSC-P-1001", "Robin", dt.date(2017, 3, 14))
PARENT = person(NHS_PARENT, "NSC-P-1002", "Morgan", dt.date(1990, 7, 2))
SIBLING = person(NHS_SIBLING, "NSC-P-1003", "Kit", dt.date(2019, 1, 9))

INVOLVEMENT: dict[str, Any] = {
    "event_id": "cm-inv-000001",
    "occurred_at": dt.datetime(2026, 11, 2, 9, 30, tzinfo=UTC),
    "recorded_at": dt.datetime(2026, 11, 2, 9, 41, 12, 345000, tzinfo=UTC),
    "source": SOURCE,
    "subject": CHILD,
    "involvement_id": "INV-77-0001",
    "change": "STARTED",
    "service": {
        "service_id": "EH-NORTH",
        "name": "Early Help Team North",
        "category": "EARLY_HELP",
        "level": "TARGETED",
    },
    "practitioner": {
        "practitioner_id": "PR-0042",
        "name": "Sam Placeholder",
        "role": "family support worker",
        "email": "sam.placeholder@northshire.example",
        "phone": "01632 960001",
        "team": "Early Help North",
        "out_of_hours_phone": "01632 960999",
    },
    "is_lead": True,
    "lawful_basis": "PUBLIC_TASK",
    "consent_to_share": True,
    "started_on": dt.date(2026, 11, 2),
    "ended_on": None,
    "end_reason": None,
}
LIFE_EVENT: dict[str, Any] = {
    "event_id": "mis-le-000001",
    "occurred_at": dt.datetime(2026, 11, 3, 14, 5, tzinfo=UTC),
    "recorded_at": dt.datetime(2026, 11, 3, 15, 0, tzinfo=UTC),
    "source": {
        "agency_id": "oakfield-primary",
        "system": "school-mis",
        "record_ref": "UPN-A999000000001",
    },
    "subject": CHILD,
    "kind": "SCHOOL_EXCLUSION",
    "urgency": "PRIORITY",
    "related": [{"person": PARENT, "relationship": "PARENT"}],
    "new_address": None,
    "details": {"exclusion_type": "fixed_term", "days": "3"},
}
RELATIONSHIP: dict[str, Any] = {
    "event_id": "cm-rel-000001",
    "occurred_at": dt.datetime(2026, 11, 4, 8, 0, tzinfo=UTC),
    "recorded_at": dt.datetime(2026, 11, 4, 8, 2, tzinfo=UTC),
    "source": SOURCE,
    "subject": SIBLING,
    "relationship": "SIBLING_OF",
    "related_person": CHILD,
    "change": "STARTED",
}
OVERRIDDEN: dict[str, Any] = {
    **INVOLVEMENT,
    "service": {**INVOLVEMENT["service"], "category": "MENTAL_HEALTH"},
    "consent_to_share": False,
    "safeguarding_override": {
        "authorised_by": "PR-0001",
        "reason": "risk of significant harm",
        "authorised_at": dt.datetime(2026, 11, 2, 10, 0, tzinfo=UTC),
    },
}
SUBSCRIPTION: dict[str, Any] = {
    "event_id": "mis-sub-000001",
    "occurred_at": dt.datetime(2026, 11, 5, 9, 0, tzinfo=UTC),
    "recorded_at": dt.datetime(2026, 11, 5, 9, 1, tzinfo=UTC),
    "source": LIFE_EVENT["source"],
    "subject": CHILD,
    "subscription_id": "SUB-1",
    "change": "STARTED",
    "practitioner": {**INVOLVEMENT["practitioner"], "practitioner_id": "DSL-1"},
    "kinds": ["SCHOOL_EXCLUSION", "MISSING_EPISODE"],
    "reason": "attendance support plan",
}
# One record of each type, with every field of its current version when these were written.
RECORDS = {
    "Involvement": OVERRIDDEN,
    "LifeEvent": LIFE_EVENT,
    "Relationship": RELATIONSHIP,
    "Subscription": SUBSCRIPTION,
}


def as_read(record: dict[str, Any], reader: KnownSchema) -> dict[str, Any]:
    """``record`` as ``reader`` reads it back: its fields only, and the defaults of those the
    record leaves out (a later version's new fields: null or a plain value)."""
    return {
        f["name"]: record[f["name"]] if f["name"] in record else f["default"]
        for f in reader.source["fields"]
    }


def newest_file(name: str) -> Path:
    """The schema file of a record's current version: the highest-numbered one."""
    files = [p for p in SCHEMAS.glob("*.avsc") if json.loads(p.read_text("utf-8"))["name"] == name]
    return max(files, key=lambda p: int(p.name.split(".v")[1].removesuffix(".avsc")))


def test_synthetic_nhs_numbers_are_valid_test_numbers() -> None:
    for number in (NHS_CHILD, NHS_PARENT, NHS_SIBLING):
        assert number.startswith("999")
        assert nhs_number_is_valid(number)
    assert not nhs_number_is_valid("9990012378")


# ── round trip ────────────────────────────────────────────────────────────────────────


def test_every_record_type_has_a_round_trip_case() -> None:
    assert set(RECORDS) == set(REGISTRY.names)


# Every record, Subscription included: its `change` is the SubscriptionChange enum
# {STARTED, ENDED} that records.py reads, not the Practitioner record it once was by mistake.
@pytest.mark.parametrize("name", sorted(RECORDS))
def test_round_trip(name: str) -> None:
    record, current = RECORDS[name], REGISTRY.current(name)
    source = json.loads(newest_file(name).read_text("utf-8"))
    # A version differing from the one before only in docs, aliases or defaults is the same
    # writer on the wire, known by the earlier version's number.
    writer = REGISTRY.by_fingerprint(fingerprint(source))
    assert writer is not None

    data = encode(record, current)

    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == struct.pack("<Q", fingerprint(source))
    assert decode(data, REGISTRY) == Decoded(name, writer.version, as_read(record, current))


def test_an_involvement_written_in_v1_is_read_without_an_override() -> None:
    v1_source = json.loads((SCHEMAS / "involvement.v1.avsc").read_text("utf-8"))
    v1 = REGISTRY.by_fingerprint(fingerprint(v1_source))
    assert v1 is not None
    assert v1.version == 1
    current = REGISTRY.current("Involvement")
    assert current.version > 1

    decoded = decode(encode(INVOLVEMENT, v1), REGISTRY)

    assert decoded.writer_version == 1
    assert decoded.record == as_read({**INVOLVEMENT, "safeguarding_override": None}, current)


def test_encode_fills_defaults_of_omitted_optional_fields() -> None:
    record = {k: v for k, v in LIFE_EVENT.items() if k not in ("related", "new_address")}
    decoded = decode(encode(record, REGISTRY.current("LifeEvent")), REGISTRY)
    assert decoded.record["related"] == []
    assert decoded.record["new_address"] is None


# ── schema evolution ──────────────────────────────────────────────────────────────────


def life_event_v1() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / "life_event.v1.avsc").read_text("utf-8"))
    return loaded


def field_of(schema: dict[str, Any], name: str) -> dict[str, Any]:
    (field,) = [f for f in schema["fields"] if f["name"] == name]
    return field


def life_event_v2() -> dict[str, Any]:
    """A test-only v2: one new field with a default, one new kind."""
    schema = life_event_v1()
    field_of(schema, "kind")["type"]["symbols"].append("YOUNG_CARER_IDENTIFIED")
    schema["fields"].append(
        {
            "name": "channel",
            "type": "string",
            "default": "unspecified",
            "doc": "How the agency learnt of the event.",
        }
    )
    return schema


def registry_of(folder: Path, files: dict[str, dict[str, Any]]) -> SchemaRegistry:
    folder.mkdir()
    for file_name, schema in files.items():
        (folder / file_name).write_text(json.dumps(schema), "utf-8")
    return SchemaRegistry.from_directory(folder)


def test_old_writer_is_read_into_the_new_shape(tmp_path: Path) -> None:
    registry = registry_of(
        tmp_path / "s",
        {"life_event.v1.avsc": life_event_v1(), "life_event.v2.avsc": life_event_v2()},
    )
    v1 = registry.by_fingerprint(fingerprint(life_event_v1()))
    assert v1 is not None
    assert v1.version == 1
    assert registry.current("LifeEvent").version == 2

    decoded = decode(encode(LIFE_EVENT, v1), registry)

    assert decoded.writer_version == 1
    assert decoded.record == {**LIFE_EVENT, "channel": "unspecified"}


def test_new_writer_with_a_new_kind_is_read_by_a_hub_that_knows_it(tmp_path: Path) -> None:
    registry = registry_of(
        tmp_path / "s",
        {"life_event.v1.avsc": life_event_v1(), "life_event.v2.avsc": life_event_v2()},
    )
    record = {**LIFE_EVENT, "kind": "YOUNG_CARER_IDENTIFIED", "channel": "phone"}

    decoded = decode(encode(record, registry.current("LifeEvent")), registry)

    assert (decoded.writer_version, decoded.record) == (2, record)


def test_new_writer_is_unknown_to_a_hub_that_has_not_deployed_it(tmp_path: Path) -> None:
    # A writer is known only by its fingerprint, so a hub still on v1 cannot read v2 bytes at
    # all: it quarantines them rather than guess. This is why the hub deploys a version first.
    newer = registry_of(tmp_path / "new", {"life_event.v2.avsc": life_event_v2()})
    older = registry_of(tmp_path / "old", {"life_event.v1.avsc": life_event_v1()})
    data = encode({**LIFE_EVENT, "kind": "YOUNG_CARER_IDENTIFIED"}, newer.current("LifeEvent"))

    with pytest.raises(DecodeError) as caught:
        decode(data, older)
    assert caught.value.reason == UNKNOWN_SCHEMA


def test_enum_default_maps_a_kind_the_reader_does_not_know(tmp_path: Path) -> None:
    # Within one registry the reader lacks a writer's symbol only when a later version
    # retires it; LifeEventKind's default OTHER then stands in for it.
    retired = life_event_v1()
    field_of(retired, "kind")["type"]["symbols"].remove("CARER_CHANGED")
    registry = registry_of(
        tmp_path / "s", {"life_event.v1.avsc": life_event_v1(), "life_event.v2.avsc": retired}
    )
    v1 = registry.by_fingerprint(fingerprint(life_event_v1()))
    assert v1 is not None

    decoded = decode(encode({**LIFE_EVENT, "kind": "CARER_CHANGED"}, v1), registry)

    assert decoded.record["kind"] == "OTHER"


def test_an_enum_without_default_cannot_lose_a_symbol(tmp_path: Path) -> None:
    # Why the rule "change symbols only where the enum has a default": Urgency has none, so a
    # v2 without PRIORITY could not read a v1 message that says PRIORITY. The registry
    # refuses such a set rather than quarantine those messages once it runs.
    retired = life_event_v1()
    field_of(retired, "urgency")["type"]["symbols"].remove("PRIORITY")

    with pytest.raises(IncompatibleSchemaError) as caught:
        registry_of(
            tmp_path / "s", {"life_event.v1.avsc": life_event_v1(), "life_event.v2.avsc": retired}
        )
    assert caught.value.problems == (
        "LifeEvent v1 -> v2: LifeEvent.urgency: v1 may write PRIORITY, which v2's enum Urgency "
        "does not have, and that enum has no default",
    )


# ── hostile input ─────────────────────────────────────────────────────────────────────

INVOLVEMENT_HEADER = REGISTRY.current("Involvement").header
VALID = encode(INVOLVEMENT, REGISTRY.current("Involvement"))


def zigzag(n: int) -> bytes:
    """An Avro long: zig-zag, then a little-endian base-128 varint."""
    value = (n << 1) ^ (n >> 63)
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# Involvement's first fields, all as small as they can be: event_id "", occurred_at 0,
# recorded_at 0, then source's agency_id, system and record_ref as "".
SMALLEST_PREFIX = b"\x00" * 6
# subject with no identifiers and its four optional fields null (union branch 0).
EMPTY_SUBJECT = b"\x00" + b"\x00" * 4

HOSTILE = {
    "empty": (b"", TRUNCATED_HEADER),
    "one_byte_of_magic": (b"\xc3", TRUNCATED_HEADER),
    "one_other_byte": (b"\x7b", BAD_MAGIC),
    "confluent_framing": (b"\x00" + struct.pack(">I", 7) + SMALLEST_PREFIX, BAD_MAGIC),
    "json_instead_of_avro": (b'{"event_id": "x"}', BAD_MAGIC),
    "truncated_header": (MAGIC + b"\x01\x02\x03", TRUNCATED_HEADER),
    "unknown_fingerprint": (
        MAGIC + struct.pack("<Q", 0x0123456789ABCDEF) + b"\x00",
        UNKNOWN_SCHEMA,
    ),
    "header_and_nothing": (INVOLVEMENT_HEADER, MALFORMED_BODY),
    "string_of_two_billion_bytes": (INVOLVEMENT_HEADER + zigzag(2_000_000_000), MALFORMED_BODY),
    "a_billion_array_items": (
        INVOLVEMENT_HEADER + SMALLEST_PREFIX + zigzag(1_000_000_000),
        MALFORMED_BODY,
    ),
    "negative_block_count_with_huge_size": (
        INVOLVEMENT_HEADER + SMALLEST_PREFIX + zigzag(-1_000_000_000) + zigzag(2**62),
        MALFORMED_BODY,
    ),
    "negative_string_length": (INVOLVEMENT_HEADER + zigzag(-3) + b"abc", MALFORMED_BODY),
    # Padded, so that an index read as valid would end in trailing_bytes, not malformed_body.
    "invalid_union_index": (
        INVOLVEMENT_HEADER + SMALLEST_PREFIX + b"\x00" + zigzag(5) + b"\x00" * 64,
        MALFORMED_BODY,
    ),
    "invalid_enum_index": (
        INVOLVEMENT_HEADER + SMALLEST_PREFIX + EMPTY_SUBJECT + b"\x00" + zigzag(7) + b"\x00" * 64,
        MALFORMED_BODY,
    ),
    "negative_union_index": (
        INVOLVEMENT_HEADER + SMALLEST_PREFIX + b"\x00" + zigzag(-1) + b"\x00" * 64,
        MALFORMED_BODY,
    ),
    "negative_enum_index": (
        INVOLVEMENT_HEADER + SMALLEST_PREFIX + EMPTY_SUBJECT + b"\x00" + zigzag(-1) + b"\x00" * 64,
        MALFORMED_BODY,
    ),
    # One identifier of two empty strings takes 2 bytes, not the 1 its block claims.
    "block_size_that_lies": (
        INVOLVEMENT_HEADER + SMALLEST_PREFIX + zigzag(-1) + zigzag(1) + b"\x00" * 64,
        MALFORMED_BODY,
    ),
    "block_count_larger_than_the_bytes_left": (
        INVOLVEMENT_HEADER + SMALLEST_PREFIX + zigzag(65) + b"\x00" * 64,
        MALFORMED_BODY,
    ),
    "sized_block_count_larger_than_its_size": (
        INVOLVEMENT_HEADER + SMALLEST_PREFIX + zigzag(-(2**62)) + zigzag(64) + b"\x00" * 64,
        MALFORMED_BODY,
    ),
    "oversized_varint": (INVOLVEMENT_HEADER + b"\xff" * 10 + b"\x01", MALFORMED_BODY),
    "unterminated_varint": (INVOLVEMENT_HEADER + b"\xff" * 200_000, MALFORMED_BODY),
    "trailing_bytes": (VALID + b"\x00", TRAILING_BYTES),
    "over_the_default_limit": (VALID + b"\x00" * (256 * 1024), TOO_LARGE),
}


@contextmanager
def bounded(seconds: float = 1.0, peak_bytes: int = 5 * 1024 * 1024) -> Iterator[None]:
    """Fail if the block takes longer than ``seconds`` or allocates ``peak_bytes`` at once."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < seconds
    assert peak < peak_bytes


@pytest.mark.parametrize(("data", "reason"), list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_input_is_refused_cheaply(data: bytes, reason: str) -> None:
    with bounded(), pytest.raises(DecodeError) as caught:
        decode(data, REGISTRY)
    assert caught.value.reason == reason


def test_the_size_limit_is_checked_first() -> None:
    with pytest.raises(DecodeError) as caught:
        decode(VALID, REGISTRY, max_bytes=len(VALID) - 1)
    assert caught.value.reason == TOO_LARGE
    assert decode(VALID, REGISTRY, max_bytes=len(VALID)).name == "Involvement"


@pytest.mark.parametrize("data", [VALID[:-1], VALID + b"\x00"], ids=["truncated", "trailing"])
def test_decode_error_carries_no_payload(data: bytes) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(data, REGISTRY)
    for text in (caught.value.detail, str(caught.value)):
        assert NHS_CHILD not in text
        assert "Robin" not in text
        assert "CM-2026-004711" not in text


def test_negative_enum_index_is_refused() -> None:
    # fastavro indexes enum symbols with Python's negative indexing, so -1 would read as
    # the last symbol (ENDED); the codec's walk of the body refuses it instead.
    # Relationship's last field is the `change` enum; 0x01 is zig-zag -1.
    data = encode(RELATIONSHIP, REGISTRY.current("Relationship"))
    with pytest.raises(DecodeError) as caught:
        decode(data[:-1] + zigzag(-1), REGISTRY)
    assert caught.value.reason == MALFORMED_BODY


def test_negative_union_index_is_refused() -> None:
    # The same for a union branch: Relationship's last-but-one field group ends with
    # related_person.address, a ["null", Address] union; rewrite a null (index 0) as -1.
    record = {**RELATIONSHIP, "related_person": {**RELATIONSHIP["related_person"], "address": None}}
    data = encode(record, REGISTRY.current("Relationship"))
    # The related person's address union index (0x00) sits just before the
    # relationship-change enum byte at the end.
    assert data[-2:-1] == b"\x00"
    with pytest.raises(DecodeError) as caught:
        decode(data[:-2] + zigzag(-1) + data[-1:], REGISTRY)
    assert caught.value.reason == MALFORMED_BODY


@settings(max_examples=300, deadline=timedelta(seconds=1), database=None)
@given(name=st.sampled_from(REGISTRY.names), body=st.binary(max_size=4096))
def test_any_bytes_after_a_valid_header_decode_or_raise_decode_error(
    name: str, body: bytes
) -> None:
    outcome: Decoded | DecodeError
    try:
        outcome = decode(REGISTRY.current(name).header + body, REGISTRY)
    except DecodeError as exc:
        outcome = exc
    if isinstance(outcome, DecodeError):
        assert outcome.reason in DECODE_REASONS
    else:
        assert outcome.name == name


# ── schemas the codec refuses ─────────────────────────────────────────────────────────


def record_with(field_type: Any) -> dict[str, Any]:
    return {"type": "record", "name": "Probe", "fields": [{"name": "f", "type": field_type}]}


EMPTY_RECORD = {"type": "record", "name": "Nothing", "fields": []}


@pytest.mark.parametrize(
    "field_type",
    [
        {"type": "array", "items": "null"},
        {"type": "array", "items": EMPTY_RECORD},
        {"type": "array", "items": {"type": "fixed", "name": "Zero", "size": 0}},
        {"type": "map", "values": {"type": "array", "items": "null"}},
        ["null", {"type": "array", "items": {"type": "array", "items": "null"}}],
    ],
    ids=["null", "empty_record", "fixed_0", "inside_map", "nested_in_union"],
)
def test_arrays_of_zero_byte_items_are_refused(field_type: Any) -> None:
    # A count of a billion zero-byte items consumes no input: it would run out of memory.
    with pytest.raises(SchemaError, match="zero bytes"):
        load_schema(record_with(field_type), 1, "probe.v1.avsc")


@pytest.mark.parametrize(
    "field_type",
    [
        {"type": "map", "values": "null"},
        {"type": "map", "values": EMPTY_RECORD},
        {"type": "array", "items": ["null", "string"]},
        {"type": "array", "items": "int"},
    ],
    ids=["map_of_null", "map_of_empty_record", "array_of_optional", "array_of_int"],
)
def test_containers_whose_items_consume_input_are_allowed(field_type: Any) -> None:
    # Maps of null are fine: every entry has a string key, so it takes at least one byte and
    # a hostile count still runs out of input. A union takes a byte for its branch index.
    load_schema(record_with(field_type), 1, "probe.v1.avsc")


@pytest.mark.parametrize(
    "schema",
    [
        {
            "type": "record",
            "name": "Node",
            "fields": [{"name": "next", "type": ["null", "Node"]}],
        },
        {
            "type": "record",
            "name": "Outer",
            "fields": [
                {
                    "name": "inner",
                    "type": {
                        "type": "record",
                        "name": "Inner",
                        "fields": [{"name": "back", "type": {"type": "array", "items": "Outer"}}],
                    },
                }
            ],
        },
    ],
    ids=["direct", "through_another_record"],
)
def test_recursive_schemas_are_refused(schema: dict[str, Any]) -> None:
    # fastavro's compiled reader recurses on the C stack: ten thousand nesting levels of a
    # recursive record (about 10 KB) crash the process instead of raising RecursionError.
    with pytest.raises(SchemaError, match="contains itself"):
        load_schema(schema, 1, "probe.v1.avsc")


def test_a_named_type_used_twice_is_not_recursion() -> None:
    # LifeEvent refers to PersonRef and Address again after defining them.
    assert load_schema(life_event_v1(), 1, "life_event.v1.avsc").name == "LifeEvent"


def test_top_level_schema_must_be_a_record() -> None:
    with pytest.raises(SchemaError, match="must be a record"):
        load_schema({"type": "enum", "name": "E", "symbols": ["A"]}, 1, "e.v1.avsc")


# ── the registry ──────────────────────────────────────────────────────────────────────


def test_two_files_with_the_same_version_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"two files define org\.involvementhub\.LifeEvent v1"):
        registry_of(
            tmp_path / "s",
            {"life_event.v1.avsc": life_event_v1(), "life_events.v1.avsc": life_event_v2()},
        )


@pytest.mark.parametrize(
    "file_name",
    ["LifeEvent.v1.avsc", "life_event.avsc", "life_event.v0.avsc", "life_event_v1.avsc"],
)
def test_badly_named_files_are_refused(tmp_path: Path, file_name: str) -> None:
    with pytest.raises(SchemaError, match=r"<name>\.v<N>\.avsc"):
        registry_of(tmp_path / "s", {file_name: life_event_v1()})


def test_other_files_in_the_folder_are_ignored(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    registry = registry_of(folder, {"life_event.v1.avsc": life_event_v1()})
    (folder / "README.md").write_text("not a schema", "utf-8")
    assert SchemaRegistry.from_directory(folder).names == registry.names == ("LifeEvent",)


def test_invalid_json_is_a_schema_error(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "life_event.v1.avsc").write_text("{not json", "utf-8")
    with pytest.raises(SchemaError, match="not valid JSON"):
        SchemaRegistry.from_directory(folder)


def test_missing_or_empty_folder_is_a_schema_error(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="not found"):
        SchemaRegistry.from_directory(tmp_path / "absent")
    with pytest.raises(SchemaError, match="no schemas"):
        SchemaRegistry.from_directory(tmp_path)


def test_unknown_record_type_lists_the_known_ones() -> None:
    with pytest.raises(
        SchemaError, match="'Referral'; known: Involvement, LifeEvent, Relationship"
    ):
        REGISTRY.current("Referral")


def test_record_types_are_found_by_full_name_too() -> None:
    assert REGISTRY.current("org.involvementhub.LifeEvent") is REGISTRY.current("LifeEvent")


# ── encode errors ─────────────────────────────────────────────────────────────────────


def test_missing_required_field_is_named() -> None:
    record = {k: v for k, v in LIFE_EVENT.items() if k != "urgency"}
    with pytest.raises(EncodeError, match=r"LifeEvent\.urgency"):
        encode(record, REGISTRY.current("LifeEvent"))


def test_wrong_type_is_named() -> None:
    record = {**INVOLVEMENT, "is_lead": "yes"}
    with pytest.raises(EncodeError, match=r"Involvement\.is_lead"):
        encode(record, REGISTRY.current("Involvement"))


def test_unknown_enum_symbol_is_named_with_the_symbols_allowed() -> None:
    record = copy.deepcopy(INVOLVEMENT)
    record["service"]["level"] = "VERY_HIGH"
    with pytest.raises(EncodeError) as error:
        encode(record, REGISTRY.current("Involvement"))
    message = str(error.value)
    assert message.startswith("org.involvementhub.Service.level: a str, expected one of ")
    # fastavro's own message dumps the whole schema and quotes the value.
    assert "{" not in message
    assert "VERY_HIGH" not in message
