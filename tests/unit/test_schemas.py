"""The schema files are the contract with the agencies: they load, they are documented, and
the types they share mean the same thing in every file."""

from __future__ import annotations

import copy
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from involvement_hub_producer.codec import SchemaRegistry, encode
from involvement_hub_producer.fingerprint import canonical_form, fingerprint
from involvement_hub_producer.json_form import SCHEMA_KEY, from_json

SCHEMAS = Path(__file__).parents[2] / "schemas"
FILES = sorted(SCHEMAS.glob("*.avsc"))
REGISTRY = SchemaRegistry.packaged()
_NAMED = ("record", "error", "enum", "fixed")


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return loaded


def test_the_packaged_record_types() -> None:
    assert set(REGISTRY.names) == {"Involvement", "LifeEvent", "Relationship", "Subscription"}


def file_version(path: Path) -> int:
    """``involvement.v2.avsc`` -> 2."""
    return int(path.name.split(".v")[1].removesuffix(".avsc"))


# Not a list of versions: a new version is one new file. Whether it may be added is for the
# compatibility gate to say (the registry refuses it otherwise; test_schema_gate.py).
def test_the_current_version_is_the_highest_numbered_file() -> None:
    highest: dict[str, int] = {}
    for path in FILES:
        name = load(path)["name"]
        highest[name] = max(highest.get(name, 0), file_version(path))
    assert {name: REGISTRY.current(name).version for name in REGISTRY.names} == highest


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_file_is_in_the_packaged_registry(path: Path) -> None:
    source = load(path)
    known = REGISTRY.by_fingerprint(fingerprint(source))
    assert known is not None
    assert known.name == source["name"]
    # Two versions differing only in docs, aliases or defaults share a fingerprint.
    versions = {v.version: v for v in REGISTRY.versions(source["name"])}
    assert versions[file_version(path)].source == source


