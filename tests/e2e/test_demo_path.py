"""The demo path as a user runs it: the ``hub`` command, a real SMTP server process, a real
broker. Events published with ``hub publish`` arrive as emails, checked by recipient and by
Message-ID (derived independently here from the alert-id rule in the design)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from involvement_hub.errors import HubError
from involvement_hub.settings import Settings
from involvement_hub_devtools.mailbox import RCPT_HEADER, read_mailbox
from involvement_hub_devtools.processes import free_port, wait_for_port
from support import REPO
from support.records import involvement, life_event, person, practitioner, write_jsonl
from support.topics import settle
from support.waiting import wait_until
from support.worker import WorkerProcess, hub_command, hub_environment

SOCIAL_CARE = "northshire-social-care"
SCHOOL = "oakfield-primary"
POLICE = "northshire-police"
POLICY_VERSION = tomllib.loads((REPO / "governance" / "policy.toml").read_text())["version"]


def is_out_of_hours_copy(message: object) -> bool:
    return "out-of-hours copy" in str(message["Subject"])  # type: ignore[index]


def expected_message_id(agency: str, event_id: str, recipient: str, case_ref: str) -> str:
    material = "\x1f".join((f"{agency}/{event_id}", recipient, case_ref, POLICY_VERSION))
    return f"<{hashlib.sha256(material.encode()).hexdigest()[:32]}@hub.invalid>"


@pytest.fixture
def mailbox_process(hub_settings: Settings) -> Iterator[Path]:
    """``hub mailbox``: the demo's SMTP server, as its own process."""
    process = subprocess.Popen(
        [sys.executable, "-m", "involvement_hub", "mailbox"],
        env=hub_environment(hub_settings),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        try:
            wait_for_port(hub_settings.mailbox_port)
        except HubError:
            pytest.fail("hub mailbox did not start listening")
        yield hub_settings.mailbox_dir
    finally:
        process.terminate()
        process.wait(timeout=20)


def readable(message: EmailMessage) -> str:
    """Headers and both bodies decoded: the bodies travel base64-encoded."""
    headers = "\n".join(f"{name}: {value}" for name, value in message.items())
    bodies = []
    for kind in ("plain", "html"):
        part = message.get_body(preferencelist=(kind,))
        assert part is not None, f"no {kind} part"
        bodies.append(str(part.get_content()))
    return "\n".join([headers, *bodies])


def settled_mail(settings: Settings, count: int) -> list[EmailMessage]:
    """The mailbox once ``count`` emails arrived and the worker settled: an email too many
    would be here by then."""
    wait_until(
        f"{count} emails", lambda: len(list(settings.mailbox_dir.glob("*.eml"))) >= count, 90
    )
    asyncio.run(settle(settings))
    return list(read_mailbox(settings.mailbox_dir))


def test_published_events_arrive_as_emails(
    worker: WorkerProcess, mailbox_process: Path, tmp_path: Path
) -> None:
    settings = worker.settings
    worker.start()
    child = person(31, given="Ellis", family="Quarry")
    lead = practitioner("SW-31", "Alex Morgan", "social-care.northshire")
    dsl = practitioner(
        "DSL-31", "Sam Okafor", "oakfield-primary", role="designated safeguarding lead"
    )
    records = [
        involvement(SOCIAL_CARE, "CIN-31", child, lead, involvement_id="SC-31", lead=True),
        involvement(SCHOOL, "PUPIL-31", child, dsl, involvement_id="SCH-31", category="EDUCATION"),
        life_event(POLICE, "INC-31", child, "DOMESTIC_ABUSE_INCIDENT", urgency="URGENT"),
    ]
    path = write_jsonl(tmp_path / "events.jsonl", records)
    # One broken line in the middle: it is reported by number and the others still go.
    lines = path.read_text().splitlines()
    lines.insert(1, '{"schema": "LifeEvent", "event_id": ')
    path.write_text("\n".join(lines) + "\n")

    result = hub_command("publish", str(path), settings=settings)
    assert result.returncode == 1, result.stderr
    assert "line 2: not valid JSON" in result.stderr
    assert "published 3 events; 1 lines not sent" in result.stdout

    messages = [m for m in settled_mail(settings, 2) if not is_out_of_hours_copy(m)]
    got = sorted((m[RCPT_HEADER], m["Message-ID"]) for m in messages)  # type: ignore[index]
    lead_email = lead["email"]
    assert got == sorted(
        [
            (
                lead_email,
                expected_message_id(
                    SCHOOL, records[1]["event_id"], f"{SOCIAL_CARE}/SW-31", "CIN-31"
                ),
            ),
            (
                lead_email,
                expected_message_id(
                    POLICE, records[2]["event_id"], f"{SOCIAL_CARE}/SW-31", "CIN-31"
                ),
            ),
        ]
    )
    for message in messages:
        seen = readable(message)
        for personal in ("Ellis", "Quarry", "2017-03-14", "ZZ99", child["identifiers"][0]["value"]):
            assert personal not in seen
        assert "CIN-31" in seen  # the lead's own case reference
        assert "CIN-31" not in message["Subject"]


def test_publish_reports_a_missing_file_and_bad_configuration(
    hub_settings: Settings, tmp_path: Path
) -> None:
    missing = hub_command("publish", str(tmp_path / "nope.jsonl"), settings=hub_settings)
    assert missing.returncode == 2
    assert "no such file" in missing.stderr
    broken = hub_settings.replace(policy_file=tmp_path / "absent-policy.toml")
    path = write_jsonl(tmp_path / "one.jsonl", [])
    result = hub_command("publish", str(path), settings=broken)
    assert result.returncode == 2
    assert "policy file not found" in result.stderr


def test_hub_demo_runs_end_to_end(hub_settings: Settings) -> None:
    settings = hub_settings.replace(metrics_port=free_port(), mailbox_port=free_port())
    result = hub_command("demo", settings=settings, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    # The story: six alerts to its two practitioners (the health visitor hears of the
    # incident at the baby's home too). Outside working hours (by the wall clock) the URGENT
    # incident is also copied to the social care and health out-of-hours contacts.
    everything = read_mailbox(settings.mailbox_dir)
    story = {"alex.morgan@social-care.northshire.example", "jo.lindqvist@health.northshire.example"}
    recipients = sorted(m[RCPT_HEADER] for m in everything if m[RCPT_HEADER] in story)
    assert recipients.count("alex.morgan@social-care.northshire.example") == 4
    assert recipients.count("jo.lindqvist@health.northshire.example") == 2
    listed = re.search(r"(\d+) alerts delivered", result.stderr)
    assert listed, result.stderr[-3000:]
    assert int(listed.group(1)) in (6, 8)  # the story's, before the population was published
    copies = {m[RCPT_HEADER] for m in everything if is_out_of_hours_copy(m)}
    assert copies <= {
        "emergency-duty-team@social-care.northshire.example",
        "on-call-safeguarding@health.northshire.example",
    }
    # Then a synthetic population (hub simulate's), all of it routed and none of it
    # quarantined (the summary counts the population's own, after the story's unreadable
    # message). Emails and alerts differ either way: copies and escalations add emails; a
    # digest or working-hours preference holds some back, and a child reached through two
    # links is two routed alerts with one id, one email.
    summary = re.search(
        r"all (\d+) routed: (\d+) alerts, (\d+) emails arrived in the mailbox.*?; "
        r"(\d+) messages quarantined",
        result.stderr,
    )
    assert summary, result.stderr[-3000:]
    assert int(summary.group(1)) > 200  # 20 families' setup records and 200 events
    assert int(summary.group(2)) > 0
    assert int(summary.group(3)) > 0
    assert int(summary.group(4)) == 0
    population = [m for m in everything if m[RCPT_HEADER] not in story]
    assert any(not is_out_of_hours_copy(m) for m in population)
