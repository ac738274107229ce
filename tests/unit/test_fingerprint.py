"""The canonical form and fingerprint agree with every row of Apache Avro's own table."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from involvement_hub_producer.codec import load_schema
from involvement_hub_producer.errors import SchemaError
from involvement_hub_producer.fingerprint import (
    canonical_form,
    crc64_avro,
    fingerprint,
    to_signed,
)

TABLE = Path(__file__).parents[1] / "data" / "avro-schema-tests.txt"
_HEADER = re.compile(r"^// (\d{3})\s*$")


@dataclass(frozen=True)
class Case:
    number: str
    input: str
    canonical: str
    fingerprint: int | None


def parse_table(text: str) -> list[Case]:
    """Cases in file order; ``//`` lines are comments, ``<<INPUT`` alone opens a block."""
    cases: list[Case] = []
    fields: dict[str, str] = {}
    number: str | None = None
    lines = iter(text.splitlines())

    def close() -> None:
        if number is not None:
            fp = fields.get("fingerprint")
            cases.append(
                Case(number, fields["INPUT"], fields["canonical"], int(fp) if fp else None)
            )

    for line in lines:
        header = _HEADER.match(line)
        if header:
            close()
            number, fields = header[1], {}
        elif line.startswith("//") or line.startswith("#") or not line.strip():
            continue
        elif line.rstrip() == "<<INPUT":
            block = []
            for inner in lines:
                if inner.rstrip() == "INPUT":
                    break
                block.append(inner)
            else:
                raise ValueError(f"case {number}: <<INPUT block is never closed")
            fields["INPUT"] = "\n".join(block)
        elif line.startswith("<<"):
            key, _, value = line[2:].partition(" ")
            if key in fields:
                raise ValueError(f"case {number}: {key} given twice")
            fields[key] = value
        else:
            raise ValueError(f"case {number}: unexpected line {line!r}")
    close()
    return cases


TABLE_TEXT = TABLE.read_text("utf-8")
CASES = parse_table(TABLE_TEXT)


def test_every_numbered_case_is_parsed() -> None:
    headers = [m[1] for m in map(_HEADER.match, TABLE_TEXT.splitlines()) if m]
    assert len(headers) == 34  # the table as copied; a new row should be a deliberate change
    assert [case.number for case in CASES] == headers


def test_commented_out_input_of_case_029_is_ignored() -> None:
    (case,) = [case for case in CASES if case.number == "029"]
    assert json.loads(case.input) == {"name": "foo", "type": "fixed", "size": 15}


def test_multi_line_inputs_are_read_whole() -> None:
    by_number = {case.number: case for case in CASES}
    assert json.loads(by_number["026"].input)["fields"][1]["order"] == "descending"
    assert json.loads(by_number["033"].input)["name"] == "PigValue"


@pytest.mark.parametrize("case", CASES, ids=[case.number for case in CASES])
def test_canonical_form(case: Case) -> None:
    assert canonical_form(json.loads(case.input)) == case.canonical


FINGERPRINTED = [case for case in CASES if case.fingerprint is not None]


@pytest.mark.parametrize("case", FINGERPRINTED, ids=[case.number for case in FINGERPRINTED])
def test_fingerprint(case: Case) -> None:
    assert to_signed(fingerprint(json.loads(case.input))) == case.fingerprint


def test_crc64_of_nothing_is_the_empty_value() -> None:
    assert crc64_avro(b"") == 0xC15D213AA4D7A795


def test_to_signed_keeps_small_values_and_wraps_large_ones() -> None:
    assert to_signed(0) == 0
    assert to_signed((1 << 63) - 1) == (1 << 63) - 1
    assert to_signed(1 << 63) == -(1 << 63)
    assert to_signed((1 << 64) - 1) == -1


# Case 026 gives a boolean field the default "true" (a string). Defaults are not part of the
# canonical form, so its fingerprint is well defined and checked above; but a schema whose
# default does not fit its type cannot be used to read old data, so the codec refuses it.
# The decision: fingerprint anything Avro's table fingerprints, load only what is valid.
def test_case_026_is_fingerprinted_but_refused_by_the_codec() -> None:
    (case,) = [case for case in CASES if case.number == "026"]
    schema = json.loads(case.input)
    assert schema["fields"][0]["default"] == "true"
    assert to_signed(fingerprint(schema)) == -4860222112080293046
    with pytest.raises(SchemaError, match=r"foo\.v1\.avsc"):
        load_schema(schema, 1, "foo.v1.avsc")


def test_case_026_loads_once_its_default_is_a_boolean() -> None:
    (case,) = [case for case in CASES if case.number == "026"]
    schema = json.loads(case.input)
    schema["fields"][0]["default"] = True
    loaded = load_schema(schema, 1, "foo.v1.avsc")
    assert to_signed(loaded.fingerprint) == case.fingerprint
