"""Every valid Avro binary encoding is read; what is not Avro, or not a value Python holds, is
refused with the field and why.

Avro lets a writer split an array or map into any number of blocks, and give a block's byte
size after a negative count (Java's ``BlockingBinaryEncoder`` does); nothing in the
specification asks for the shortest varint. The bodies here are built by hand from those
rules and must read as the same record as the canonical encoding. All people are synthetic:
NHS numbers from the 999 range, ZZ99 postcodes.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from involvement_hub_producer.binary import Malformed, compile_body
from involvement_hub_producer.codec import (
    MALFORMED_BODY,
    TRAILING_BYTES,
    SchemaRegistry,
    decode,
    encode,
    load_schema,
)
from involvement_hub_producer.errors import DecodeError

REGISTRY = SchemaRegistry.packaged()
LIFE_EVENT_SCHEMA = REGISTRY.current("LifeEvent")
UTC = dt.UTC


def zigzag(n: int, width: int = 0) -> bytes:
    """An Avro long, padded with continuation bytes to ``width`` bytes if longer than needed."""
    value = (n << 1) ^ (n >> 63)
    out = bytearray()
    while value > 0x7F or len(out) + 1 < width:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def text(value: str) -> bytes:
    raw = value.encode()
    return zigzag(len(raw)) + raw


def person(nhs: str, given: str, dob: dt.date) -> dict[str, Any]:
    return {
        "identifiers": [
            {"scheme": "nhs_number", "value": nhs},
            {"scheme": "la_person_id", "value": f"NSC-{nhs[-4:]}"},
        ],
        "given_name": given,
        "family_name": "Testperson",
        "date_of_birth": dob,
        "address": {"uprn": "999000000101", "postcode": "ZZ99 3AZ"},
    }


CHILD = person("9990012377", "Robin", dt.date(2017, 3, 14))
RELATED = [
    {"person": person("9990037116", "Morgan", dt.date(1990, 7, 2)), "relationship": "PARENT"},
    {"person": person("9990049483", "Kit", dt.date(2019, 1, 9)), "relationship": "SIBLING"},
    {"person": person("9990051208", "Ash", dt.date(1961, 5, 30)), "relationship": "OTHER"},
]
DETAILS = {"exclusion_type": "fixed_term", "days": "3", "setting": "on_site"}
LIFE_EVENT: dict[str, Any] = {
    "event_id": "mis-le-000042",
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
    "related": RELATED,
    "new_address": None,
    "details": DETAILS,
}
CANONICAL = encode(LIFE_EVENT, LIFE_EVENT_SCHEMA)
EXPECTED = decode(CANONICAL, REGISTRY)


def related_item(item: dict[str, Any]) -> bytes:
    """One item of ``related``, cut from a record that has only it: related, new_address
    (null) and details (empty) are the last fields, so that record ends ``02 item 00 00 00``."""
    alone = encode({**LIFE_EVENT, "related": [item], "details": {}}, LIFE_EVENT_SCHEMA)
    empty = encode({**LIFE_EVENT, "related": [], "details": {}}, LIFE_EVENT_SCHEMA)
    assert empty.endswith(b"\x00\x00\x00")
    assert alone[: len(empty) - 3] == empty[:-3]
    return alone[len(empty) - 3 + 1 : -3]


# The items of each array and map of LIFE_EVENT, as the body holds them.
ITEMS = {
    "identifiers": [text(i["scheme"]) + text(i["value"]) for i in CHILD["identifiers"]],
    "related": [related_item(item) for item in RELATED],
    "details": [text(key) + text(value) for key, value in DETAILS.items()],
}


def canonical(items: list[bytes]) -> bytes:
    return zigzag(len(items)) + b"".join(items) + b"\x00" if items else b"\x00"


def blocked(items: list[bytes], layout: list[int]) -> bytes:
    """``items`` in blocks of ``layout`` sizes: a positive size n is a plain block of n
    items, a negative one a block of -n items that gives its size in bytes."""
    assert sum(abs(n) for n in layout) == len(items)
    out, rest = bytearray(), list(items)
    for n in layout:
        block = b"".join(rest[: abs(n)])
        del rest[: abs(n)]
        out += zigzag(n) + (zigzag(len(block)) if n < 0 else b"") + block
    return bytes(out + b"\x00")


def rewritten(old: bytes, new: bytes, data: bytes = CANONICAL) -> bytes:
    assert data.count(old) == 1
    return data.replace(old, new)


def refusal(data: bytes, registry: SchemaRegistry = REGISTRY) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        decode(data, registry)
    return caught.value


# ── blocked arrays and maps ──────────────────────────────────────────────────────────

LAYOUTS = {
    "one_item_per_block": lambda n: [1] * n,
    "one_sized_item_per_block": lambda n: [-1] * n,
    "one_sized_block": lambda n: [-n],
    "plain_then_sized": lambda n: [1, -(n - 1)],
    "sized_then_plain": lambda n: [-(n - 1), 1],
}


def test_the_canonical_bodies_are_what_the_tests_rebuild() -> None:
    for items in ITEMS.values():
        assert CANONICAL.count(canonical(items)) == 1
    assert EXPECTED.record["related"] == RELATED
    assert EXPECTED.record["details"] == DETAILS


@pytest.mark.parametrize("field", sorted(ITEMS))
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_blocked_arrays_and_maps_read_as_the_canonical_record(field: str, layout: str) -> None:
    items = ITEMS[field]
    data = rewritten(canonical(items), blocked(items, LAYOUTS[layout](len(items))))
    assert data != CANONICAL
    assert decode(data, REGISTRY) == EXPECTED


@st.composite
def layouts(draw: st.DrawFn, n: int) -> list[int]:
    """Any split of n items into blocks, each plain or sized."""
    sizes: list[int] = []
    while sum(sizes) < n:
        sizes.append(draw(st.integers(1, n - sum(sizes))))
    return [size * draw(st.sampled_from([1, -1])) for size in sizes]


@settings(max_examples=100, database=None)
@given(data=st.data())
def test_any_blocking_of_every_array_and_map_reads_the_same(data: st.DataObject) -> None:
    body = CANONICAL
    for items in ITEMS.values():
        body = rewritten(canonical(items), blocked(items, data.draw(layouts(len(items)))), body)
    assert decode(body, REGISTRY) == EXPECTED


def test_every_array_and_map_blocked_at_once() -> None:
    data = CANONICAL
    for items, layout in zip(ITEMS.values(), ([-1, 1], [2, -1], [-1, -2]), strict=True):
        data = rewritten(canonical(items), blocked(items, layout), data)
    assert decode(data, REGISTRY) == EXPECTED


def test_an_empty_array_and_map_are_a_zero_count() -> None:
    record = {**LIFE_EVENT, "related": [], "details": {}}
    data = encode(record, LIFE_EVENT_SCHEMA)
    assert data.endswith(b"\x00\x00\x00")  # related, new_address (null), details
    assert decode(data, REGISTRY).record == {**EXPECTED.record, "related": [], "details": {}}


def test_an_older_writer_in_blocks_is_resolved_into_the_reader() -> None:
    # Involvement v1 is read into the current version's shape: the blocks are its writer's.
    v1 = REGISTRY.versions("Involvement")[0]
    record = {
        "event_id": "cm-inv-000042",
        "occurred_at": dt.datetime(2026, 11, 2, 9, 30, tzinfo=UTC),
        "recorded_at": dt.datetime(2026, 11, 2, 9, 41, tzinfo=UTC),
        "source": LIFE_EVENT["source"],
        "subject": CHILD,
        "involvement_id": "INV-77-0042",
        "change": "STARTED",
        "service": {
            "service_id": "EH-N",
            "name": "Early Help North",
            "category": "EARLY_HELP",
            "level": "TARGETED",
        },
        "practitioner": {
            "practitioner_id": "PR-0042",
            "name": "Sam Placeholder",
            "role": "family support worker",
            "email": "sam.placeholder@northshire.example",
        },
        "is_lead": True,
        "lawful_basis": "PUBLIC_TASK",
        "started_on": dt.date(2026, 11, 2),
    }
    data = encode(record, v1)
    items = ITEMS["identifiers"]
    assert decode(rewritten(canonical(items), blocked(items, [-1, -1]), data), REGISTRY) == (
        decode(data, REGISTRY)
    )


# ── varints longer than they need be ─────────────────────────────────────────────────


def test_longer_than_needed_varints_are_read() -> None:
    # Avro asks for zig-zag varints, not the shortest: Java's decoder reads these too. Here
    # the details map's count, its terminating zero and one key's length take 10 bytes each.
    items = ITEMS["details"]
    key = text("days")
    padded = [item.replace(key, zigzag(4, width=10) + b"days") for item in items]
    data = rewritten(
        canonical(items),
        zigzag(len(items), width=10) + b"".join(padded) + zigzag(0, width=10),
    )
    assert decode(data, REGISTRY) == EXPECTED


# LIFE_EVENT without related persons or details ends with its urgency (an enum: its
# position is an int), related (an empty array), new_address (null) and details (empty).
ENDING = zigzag(1) + b"\x00\x00\x00"  # urgency PRIORITY is position 1
PLAIN = encode({**LIFE_EVENT, "related": [], "details": {}}, LIFE_EVENT_SCHEMA)


def with_urgency(position: bytes) -> bytes:
    assert PLAIN.endswith(ENDING)
    return PLAIN[: -len(ENDING)] + position + ENDING[1:]


def test_a_five_byte_int_is_read() -> None:
    assert decode(with_urgency(zigzag(1, width=5)), REGISTRY) == decode(PLAIN, REGISTRY)


# ── what is not a valid encoding ─────────────────────────────────────────────────────

SHORT_BODY = PLAIN[:-1]
# SHORT_BODY + a details map: the last field, so a refusal there is the only one possible.
DETAILS_ITEMS = ITEMS["details"]
DETAILS_SIZE = len(b"".join(DETAILS_ITEMS))


def details(body: bytes) -> bytes:
    return SHORT_BODY + body


def test_details_is_the_last_field() -> None:
    assert decode(details(canonical(DETAILS_ITEMS)), REGISTRY) == decode(
        encode({**LIFE_EVENT, "related": []}, LIFE_EVENT_SCHEMA), REGISTRY
    )


REFUSED = {
    "sized_block_that_says_less_than_it_takes": (
        details(zigzag(-3) + zigzag(DETAILS_SIZE - 1) + b"".join(DETAILS_ITEMS) + b"\x00"),
        f"LifeEvent.details: a block said to take {DETAILS_SIZE - 1} bytes takes {DETAILS_SIZE}",
    ),
    "sized_block_that_says_more_than_it_takes": (
        details(zigzag(-2) + zigzag(DETAILS_SIZE) + b"".join(DETAILS_ITEMS) + b"\x00"),
        f"LifeEvent.details: a block said to take {DETAILS_SIZE} bytes takes "
        f"{len(DETAILS_ITEMS[0] + DETAILS_ITEMS[1])}",
    ),
    "sized_block_larger_than_the_body": (
        details(zigzag(-3) + zigzag(DETAILS_SIZE + 2) + b"".join(DETAILS_ITEMS) + b"\x00"),
        f"LifeEvent.details: a block said to take {DETAILS_SIZE + 2} bytes, "
        f"but only {DETAILS_SIZE + 1} remain",
    ),
    "sized_block_of_negative_size": (
        details(zigzag(-3) + zigzag(-1) + b"".join(DETAILS_ITEMS) + b"\x00"),
        "LifeEvent.details: a block said to take -1 bytes, but only",
    ),
    "more_entries_than_the_block_has_bytes": (
        details(zigzag(-4) + zigzag(3) + b"\x02a\x02b\x00"),
        "LifeEvent.details: a block of 4 entries in 3 bytes",
    ),
    "more_entries_than_bytes_left": (
        details(zigzag(60) + b"".join(DETAILS_ITEMS) + b"\x00"),
        f"LifeEvent.details: a block of 60 entries, but only {DETAILS_SIZE + 1} bytes remain",
    ),
    "the_most_negative_count": (
        details(zigzag(-(2**63)) + zigzag(1) + b"\x00"),
        f"LifeEvent.details: a block of {2**63} entries in 1 bytes",
    ),
    "fewer_entries_than_the_count": (
        details(zigzag(4) + b"".join(DETAILS_ITEMS) + b"\x00"),
        "LifeEvent.details{3}: the body ends inside this field",
    ),
    "no_terminating_zero": (
        details(canonical(DETAILS_ITEMS)[:-1]),
        "LifeEvent.details: the body ends inside this field",
    ),
    "a_value_cut_short": (
        details(zigzag(1) + text("days") + b"\x08abc"),
        "LifeEvent.details{0}: a string of 4 bytes, but only 3 remain",
    ),
    "a_key_that_is_not_utf8": (
        details(zigzag(2) + DETAILS_ITEMS[0] + b"\x04\xc3\x28" + text("x") + b"\x00"),
        "LifeEvent.details{1}: a key that is not valid UTF-8",
    ),
    "a_repeated_key": (
        details(zigzag(2) + DETAILS_ITEMS[1] + DETAILS_ITEMS[1] + b"\x00"),
        "LifeEvent.details{1}: a key an earlier entry of the map has",
    ),
    "a_repeated_key_in_another_block_with_a_longer_length": (
        details(
            zigzag(1)
            + DETAILS_ITEMS[1]
            + zigzag(-1)
            + zigzag(len(DETAILS_ITEMS[1]) + 1)
            + zigzag(4, width=2)
            + DETAILS_ITEMS[1][1:]
            + b"\x00"
        ),
        "LifeEvent.details{1}: a key an earlier entry of the map has",
    ),
    "an_eleven_byte_varint": (
        details(zigzag(0, width=11)),
        "LifeEvent.details: a varint longer than 10 bytes",
    ),
    "a_varint_beyond_64_bits": (
        details(b"\xff" * 9 + b"\x02"),
        "LifeEvent.details: a varint beyond 64 bits",
    ),
}


@pytest.mark.parametrize(("data", "detail"), list(REFUSED.values()), ids=list(REFUSED))
def test_what_is_not_avro_is_refused_naming_the_field(data: bytes, detail: str) -> None:
    error = refusal(data)
    assert error.reason == MALFORMED_BODY
    assert error.detail.startswith(f"LifeEvent v{LIFE_EVENT_SCHEMA.version}: ")
    assert detail in error.detail


@pytest.mark.parametrize("index", [-1, 3, -(2**31), 2**31 - 1])
def test_an_enum_position_outside_the_symbols_is_refused(index: int) -> None:
    error = refusal(with_urgency(zigzag(index)))
    assert error.reason == MALFORMED_BODY
    assert error.detail.endswith(
        f"LifeEvent.urgency: enum position {index}, but Urgency has 3 symbols (0 to 2)"
    )


@pytest.mark.parametrize("index", [-1, 2, -(2**31), 2**31 - 1])
def test_a_union_branch_outside_the_union_is_refused(index: int) -> None:
    data = PLAIN[:-2] + zigzag(index) + b"\x00"  # new_address: ["null", Address]
    error = refusal(data)
    assert error.reason == MALFORMED_BODY
    assert error.detail.endswith(
        f"LifeEvent.new_address: union branch {index}, but the union has 2 branches (0 to 1)"
    )


def test_an_int_beyond_32_bits_is_refused() -> None:
    beyond = refusal(with_urgency(zigzag(2**32, width=5)))
    assert beyond.detail.endswith("LifeEvent.urgency: an int beyond 32 bits")
    six_bytes = refusal(with_urgency(zigzag(1, width=6)))
    assert six_bytes.detail.endswith("LifeEvent.urgency: a varint longer than 5 bytes")


def test_a_boolean_byte_other_than_0_or_1_is_refused() -> None:
    schema = probe("boolean")
    assert check(schema, b"\x01") == 1
    with pytest.raises(Malformed, match=r"^Probe\.value: a boolean byte of 2, not 0 or 1$"):
        check(schema, b"\x02")


def test_a_refusal_never_quotes_a_string() -> None:
    # Morgan's family name with a broken UTF-8 byte inside: refused, and not quoted.
    family = text("Testperson")
    broken = b"\x14Test\xffperson"
    data = rewritten(ITEMS["related"][0], ITEMS["related"][0].replace(family, broken))
    error = refusal(data)
    assert error.detail.endswith(
        "LifeEvent.related[0].person.family_name: a string that is not valid UTF-8"
    )
    for value in ("Test", "Morgan", "9990037116"):
        assert value not in str(error)


def test_trailing_bytes_are_still_their_own_reason() -> None:
    assert refusal(CANONICAL + b"\x00").reason == TRAILING_BYTES


# ── values Python cannot hold ────────────────────────────────────────────────────────

LAST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
FIRST_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z
LAST_DAY = 2_932_896  # 9999-12-31, in days from 1970-01-01
FIRST_DAY = -719_162  # 0001-01-01


@pytest.mark.parametrize(
    ("millis", "side"), [(LAST_MS + 1, "after 9999-12-31"), (FIRST_MS - 1, "before 0001-01-01")]
)
def test_a_timestamp_outside_years_1_to_9999_is_refused_naming_the_field(
    millis: int, side: str
) -> None:
    occurred = zigzag(int(LIFE_EVENT["occurred_at"].timestamp() * 1000))
    start = text(LIFE_EVENT["event_id"])
    data = rewritten(start + occurred, start + zigzag(millis))
    error = refusal(data)
    assert error.reason == MALFORMED_BODY
    assert error.detail == (
        f"LifeEvent v{LIFE_EVENT_SCHEMA.version}: LifeEvent.occurred_at: timestamp-millis "
        f"{millis} is {side}, which the hub cannot represent"
    )


@pytest.mark.parametrize(
    ("days", "side"), [(LAST_DAY + 1, "after 9999-12-31"), (FIRST_DAY - 1, "before 0001-01-01")]
)
def test_a_date_outside_years_1_to_9999_is_refused_naming_the_item(days: int, side: str) -> None:
    # The second related person's date of birth: the array position is named.
    item = ITEMS["related"][1]
    dob = b"\x02" + zigzag((dt.date(2019, 1, 9) - dt.date(1970, 1, 1)).days)  # union branch 1
    data = rewritten(item, rewritten(dob, b"\x02" + zigzag(days), item))
    assert refusal(data).detail.endswith(
        f"LifeEvent.related[1].person.date_of_birth: date {days} (days from 1970-01-01) is "
        f"{side}, which the hub cannot represent"
    )


def probe(field_type: Any) -> dict[str, Any]:
    return {"type": "record", "name": "Probe", "fields": [{"name": "value", "type": field_type}]}


def check(schema: dict[str, Any], body: bytes) -> int:
    return compile_body(schema)(body)


def read(schema: dict[str, Any], body: bytes) -> Any:
    """``body`` decoded through the codec, with ``schema`` the only one it knows."""
    known = load_schema(schema, 1, "probe.v1.avsc")
    return decode(known.header + body, SchemaRegistry([known])).record["value"]


def logical(base: str, name: str, **more: Any) -> dict[str, Any]:
    return {"type": base, "logicalType": name, **more}


# Each logical type fastavro turns into a Python value: the first and last values it holds
# (read), and the values either side of them (refused).
BOUNDS = {
    "date": ("int", FIRST_DAY, LAST_DAY, dt.date(1, 1, 1), dt.date(9999, 12, 31)),
    "timestamp-millis": (
        "long",
        FIRST_MS,
        LAST_MS,
        dt.datetime(1, 1, 1, tzinfo=UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
    ),
    "timestamp-micros": (
        "long",
        FIRST_MS * 1000,
        LAST_MS * 1000 + 999,
        dt.datetime(1, 1, 1, tzinfo=UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ),
    "local-timestamp-millis": (
        "long",
        FIRST_MS,
        LAST_MS,
        dt.datetime(1, 1, 1),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999000),
    ),
    "local-timestamp-micros": (
        "long",
        FIRST_MS * 1000,
        LAST_MS * 1000 + 999,
        dt.datetime(1, 1, 1),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
    ),
    "time-millis": ("int", 0, 86_399_999, dt.time(0), dt.time(23, 59, 59, 999000)),
    "time-micros": ("long", 0, 86_399_999_999, dt.time(0), dt.time(23, 59, 59, 999999)),
}


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_logical_types_are_read_to_their_limits_and_refused_past_them(name: str) -> None:
    base, first, last, earliest, latest = BOUNDS[name]
    schema = probe(logical(base, name))
    assert read(schema, zigzag(first)) == earliest
    assert read(schema, zigzag(last)) == latest
    for value in (first - 1, last + 1):
        with pytest.raises(Malformed, match=rf"^Probe\.value: {name} {value}\b.*cannot represent"):
            check(schema, zigzag(value))


def test_a_logical_type_on_another_base_type_is_a_plain_value() -> None:
    # fastavro converts a date only on an int; on a long it is the number it says.
    assert read(probe(logical("long", "date")), zigzag(2**40)) == 2**40


def test_a_uuid_string_must_be_a_uuid() -> None:
    schema = probe(logical("string", "uuid"))
    value = "12345678-1234-5678-1234-567812345678"
    assert read(schema, text(value)) == uuid.UUID(value)
    with pytest.raises(Malformed, match=r"^Probe\.value: a uuid string that is not a UUID$"):
        check(schema, text("9990012377"))


@pytest.mark.parametrize(
    "decimal",
    [
        logical("bytes", "decimal", precision=4, scale=2),
        {
            "type": "fixed",
            "name": "Money",
            "size": 2,
            "logicalType": "decimal",
            "precision": 4,
            "scale": 2,
        },
    ],
    ids=["bytes", "fixed"],
)
def test_a_decimal_must_fit_its_precision(decimal: dict[str, Any]) -> None:
    # fastavro rounds a longer value to the precision: it would read another number.
    def body(unscaled: int) -> bytes:
        raw = unscaled.to_bytes(2, "big", signed=True)
        return raw if decimal["type"] == "fixed" else zigzag(2) + raw

    assert read(probe(decimal), body(9999)) == Decimal("99.99")
    assert read(probe(decimal), body(-9999)) == Decimal("-99.99")
    for unscaled in (10000, -10000):
        with pytest.raises(Malformed, match=r"more digits than its precision, 4$"):
            check(probe(decimal), body(unscaled))


def test_a_huge_decimal_is_refused_quickly() -> None:
    # 200 KB of unscaled digits: compared with a power of ten, never turned into text.
    schema = probe(logical("bytes", "decimal", precision=38, scale=0))
    with pytest.raises(Malformed, match="precision"):
        check(schema, zigzag(200_000) + b"\x7f" * 200_000)
