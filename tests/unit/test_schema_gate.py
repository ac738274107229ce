"""The compatibility gate: a schema set in which a new version of a record cannot read the
versions before it, or be read by them, is refused when it is loaded -- by ``hub schemas
check``, ``hub check`` and the worker at start. Each refusal names the record, the two
versions and the field.

The changes are made to copies of the shipped schemas, in a temporary folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from involvement_hub.cli import main as cli
from involvement_hub_producer.codec import SchemaRegistry, decode, encode
from involvement_hub_producer.errors import IncompatibleSchemaError, SchemaError
from involvement_hub_producer.fingerprint import fingerprint
from involvement_hub_producer.json_form import from_json

SCHEMAS = Path(__file__).parents[2] / "schemas"


def newest(stem: str) -> tuple[int, dict[str, Any]]:
    """The newest shipped version of a record (``life_event``), and a copy of its schema."""
    version = max(int(p.name.split(".v")[1].removesuffix(".avsc")) for p in versions_of(stem))
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{stem}.v{version}.avsc").read_text("utf-8"))
    return version, loaded


def versions_of(stem: str) -> list[Path]:
    return sorted(SCHEMAS.glob(f"{stem}.v*.avsc"))


def next_version(stem: str, change: Callable[[dict[str, Any]], None]) -> dict[str, dict[str, Any]]:
    """The next version of a record: its newest shipped version with ``change`` made."""
    version, schema = newest(stem)
    change(schema)
    return {f"{stem}.v{version + 1}.avsc": schema}


def field_of(schema: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [f for f in schema["fields"] if f["name"] == name]
    return found


def schema_folder(tmp_path: Path, added: dict[str, dict[str, Any]]) -> Path:
    """The newest shipped version of each record, and ``added`` (file name -> schema)."""
    folder = tmp_path / "schemas"
    folder.mkdir()
    stems = {p.name.split(".")[0] for p in SCHEMAS.glob("*.avsc")}
    for stem in stems:
        version, schema = newest(stem)
        (folder / f"{stem}.v{version}.avsc").write_text(json.dumps(schema), "utf-8")
    for file_name, schema in added.items():
        (folder / file_name).write_text(json.dumps(schema, indent=2), "utf-8")
    return folder


# ── the breaking changes ────────────────────────────────────────────────────────────────


# The names these changes add are the tests' own, so a future shipped version cannot have them.
def new_field_without_default(schema: dict[str, Any]) -> None:
    schema["fields"].append({"name": "gate_test_channel", "type": "string", "doc": "Test."})


def enum_symbol_removed(schema: dict[str, Any]) -> None:
    field_of(schema, "urgency")["type"]["symbols"].remove("PRIORITY")


def field_renamed_without_alias(schema: dict[str, Any]) -> None:
    field_of(schema, "change")["name"] = "gate_test_status"


def type_changed_from_int_to_string(schema: dict[str, Any]) -> None:
    field_of(schema, "started_on")["type"] = "string"  # an int (a date) until now


def union_lost_a_branch(schema: dict[str, Any]) -> None:
    # consent_to_share becomes required: the null an agency sends today has nowhere to go.
    consent = field_of(schema, "consent_to_share")
    consent["type"] = "boolean"
    del consent["default"]


# change -> (the record's file stem, the change, what is wrong: {old} is the newest shipped
# version, {new} the changed one)
BREAKING: dict[str, tuple[str, Callable[[dict[str, Any]], None], list[str]]] = {
    "a new field without a default": (
        "life_event",
        new_field_without_default,
        [
            "LifeEvent.gate_test_channel: {new} has this field without a default, and {old} "
            "does not write it"
        ],
    ),
    "an enum symbol removed": (
        "life_event",
        enum_symbol_removed,
        [
            "LifeEvent.urgency: {old} may write PRIORITY, which {new}'s enum Urgency does not "
            "have, and that enum has no default"
        ],
    ),
    "a field renamed without an alias": (
        "relationship",
        field_renamed_without_alias,
        [
            "Relationship.gate_test_status: {new} has this field without a default, and {old} "
            "does not write it",
            "Relationship.change: {old} has this field without a default, and {new} does not "
            "write it",
        ],
    ),
    "a type changed from int to string": (
        "involvement",
        type_changed_from_int_to_string,
        [
            "Involvement.started_on: {old} writes int, which {new} cannot read as string",
            "Involvement.started_on: {new} writes string, which {old} cannot read as int",
        ],
    ),
    "a union that lost a branch": (
        "involvement",
        union_lost_a_branch,
        ["Involvement.consent_to_share: {old} writes null, which {new} cannot read as boolean"],
    ),
}


@pytest.mark.parametrize("change", sorted(BREAKING))
def test_the_registry_refuses_a_breaking_change(tmp_path: Path, change: str) -> None:
    stem, make, wrong = BREAKING[change]
    old = newest(stem)[0]
    new = old + 1

    with pytest.raises(IncompatibleSchemaError) as caught:
        SchemaRegistry.from_directory(schema_folder(tmp_path, next_version(stem, make)))

    name = str(newest(stem)[1]["name"])
    expected = [
        f"{name} v{old} -> v{new}: " + line.format(old=f"v{old}", new=f"v{new}") for line in wrong
    ]
    assert list(caught.value.problems) == expected
    assert isinstance(caught.value, SchemaError)  # refused wherever a bad schema is
    assert all(line in str(caught.value) for line in expected)


def test_every_earlier_version_is_checked_not_only_the_newest(tmp_path: Path) -> None:
    folder = schema_folder(tmp_path, next_version("involvement", type_changed_from_int_to_string))
    for path in versions_of("involvement"):
        (folder / path.name).write_text(path.read_text("utf-8"), "utf-8")

    with pytest.raises(IncompatibleSchemaError) as caught:
        SchemaRegistry.from_directory(folder)

    new = newest("involvement")[0] + 1
    pairs = {line.split(":")[0] for line in caught.value.problems}
    shipped = [int(p.name.split(".v")[1].removesuffix(".avsc")) for p in versions_of("involvement")]
    assert len(shipped) >= 2
    assert pairs == {f"Involvement v{old} -> v{new}" for old in shipped}


# ── the compatible changes ──────────────────────────────────────────────────────────────

# JSON form (json_form.from_json), as an agency on the older version would send them.
SOURCE = {"agency_id": "northshire-social-care", "system": "cm", "record_ref": "C-1"}
SUBJECT = {"identifiers": [{"scheme": "nhs_number", "value": "9990012377"}]}
ENVELOPE = {
    "occurred_at": "2026-11-03T14:05:00Z",
    "recorded_at": "2026-11-03T14:06:00Z",
    "source": SOURCE,
    "subject": SUBJECT,
}
LIFE_EVENT = {**ENVELOPE, "event_id": "le-1", "kind": "SCHOOL_EXCLUSION", "urgency": "PRIORITY"}
INVOLVEMENT = {
    **ENVELOPE,
    "event_id": "inv-1",
    "involvement_id": "I-1",
    "change": "ENDED",
    "service": {"service_id": "S", "name": "Help", "category": "EARLY_HELP", "level": "TARGETED"},
    "practitioner": {"practitioner_id": "P", "name": "Sam", "role": "worker", "email": "s@x.test"},
    "is_lead": True,
    "lawful_basis": "PUBLIC_TASK",
    "started_on": "2026-01-05",
    "ended_on": "2026-11-02",
    "end_reason": "case closed",
}


def field_with_default(schema: dict[str, Any]) -> None:
    schema["fields"].append(
        {"name": "gate_test_channel", "type": "string", "default": "unspecified", "doc": "Test."}
    )


def enum_symbol_added_where_the_enum_has_a_default(schema: dict[str, Any]) -> None:
    field_of(schema, "kind")["type"]["symbols"].append("GATE_TEST_KIND")


def optional_field_removed(schema: dict[str, Any]) -> None:
    schema["fields"].remove(field_of(schema, "details"))  # the old version reads its default


def optional_field_renamed_with_an_alias(schema: dict[str, Any]) -> None:
    renamed = field_of(schema, "end_reason")
    renamed["name"], renamed["aliases"] = "gate_test_reason", ["end_reason"]


def alias_added(schema: dict[str, Any]) -> None:
    field_of(schema, "end_reason")["aliases"] = ["gate_test_reason"]


Change = Callable[[dict[str, Any]], None]
# change -> (the new schema, a record in the version before, what the new version reads
# differently: fields it adds, and fields it no longer has)
COMPATIBLE: dict[str, tuple[Change, dict[str, Any], dict[str, Any], tuple[str, ...]]] = {
    "a field with a default": (
        field_with_default,
        LIFE_EVENT,
        {"gate_test_channel": "unspecified"},
        (),
    ),
    "a new enum symbol where the enum has a default": (
        enum_symbol_added_where_the_enum_has_a_default,
        LIFE_EVENT,
        {},
        (),
    ),
    "an optional field removed": (optional_field_removed, LIFE_EVENT, {}, ("details",)),
    "an optional field renamed, with an alias": (
        optional_field_renamed_with_an_alias,
        INVOLVEMENT,
        {"gate_test_reason": "case closed"},
        ("end_reason",),
    ),
    "an alias added": (alias_added, INVOLVEMENT, {}, ()),
}


@pytest.mark.parametrize("change", sorted(COMPATIBLE))
def test_the_registry_accepts_a_compatible_change(tmp_path: Path, change: str) -> None:
    make, value, added, removed = COMPATIBLE[change]
    stem, name = (
        ("life_event", "LifeEvent") if value is LIFE_EVENT else ("involvement", "Involvement")
    )
    registry = SchemaRegistry.from_directory(schema_folder(tmp_path, next_version(stem, make)))
    older, latest = registry.versions(name)[-2:]
    record = from_json(value, older.source)

    # What an agency still on the older version sends, read into the new version's shape.
    decoded = decode(encode(record, older), registry)

    assert latest is registry.current(name)
    assert latest.version == older.version + 1
    kept = {k: v for k, v in record.items() if k not in removed}
    assert decoded.record == {**kept, **added}


def test_an_alias_alone_keeps_the_fingerprint(tmp_path: Path) -> None:
    # Aliases, docs and defaults are not in the canonical form: both versions are one writer.
    folder = schema_folder(tmp_path, next_version("involvement", alias_added))
    registry = SchemaRegistry.from_directory(folder)
    older, aliased = registry.versions("Involvement")
    assert older.fingerprint == aliased.fingerprint == fingerprint(newest("involvement")[1])
    assert registry.current("Involvement") is aliased


def test_versions_lists_every_version_oldest_first() -> None:
    registry = SchemaRegistry.packaged()
    for name in registry.names:
        numbers = [v.version for v in registry.versions(name)]
        assert numbers == sorted(numbers)
        assert registry.versions(name)[-1] is registry.current(name)
    assert registry.versions("org.involvementhub.Involvement") == registry.versions("Involvement")


# ── hub schemas check, hub check and the worker ─────────────────────────────────────────

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def hub_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The repository's policy and rules, and no other HUB_* setting; no broker is reached."""
    for name in list(os.environ):
        if name.startswith("HUB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HUB_POLICY_FILE", str(REPO / "governance" / "policy.toml"))
    monkeypatch.setenv("HUB_SUBSCRIPTIONS_DIR", str(REPO / "subscriptions"))
    monkeypatch.setenv("HUB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HUB_KAFKA_BOOTSTRAP", "127.0.0.1:9")


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    """The newest schemas and a LifeEvent version that drops the symbol PRIORITY."""
    return schema_folder(tmp_path, next_version("life_event", enum_symbol_removed))