def fields(schema: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every field of every record defined in ``schema``, with a path for messages."""
    if isinstance(schema, list):
        for branch in schema:
            yield from fields(branch, where)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "error"):
            for field in schema["fields"]:
                path = f"{where}.{field['name']}"
                yield path, field
                yield from fields(field["type"], path)
        elif kind == "array":
            yield from fields(schema["items"], where)
        elif kind == "map":
            yield from fields(schema["values"], where)
        elif isinstance(kind, (dict, list)):
            yield from fields(kind, where)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_field_is_documented(path: Path) -> None:
    source = load(path)
    found = list(fields(source, source["name"]))
    assert len(found) > 10
    undocumented = [name for name, field in found if not str(field.get("doc", "")).strip()]
    assert undocumented == []


def definitions(schema: Any, namespace: str | None, out: dict[str, dict[str, Any]]) -> None:
    """Every named type defined in ``schema``, by full name."""
    if isinstance(schema, list):
        for branch in schema:
            definitions(branch, namespace, out)
        return
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if kind in _NAMED:
        name = schema["name"]
        ns = schema.get("namespace", namespace)
        full = name if "." in name or not ns else f"{ns}.{name}"
        out[full] = schema
        namespace = full.rpartition(".")[0] or None
        for field in schema.get("fields", []):
            definitions(field["type"], namespace, out)
    elif kind == "array":
        definitions(schema["items"], namespace, out)
    elif kind == "map":
        definitions(schema["values"], namespace, out)
    elif isinstance(kind, (dict, list)):
        definitions(kind, namespace, out)


def resolved(schema: Any, named: dict[str, dict[str, Any]], namespace: str | None) -> Any:
    """``schema`` standing alone: references inlined, every name made absolute."""
    if isinstance(schema, str):
        full = schema if "." in schema else f"{namespace}.{schema}"
        if full in named:
            return resolved(named[full], named, namespace)
        return schema
    if isinstance(schema, list):
        return [resolved(branch, named, namespace) for branch in schema]
    out = copy.copy(schema)
    kind = schema.get("type")
    if kind in _NAMED:
        ns = schema.get("namespace", namespace)
        full = schema["name"] if "." in schema["name"] or not ns else f"{ns}.{schema['name']}"
        out["name"] = full
        out.pop("namespace", None)
        namespace = full.rpartition(".")[0] or None
        if "fields" in schema:
            out["fields"] = [
                {**f, "type": resolved(f["type"], named, namespace)} for f in schema["fields"]
            ]
    elif kind == "array":
        out["items"] = resolved(schema["items"], named, namespace)
    elif kind == "map":
        out["values"] = resolved(schema["values"], named, namespace)
    elif isinstance(kind, (str, dict, list)) and kind not in _NAMED:
        out["type"] = resolved(kind, named, namespace)
    return out


def record_type(file_name: str) -> str:
    """``involvement.v2.avsc`` -> ``involvement``."""
    return file_name.split(".", 1)[0]


def shared_definitions() -> dict[str, dict[str, Any]]:
    """Named types defined in files of more than one record type: full name → file name →
    resolved schema. Two versions of one record type may legitimately differ (that is what
    a new version is for), so only files of different record types are compared."""
    by_name: dict[str, dict[str, Any]] = defaultdict(dict)
    for path in FILES:
        named: dict[str, dict[str, Any]] = {}
        definitions(load(path), None, named)
        for full, schema in named.items():
            namespace = full.rpartition(".")[0] or None
            by_name[full][path.name] = resolved(schema, named, namespace)
    return {
        full: files for full, files in by_name.items() if len({record_type(f) for f in files}) > 1
    }


SHARED = shared_definitions()


def across_record_types(found: dict[str, str]) -> list[tuple[str, str]]:
    """Pairs of files of different record types whose values differ."""
    return [
        (a, b)
        for a in sorted(found)
        for b in sorted(found)
        if a < b and record_type(a) != record_type(b) and found[a] != found[b]
    ]


def test_versions_of_one_record_type_are_not_compared() -> None:
    # involvement.v1 and v2 differ by safeguarding_override, and only they define Involvement.
    assert "org.involvementhub.Involvement" not in SHARED
    assert "org.involvementhub.SafeguardingOverride" not in SHARED
    # ... but the types they share with other records are still compared in both versions.
    assert {"involvement.v1.avsc", "involvement.v2.avsc"} <= set(
        SHARED["org.involvementhub.Practitioner"]
    )


def test_the_common_types_are_shared() -> None:
    common = {f"org.involvementhub.{n}" for n in ("Source", "PersonRef", "Identifier", "Address")}
    assert common <= set(SHARED)


@pytest.mark.parametrize("full_name", sorted(SHARED))
def test_shared_types_have_one_canonical_form(full_name: str) -> None:
    forms = {file: canonical_form(schema) for file, schema in SHARED[full_name].items()}
    assert across_record_types(forms) == [], forms


def defaults(schema: Any) -> Any:
    return [(path, field.get("default")) for path, field in fields(schema, "")]


@pytest.mark.parametrize("full_name", sorted(SHARED))
def test_shared_types_have_the_same_defaults(full_name: str) -> None:
    # Defaults are not in the canonical form, but the reader fills them in: a shared type
    # with different defaults in two files would read old data differently by record type.
    found = {file: json.dumps(defaults(schema)) for file, schema in SHARED[full_name].items()}
    assert across_record_types(found) == [], found


def test_resolving_inlines_references() -> None:
    # RelatedPerson refers to PersonRef by name: compared alone, it must carry PersonRef in full.
    named: dict[str, dict[str, Any]] = {}
    definitions(load(SCHEMAS / "life_event.v1.avsc"), None, named)
    related = resolved(named["org.involvementhub.RelatedPerson"], named, "org.involvementhub")
    person = '{"name":"org.involvementhub.PersonRef","type":"record","fields":[{"name":'
    assert person in canonical_form(related)


README = SCHEMAS / "README.md"
_EXAMPLE = re.compile(r"^\{\"schema\": ?\"(\w+)\".*\}$", re.MULTILINE)


def test_every_json_example_in_the_readme_encodes() -> None:
    examples = [(m[1], json.loads(m[0])) for m in _EXAMPLE.finditer(README.read_text("utf-8"))]
    assert sorted({name for name, _ in examples}) == sorted(REGISTRY.names)
    for name, value in examples:
        schema = REGISTRY.current(value.pop(SCHEMA_KEY))
        assert schema.name == name
        encode(from_json(value, schema.source), schema)
