"""The synthetic population behind ``hub simulate``, the benchmark and its tests.

Pure: no broker. What it must hold: reproducible from a seed, families shaped as the brief
says, only synthetic identifiers, the realistic untidiness the hub must cope with, a mix
of events, and records every agency path (encoding, ``hub publish``) accepts.
"""

from __future__ import annotations

import collections
import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest
from involvement_hub.cli.main import main
from involvement_hub.cli.publish import LineError, prepare_file
from involvement_hub.core.identity import nhs_check_digit
from involvement_hub.settings import DEFAULT_AGENCIES
from involvement_hub_devtools.population import FAMILY, LIFE_EVENT_MIX, VARIANTS, Population
from involvement_hub_devtools.simulate import encoded, records, write_jsonl
from involvement_hub_producer import SchemaRegistry, decode

REGISTRY = SchemaRegistry.packaged()
START = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


def generate(families: int = 40, events: int = 400, seed: int = 1) -> list[dict[str, Any]]:
    return list(records(Population(families, seed=seed), events=events, setup=True, start=START))


def person_refs(record: dict[str, Any]) -> list[dict[str, Any]]:
    refs = [record["subject"]]
    if record.get("related_person"):
        refs.append(record["related_person"])
    refs.extend(r["person"] for r in record.get("related", ()))
    return refs


def test_the_same_seed_gives_the_same_records_and_another_seed_others() -> None:
    assert generate(seed=7) == generate(seed=7)
    assert generate(seed=7) != generate(seed=8)


def test_families_have_one_or_two_adults_and_one_to_four_children() -> None:
    families = [Population(600, seed=3).family(n) for n in range(600)]

    adults = collections.Counter(len(f.adults) for f in families)
    children = collections.Counter(len(f.children) for f in families)
    assert set(adults) == {1, 2}
    assert set(children) == {1, 2, 3, 4}
    for family in families:
        assert all(not p.child for p in family.adults)
        assert all(p.child for p in family.children)
    # Most families in the population are known to a service; a few are not (yet).
    assert sum(bool(f.involvements) for f in families) > len(families) / 2


def test_only_synthetic_identifiers_appear() -> None:
    for record in generate():
        for ref in person_refs(record):
            for identifier in ref["identifiers"]:
                if identifier["scheme"] == "nhs_number":
                    value = identifier["value"]
                    assert value.startswith("999"), value  # the range reserved for testing
                    assert nhs_check_digit(value[:9]) == int(value[9])
            assert ref["family_name"] in FAMILY or _is_typo_of_a_known_name(ref["family_name"])
            assert ref["address"]["postcode"].startswith("ZZ99")
            assert ref["address"]["uprn"].startswith("999")
        practitioner = record.get("practitioner")
        if practitioner:
            assert practitioner["email"].endswith(".example")


def _is_typo_of_a_known_name(name: str) -> bool:
    return any(sorted(name) == sorted(known) for known in FAMILY)


def test_agencies_record_people_untidily_as_real_ones_do() -> None:
    refs = [ref for record in generate(families=150, events=1500) for ref in person_refs(record)]
    schemes = [{i["scheme"] for i in ref["identifiers"]} for ref in refs]

    without_nhs = sum("nhs_number" not in s for s in schemes)
    local_only = sum(
        [i["value"][:4] for i in ref["identifiers"]] == ["LA-X"] for ref in refs
    )  # known by a local id only: links nothing until a steward confirms a match
    variants = sum(ref["given_name"] in VARIANTS.values() for ref in refs)
    typos = sum(ref["family_name"] not in FAMILY for ref in refs)
    no_birth_date = sum(ref["date_of_birth"] is None for ref in refs)
    assert without_nhs > 0
    assert local_only > 0
    assert variants > 0
    assert typos > 0
    assert no_birth_date > 0
    # ... but most records carry a strong identifier, or nothing could be linked.
    assert without_nhs < len(refs) / 2


def test_events_come_in_a_mix_of_every_kind_weighted_roughly_as_agencies_report() -> None:
    stream = list(Population(200, seed=5).events(4000, START))
    kinds = collections.Counter(r["kind"] for r in stream if r["schema"] == "LifeEvent")
    changes = collections.Counter(r["change"] for r in stream if r["schema"] == "Involvement")

    assert set(kinds) == {kind for kind, *_ in LIFE_EVENT_MIX}
    assert kinds["PERSISTENT_ABSENCE"] > kinds["BIRTH"] * 3  # weights 14 and 2
    assert {"UPDATED", "ENDED"} <= set(changes)
    # Separations, new partners and house moves, as the brief asks for.
    assert kinds["PARENTAL_SEPARATION"]
    assert kinds["HOUSEHOLD_MEMBER_JOINED"]
    assert kinds["ADDRESS_CHANGED"]
    joined = next(r for r in stream if r.get("kind") == "HOUSEHOLD_MEMBER_JOINED")
    assert joined["related"][0]["relationship"] == "PARTNER"
    times = [dt.datetime.fromisoformat(r["occurred_at"]) for r in stream]
    assert times == sorted(times)


def test_every_record_encodes_for_its_agency_and_decodes_to_itself() -> None:
    population = list(records(Population(30, seed=2), events=300, setup=True, start=START))

    items = list(encoded(population, REGISTRY))

    assert len(items) == len(population)
    for (agency, _key, value), record in zip(items, population, strict=True):
        assert agency in DEFAULT_AGENCIES
        assert agency == record["source"]["agency_id"]
        decoded = decode(value, REGISTRY)
        assert decoded.record["event_id"] == record["event_id"]


def test_written_json_lines_are_what_hub_publish_accepts(tmp_path: Path) -> None:
    out = io.StringIO()
    count = write_jsonl(generate(families=10, events=80), out, lambda _: None)
    path = tmp_path / "population.jsonl"
    path.write_text(out.getvalue())

    prepared = prepare_file(path, REGISTRY, DEFAULT_AGENCIES)

    errors = [p for p in prepared if isinstance(p, LineError)]
    assert errors == []
    assert len(prepared) == count


@pytest.mark.parametrize("families", [1, 7])
def test_small_populations_work_too(families: int) -> None:
    stream = generate(families=families, events=20)
    assert len(stream) >= 20


def test_hub_simulate_with_a_seed_and_a_start_writes_the_same_file_twice(tmp_path: Path) -> None:
    outputs = []
    for name in ("first.jsonl", "second.jsonl"):
        out = tmp_path / name
        status = main(
            [
                "simulate",
                "--families",
                "12",
                "--events",
                "50",
                "--seed",
                "4",
                "--start",
                "2026-11-02T09:00:00",
                "--out",
                str(out),
            ]
        )
        assert status == 0
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    first = outputs[0].decode().splitlines()
    assert len(first) > 50
    assert '"occurred_at": "2026-11-02T09:00:00+00:00"' in first[0]