def refusal() -> str:
    """What every command says of the ``broken`` folder."""
    old = newest("life_event")[0]
    return (
        f"LifeEvent v{old} -> v{old + 1}: LifeEvent.urgency: v{old} may write PRIORITY, which "
        f"v{old + 1}'s enum Urgency does not have, and that enum has no default"
    )


@pytest.mark.usefixtures("hub_environment")
def test_hub_schemas_check_passes_the_shipped_schemas(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["schemas", "check"]) == cli.EXIT_OK

    out = capsys.readouterr().out.splitlines()
    files = sorted(SCHEMAS.glob("*.avsc"))
    registry = SchemaRegistry.packaged()
    assert out[:-1] == [
        f"{name}: {', '.join(f'v{v.version}' for v in registry.versions(name))}"
        for name in registry.names
    ]
    assert out[-1] == (
        f"ok: {len(files)} schemas, {len(registry.names)} record names, every version fully "
        "compatible with the ones before it"
    )


@pytest.mark.usefixtures("hub_environment")
def test_hub_schemas_check_refuses_an_incompatible_folder(
    broken: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["schemas", "check", str(broken)]) == cli.EXIT_CONFIG

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("hub schemas: configuration problem: ")
    assert refusal() in captured.err


@pytest.mark.usefixtures("hub_environment")
def test_hub_schemas_check_reads_the_configured_folder(
    broken: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HUB_SCHEMA_DIR", str(broken))

    assert cli.main(["schemas", "check"]) == cli.EXIT_CONFIG
    assert refusal() in capsys.readouterr().err
    # A folder named on the command line is checked instead.
    assert cli.main(["schemas", "check", str(SCHEMAS)]) == cli.EXIT_OK


@pytest.mark.usefixtures("hub_environment")
def test_hub_schemas_check_needs_no_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("version = [unclosed\n")
    monkeypatch.setenv("HUB_POLICY_FILE", str(policy))

    assert cli.main(["schemas", "check"]) == cli.EXIT_OK
    assert cli.main(["check"]) == cli.EXIT_CONFIG


@pytest.mark.usefixtures("hub_environment")
@pytest.mark.parametrize("command", ["check", "worker"])
def test_hub_check_and_the_worker_refuse_an_incompatible_folder(
    broken: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    monkeypatch.setenv("HUB_SCHEMA_DIR", str(broken))
    monkeypatch.setattr(cli, "_worker", lambda args, settings: pytest.fail("the worker started"))

    assert cli.main([command]) == cli.EXIT_CONFIG

    err = capsys.readouterr().err
    assert err.startswith(f"hub {command}: configuration problem: ")
    assert refusal() in err


@pytest.mark.usefixtures("hub_environment")
def test_hub_check_passes_the_shipped_schemas(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check"]) == cli.EXIT_OK
    assert capsys.readouterr().out.startswith("ok: ")
