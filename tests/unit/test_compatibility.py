"""Avro schema resolution as a check (``compatibility``): what a reader can read of what a
writer wrote, by the rules of the Avro specification as Avro's Java ``SchemaCompatibility``
applies them. The schemas here are small and synthetic; the shipped ones are in the last
tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from involvement_hub_producer.codec import load_schema
from involvement_hub_producer.compatibility import Problem, incompatibilities, reading_problems

SCHEMAS = Path(__file__).parents[2] / "schemas"


def record(*fields: dict[str, Any], name: str = "Probe", **extra: Any) -> dict[str, Any]:
    return {
        "type": "record",
        "name": name,
        "namespace": "org.test",
        "fields": list(fields),
        **extra,
    }


def field(name: str, kind: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, **extra}


def problems(reader: dict[str, Any], writer: dict[str, Any]) -> list[str]:
    found = reading_problems(reader, writer, reader_label="new", writer_label="old")
    return [str(p) for p in found]


def enum(*symbols: str, name: str = "Level", **extra: Any) -> dict[str, Any]:
    return {"type": "enum", "name": name, "symbols": list(symbols), **extra}


# ── records and fields ───────────────────────────────────────────────────────────────────


def test_identical_schemas_read_each_other() -> None:
    schema = record(field("a", "int"), field("b", ["null", "string"], default=None))
    assert problems(schema, schema) == []


def test_a_reader_field_the_writer_lacks_needs_a_default() -> None:
    old = record(field("a", "int"))

    assert problems(record(field("a", "int"), field("b", "string", default="")), old) == []
    assert problems(record(field("a", "int"), field("b", "string")), old) == [
        "Probe.b: new has this field without a default, and old does not write it"
    ]


def test_a_writer_field_the_reader_lacks_is_skipped() -> None:
    assert problems(record(field("a", "int")), record(field("a", "int"), field("b", "int"))) == []


def test_a_reader_field_alias_names_the_writer_field() -> None:
    old = record(field("colour", "string"))

    assert problems(record(field("color", "string", aliases=["colour"])), old) == []
    assert problems(record(field("color", "string", aliases=["hue"])), old) == [
        "Probe.color: new has this field without a default, and old writes no field of that "
        "name or its aliases (hue)"
    ]


def test_writer_aliases_do_not_count() -> None:
    # Only the reader's aliases are looked at, as in Avro: an old reader knows no new names.
    new = record(field("color", "string", aliases=["colour"]))
    assert problems(record(field("colour", "string")), new) == [
        "Probe.colour: new has this field without a default, and old does not write it"
    ]


def test_a_field_whose_name_and_alias_both_match_is_ambiguous() -> None:
    old = record(field("a", "int"), field("b", "int"))
    assert problems(record(field("a", "int", aliases=["b"])), old) == [
        "Probe.a: its name and aliases match several of old's fields (a, b)"
    ]


def test_records_match_by_unqualified_name_or_reader_alias() -> None:
    inner = [field("x", "int")]
    old = record(field("p", record(*inner, name="Point")))
    moved = record(field("p", {**record(*inner, name="Point"), "namespace": "org.elsewhere"}))
    renamed = record(field("p", record(*inner, name="Spot")))
    aliased = record(field("p", record(*inner, name="Spot", aliases=["Point"])))

    assert problems(moved, old) == []
    assert problems(aliased, old) == []
    assert problems(renamed, old) == [
        "Probe.p: old writes org.test.Point, and new's record Spot has neither that name nor "
        "an alias for it"
    ]


def test_nested_records_are_named_by_their_path() -> None:
    old = record(field("people", {"type": "array", "items": record(field("age", "int"), name="P")}))
    new = record(
        field("people", {"type": "array", "items": record(field("age", "string"), name="P")})
    )
    assert problems(new, old) == [
        "Probe.people[].age: old writes int, which new cannot read as string"
    ]


def test_a_type_defined_once_is_followed_wherever_it_is_named() -> None:
    def schema(kind: str) -> dict[str, Any]:
        return record(
            field("first", record(field("v", kind), name="Shared")),
            field("second", {"type": "map", "values": "Shared"}),
        )

    assert problems(schema("string"), schema("int")) == [
        "Probe.first.v: old writes int, which new cannot read as string",
        "Probe.second{}.v: old writes int, which new cannot read as string",
    ]


def test_a_recursive_type_does_not_loop() -> None:
    def linked(kind: str) -> dict[str, Any]:
        return record(field("value", kind), field("next", ["null", "Probe"], default=None))

    assert problems(linked("long"), linked("int")) == []
    assert problems(linked("int"), linked("long")) == [
        "Probe.value: old writes long, which new cannot read as int"
    ]


# ── primitives ───────────────────────────────────────────────────────────────────────────

PROMOTIONS = [
    ("int", "long"),
    ("int", "float"),
    ("int", "double"),
    ("long", "float"),
    ("long", "double"),
    ("float", "double"),
    ("string", "bytes"),
    ("bytes", "string"),
]


@pytest.mark.parametrize(("written", "read"), PROMOTIONS)
def test_promotions(written: str, read: str) -> None:
    assert problems(record(field("a", read)), record(field("a", written))) == []


@pytest.mark.parametrize(
    ("written", "read"),
    [("long", "int"), ("double", "float"), ("float", "long"), ("int", "string"), ("null", "int")],
)
def test_no_other_primitive_is_read_as_another(written: str, read: str) -> None:
    assert problems(record(field("a", read)), record(field("a", written))) == [
        f"Probe.a: old writes {written}, which new cannot read as {read}"
    ]


def test_a_logical_type_is_read_as_its_underlying_type() -> None:
    date = {"type": "int", "logicalType": "date"}
    millis = {"type": "long", "logicalType": "timestamp-millis"}
    assert problems(record(field("a", millis)), record(field("a", date))) == []


# ── enums ───────────────────────────────────────────────────────────────────────────────


def test_an_enum_reads_the_symbols_it_has() -> None:
    old = record(field("level", enum("LOW", "HIGH")))
    assert problems(record(field("level", enum("LOW", "MEDIUM", "HIGH"))), old) == []


def test_a_symbol_the_reader_lacks_needs_an_enum_default() -> None:
    old = record(field("level", enum("LOW", "MEDIUM", "HIGH")))

    assert problems(record(field("level", enum("LOW", "HIGH", default="LOW"))), old) == []
    assert problems(record(field("level", enum("LOW", "HIGH"))), old) == [
        "Probe.level: old may write MEDIUM, which new's enum Level does not have, and that "
        "enum has no default"
    ]


def test_a_field_default_is_not_an_enum_default() -> None:
    # The field's default stands in for a missing field, never for an unknown symbol.
    old = record(field("level", enum("LOW", "HIGH")))
    assert problems(record(field("level", enum("LOW"), default="LOW")), old) != []


# ── unions, arrays, maps, fixed ─────────────────────────────────────────────────────────


def test_every_branch_of_a_writer_union_must_be_readable() -> None:
    old = record(field("a", ["null", "string", "int"]))

    assert problems(record(field("a", ["null", "string", "long"])), old) == []
    assert problems(record(field("a", ["null", "string"])), old) == [
        "Probe.a: old writes int, which none of new's branches (null, string) reads"
    ]
    assert problems(record(field("a", "string")), record(field("a", ["null", "string"]))) == [
        "Probe.a: old writes null, which new cannot read as string"
    ]


def test_a_reader_union_reads_a_plain_writer_value_with_some_branch() -> None:
    assert problems(record(field("a", ["null", "long"])), record(field("a", "int"))) == []


def test_inside_a_union_the_matching_branch_says_what_is_wrong() -> None:
    def optional(kind: str) -> dict[str, Any]:
        inner = record(field("x", kind), name="Inner")
        return record(field("a", ["null", inner], default=None))

    assert problems(optional("string"), optional("int")) == [
        "Probe.a.x: old writes int, which new cannot read as string"
    ]


def test_arrays_and_maps_resolve_their_items_and_values() -> None:
    def schema(kind: str) -> dict[str, Any]:
        return record(
            field("list", {"type": "array", "items": kind}),
            field("map", {"type": "map", "values": kind}),
        )

    assert problems(schema("long"), schema("int")) == []
    assert problems(schema("int"), schema("long")) == [
        "Probe.list[]: old writes long, which new cannot read as int",
        "Probe.map{}: old writes long, which new cannot read as int",
    ]
    assert problems(record(field("list", {"type": "map", "values": "int"})), schema("int")) == [
        "Probe.list: old writes an array, which new cannot read as a map"
    ]


def test_fixed_needs_the_same_name_and_size() -> None:
    def schema(size: int, name: str = "Hash") -> dict[str, Any]:
        return record(field("h", {"type": "fixed", "name": name, "size": size}))

    assert problems(schema(16), schema(16)) == []
    assert problems(schema(32), schema(16)) == [
        "Probe.h: old writes 16 bytes for fixed Hash, and new reads 32"
    ]
    assert problems(schema(16, "Digest"), schema(16)) != []


# ── versions of a record ────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Version:
    name: str
    version: int
    source: dict[str, Any]


def test_every_pair_of_versions_is_checked_not_only_neighbours() -> None:
    # v2 and v3 agree, v1 and v2 agree, but v3 cannot read v1: b has no default any more.
    v1 = record(field("a", "int"), name="Thing")
    v2 = record(field("a", "int"), field("b", "int", default=0), name="Thing")
    v3 = record(field("a", "int"), field("b", "int"), name="Thing")
    other = record(field("z", "int"), name="Other")

    versions = [Version("Thing", 3, v3), Version("Other", 1, other), Version("Thing", 1, v1)]
    found = incompatibilities([*versions, Version("Thing", 2, v2)])

    assert found == [
        "Thing v1 -> v3: Thing.b: v3 has this field without a default, and v1 does not write it"
    ]


def test_a_removed_field_must_have_had_a_default() -> None:
    # The older version still reads what the newer one writes: it needs a default for a field
    # the newer one no longer writes.
    v1 = record(field("a", "int"), field("b", "int"), name="Thing")
    v2 = record(field("a", "int"), name="Thing")

    assert incompatibilities([Version("Thing", 1, v1), Version("Thing", 2, v2)]) == [
        "Thing v1 -> v2: Thing.b: v1 has this field without a default, and v2 does not write it"
    ]


def test_a_problem_reads_as_path_and_reason() -> None:
    assert str(Problem("Thing.a", "why")) == "Thing.a: why"


def shipped() -> list[Any]:
    return [
        load_schema(json.loads(p.read_text("utf-8")), int(p.name.split(".v")[1][:-5]), p.name)
        for p in sorted(SCHEMAS.glob("*.avsc"))
    ]


def test_the_shipped_schemas_are_fully_compatible() -> None:
    loaded = shipped()
    assert len(loaded) >= 5
    assert incompatibilities(loaded) == []


def test_involvement_v1_and_v2_read_each_other() -> None:
    by_version = {s.version: s.source for s in shipped() if s.name == "Involvement"}
    assert reading_problems(by_version[2], by_version[1]) == []
    assert reading_problems(by_version[1], by_version[2]) == []
