"""The operators' commands refuse what they cannot act on, before reading Kafka or writing a
file: exit status 2 and a message giving the expected form.

No broker: ``HUB_KAFKA_BOOTSTRAP`` names a port nothing listens on, so a command that got as far
as Kafka would fail differently (exit 1, "cannot reach Kafka").
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from involvement_hub.cli import main as cli
from support.records import life_event, person, write_jsonl

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def subscriptions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the repository's subscriptions folder, and settings that point at it."""
    folder = tmp_path / "subscriptions"
    shutil.copytree(REPO / "subscriptions", folder)
    for name in list(os.environ):
        if name.startswith("HUB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HUB_SUBSCRIPTIONS_DIR", str(folder))
    monkeypatch.setenv("HUB_POLICY_FILE", str(REPO / "governance" / "policy.toml"))
    monkeypatch.setenv("HUB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HUB_KAFKA_BOOTSTRAP", "127.0.0.1:9")
    return folder


@pytest.mark.parametrize(
    ("practitioner", "expected"),
    [
        ("nobody/XYZ", "agency 'nobody' is not one of the hub's agencies (northshire-social-care"),
        ("SW-0042", "'SW-0042' is not of the form agency/practitioner_id, for example"),
        ("northshire-social-care/", "is not of the form agency/practitioner_id"),
        ("northshire-social-care/SW 42", "is not of the form agency/practitioner_id"),
    ],
)
def test_preferences_set_refuses_an_unknown_agency_or_a_malformed_id(
    subscriptions: Path, capsys: pytest.CaptureFixture[str], practitioner: str, expected: str
) -> None:
    before = (subscriptions / "preferences.toml").read_text()

    status = cli.main(["preferences", "set", practitioner, "--mode", "hourly"])

    assert status == cli.EXIT_CONFIG
    assert expected in capsys.readouterr().err
    assert (subscriptions / "preferences.toml").read_text() == before


def test_preferences_set_takes_a_practitioner_of_a_known_agency(
    subscriptions: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(["preferences", "set", "northshire-social-care/SW-0042", "--mode", "hourly"])

    assert status == cli.EXIT_OK
    assert 'northshire-social-care/SW-0042"' in (subscriptions / "preferences.toml").read_text()
    assert capsys.readouterr().err == ""


def test_preferences_clear_takes_a_former_agency_but_not_a_malformed_id(
    subscriptions: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["preferences", "clear", "closed-agency/SW-0042"]) == cli.EXIT_OK
    assert cli.main(["preferences", "clear", "SW-0042"]) == cli.EXIT_CONFIG
    assert "is not of the form agency/practitioner_id" in capsys.readouterr().err


def test_audit_refuses_a_practitioner_without_an_agency(
    subscriptions: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(["audit", "--practitioner", "SW-0042"])

    assert status == cli.EXIT_CONFIG
    err = capsys.readouterr().err
    assert "hub audit: --practitioner 'SW-0042' is not of the form agency/practitioner_id" in err
    assert "Kafka" not in err


# --- the configuration is checked first -----------------------------------------------------

# Enough arguments for each command to parse; none of them gets to run.
ARGUMENTS = {
    "worker": [],
    "publish": ["events.jsonl"],
    "topics": [],
    "check": [],
    "team": ["nhs_number:9990000018"],
    "audit": ["--person", "nhs_number:9990000018"],
    "identity": ["candidates"],
    "delivery": ["A123"],
    "preferences": ["list"],
    "quarantine": ["list"],
    "simulate": ["--out", "events.jsonl"],
    "bench": [],
    "chaos": [],
    "demo": [],
}
WITHOUT_CONFIG = {"kafka", "mailbox", "schemas"}  # schemas: only the schemas (test_schema_gate)


def test_every_command_is_covered_below() -> None:
    _, names = cli._parser_and_commands()
    assert names == set(ARGUMENTS) | WITHOUT_CONFIG


@pytest.mark.parametrize("command", sorted(ARGUMENTS))
@pytest.mark.parametrize("broken", ["policy", "rules"])
def test_every_command_stops_on_a_broken_policy_or_rules_file(
    subscriptions: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
    broken: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    if broken == "policy":
        policy = tmp_path / "policy.toml"
        policy.write_text("version = [unclosed\n")
        monkeypatch.setenv("HUB_POLICY_FILE", str(policy))
    else:
        (subscriptions / "rules.toml").write_text("[[rule]]\nid = 1\n")

    status = cli.main([command, *ARGUMENTS[command]])

    assert status == cli.EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.startswith(f"hub {command}: configuration problem: ")
    assert ("policy.toml" if broken == "policy" else "rules.toml") in err
    assert not (tmp_path / "events.jsonl").exists()


def test_the_local_broker_commands_do_not_need_the_configuration(
    subscriptions: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("version = [unclosed\n")
    monkeypatch.setenv("HUB_POLICY_FILE", str(policy))
    # A port in this suite's range that no broker listens on: status answers "not running".
    monkeypatch.setenv("HUB_LOCAL_KAFKA_PORT", "19798")

    assert cli.main(["kafka", "status"]) == cli.EXIT_PARTIAL
    assert "kafka not running, not answering" in capsys.readouterr().out
    assert cli.build_parser().parse_args(["mailbox"]).uses_config is False


# --- a reader that goes away ----------------------------------------------------------------


def test_output_piped_into_a_reader_that_stops_early_ends_quietly(subscriptions: Path) -> None:
    # More lines than a pipe holds (64 KiB), so the command is still writing when the reader
    # closes its end, as `hub identity candidates | head` does.
    lines = [
        f'[[preference]]\npractitioner = "northshire-health/HV-{i:05d}"\nmode = "hourly"\n'
        for i in range(5000)
    ]
    (subscriptions / "preferences.toml").write_text("\n".join(lines))
    with subprocess.Popen(
        [sys.executable, "-m", "involvement_hub", "preferences", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as child:
        assert child.stdout is not None
        assert child.stderr is not None
        first = child.stdout.readline()
        child.stdout.close()
        err = child.stderr.read()
        status = child.wait(timeout=60)

    assert first == b"northshire-health/HV-00000: hourly\n"
    assert err == b""
    assert status == cli.EXIT_READER_GONE


# --- hub publish with the broker down -------------------------------------------------------


def test_publish_with_the_broker_down_says_so_once_and_exits_2(
    subscriptions: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = [
        life_event("oakfield-primary", f"SCH-{n}", person(n), "SCHOOL_EXCLUSION")
        for n in range(1, 201)
    ]
    records.append({**records[0], "urgency": "PRIORTY"})
    events = write_jsonl(tmp_path / "events.jsonl", records)

    status = cli.main(["publish", str(events)])

    out, err = capsys.readouterr()
    assert status == cli.EXIT_CONFIG
    assert out == "published 0 events; 201 lines not sent\n"
    # One line for the bad line, one for the broker: not one per line.
    bad, stopped = err.splitlines()
    assert bad.startswith("line 201: ")
    assert stopped == (
        "hub publish: stopped at line 1: cannot reach Kafka at 127.0.0.1:9 (is the broker "
        "running, and HUB_KAFKA_BOOTSTRAP right?); 200 of the file's good lines not sent"
    )


@pytest.mark.parametrize(
    "extra", [["--limit", "0"], ["--offset", "-1"], ["--min-agreeing", "x"], ["--since", "May"]]
)
def test_candidates_refuses_a_bad_filter_or_page(
    subscriptions: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["identity", "candidates", *extra])
    assert exit_.value.code == cli.EXIT_CONFIG
    assert extra[0] in capsys.readouterr().err
