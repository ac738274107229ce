"""The hub on a real broker: bad messages are quarantined with their reason, good events
become alerts on ``hub.alerts`` for exactly the practitioners the rules and policy name."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from involvement_hub.config import load_config
from involvement_hub.kafka.topics import TopicNames
from involvement_hub_producer import encode
from involvement_hub_producer.json_form import from_json
from support import REPO
from support.metrics import metric
from support.records import involvement, life_event, person, practitioner
from support.topics import consume, produce_raw, publish_records, routed, settle, settled_records
from support.waiting import wait_until
from support.worker import WorkerProcess, hub_command

SOCIAL_CARE = "northshire-social-care"
SCHOOL = "oakfield-primary"
POLICE = "northshire-police"


def _headers(record: object) -> dict[str, str]:
    return {k: v.decode() for k, v in getattr(record, "headers", ())}


async def test_unfit_messages_are_quarantined_with_their_reason(worker: WorkerProcess) -> None:
    settings = worker.settings
    worker.start()
    names = TopicNames.from_settings(settings)
    registry = load_config(settings).registry
    child = person(21)
    # A valid record that claims to come from social care, written to the police topic.
    spoofed = life_event(SOCIAL_CARE, "CIN-1", child, "MISSING_EPISODE")
    spoofed_bytes = encode(
        from_json(
            {k: v for k, v in spoofed.items() if k != "schema"},
            registry.current("LifeEvent").source,
        ),
        registry.current("LifeEvent"),
    )
    # A kind the governance policy does not cover (OTHER) is quarantined, not routed.
    unclassified = life_event(POLICE, "INC-9", child, "OTHER")
    unclassified_bytes = encode(
        from_json(
            {k: v for k, v in unclassified.items() if k != "schema"},
            registry.current("LifeEvent").source,
        ),
        registry.current("LifeEvent"),
    )
    await produce_raw(
        settings.bootstrap,
        names.ingest(POLICE),
        [
            b"not avro at all",
            b"\xc3\x01" + b"\x00" * 8 + b"body",
            spoofed_bytes,
            unclassified_bytes,
        ],
    )
    records = await consume(settings.bootstrap, names.quarantine, count=4)
    reasons = sorted(_headers(r)["hub-reason"] for r in records)
    assert reasons == ["agency_mismatch", "bad_magic", "no_policy", "unknown_schema"]
    for record in records:
        headers = _headers(record)
        assert headers["hub-source-topic"] == names.ingest(POLICE)
        assert headers["hub-source-offset"].isdigit()
    # The quarantined bytes are the original message, untouched, for replay after a fix.
    assert {r.value for r in records} >= {b"not avro at all", spoofed_bytes}
    metrics = worker.metrics()
    assert f'hub_quarantined_total{{agency="{POLICE}",reason="agency_mismatch"}} 1.0' in metrics
    assert f'hub_quarantined_total{{agency="{POLICE}",reason="bad_magic"}} 1.0' in metrics
    assert f'hub_decode_failures_total{{agency="{POLICE}",reason="bad_magic"}} 1.0' in metrics


async def test_involvement_and_life_events_become_alerts_for_the_right_people(
    worker: WorkerProcess,
) -> None:
    settings = worker.settings
    worker.start()
    names = TopicNames.from_settings(settings)
    child = person(22, given="Robin", family="Fenwick")
    lead = practitioner("SW-1", "Alex Morgan", "social-care.northshire")
    dsl = practitioner(
        "DSL-1", "Sam Okafor", "oakfield-primary", role="designated safeguarding lead"
    )
    report = await publish_records(
        settings,
        [
            involvement(SOCIAL_CARE, "CIN-22", child, lead, involvement_id="SC-1", lead=True),
            involvement(
                SCHOOL, "PUPIL-22", child, dsl, involvement_id="SCH-1", category="EDUCATION"
            ),
        ],
    )
    # Events from different agencies' topics carry no order between them: let the team
    # form (the lead's alert about the school shows it has) before the police event.
    await consume(settings.bootstrap, names.alerts, count=1)
    report.sent += (
        await publish_records(
            settings, [life_event(POLICE, "INC-22", child, "MISSING_EPISODE", urgency="URGENT")]
        )
    ).sent
    # The lead hears that the school joined and that the child went missing; the school
    # (a team member) hears of the missing episode too (MISSING_EPISODE is for the team);
    # nobody hears of their own involvement starting.
    records = await settled_records(settings, names.alerts, expected=3)
    # Out-of-hours copies (URGENT outside working hours, by the wall clock) are not routing.
    records = [r for r in records if json.loads(r.value).get("copy_of") is None]
    alerts = [json.loads(r.value) for r in records]
    got = sorted((a["recipient_id"], a["kind"]) for a in alerts)
    assert got == [
        (f"{SOCIAL_CARE}/SW-1", "INVOLVEMENT_STARTED"),
        (f"{SOCIAL_CARE}/SW-1", "MISSING_EPISODE"),
        (f"{SCHOOL}/DSL-1", "MISSING_EPISODE"),
    ]
    for record, alert in zip(records, alerts, strict=True):
        assert record.key.decode() == alert["recipient_id"]  # keyed by recipient
        text = record.value.decode()
        for personal in (
            "Robin",
            "Fenwick",
            "2017-03-14",
            "ZZ99",
            child["identifiers"][0]["value"],
        ):
            assert personal not in text
    by_recipient = {a["recipient_id"]: a for a in alerts if a["kind"] == "MISSING_EPISODE"}
    assert by_recipient[f"{SOCIAL_CARE}/SW-1"]["case_ref"] == "CIN-22"  # their own reference
    assert by_recipient[f"{SCHOOL}/DSL-1"]["case_ref"] == "PUPIL-22"
    assert by_recipient[f"{SOCIAL_CARE}/SW-1"]["urgency"] == "URGENT"
    audit = await consume(settings.bootstrap, names.audit, count=3)
    assert len(audit) >= 3
    metrics = worker.metrics()
    assert f'hub_events_consumed_total{{agency="{POLICE}",kind="MISSING_EPISODE"}} 1.0' in metrics
    assert 'hub_routing_decisions_total{outcome="SEND",reason=""} 3.0' in metrics


async def test_a_lone_lead_starting_alerts_nobody_and_quarantines_nothing(
    worker: WorkerProcess,
) -> None:
    settings = worker.settings
    worker.start()
    names = TopicNames.from_settings(settings)
    child = person(23)
    lead = practitioner("SW-2", "Jo Lindqvist", "social-care.northshire")
    report = await publish_records(
        settings,
        [involvement(SOCIAL_CARE, "CIN-23", child, lead, involvement_id="SC-2", lead=True)],
    )
    assert report.sent == 1
    # Routed (one audit-free pass through the person stage) ...
    assert await routed(settings, 1) == 1
    # ... and neither alerted nor quarantined.
    assert await consume(settings.bootstrap, names.alerts, count=1, timeout=5) == []
    assert await consume(settings.bootstrap, names.quarantine, count=1, timeout=1) == []


def test_health_endpoints_answer(worker: WorkerProcess) -> None:
    worker.start()
    assert worker.probe("/healthz") == 200
    assert worker.probe("/readyz") == 200
    assert "hub_worker_ready 1.0" in worker.metrics()


async def test_a_restarted_worker_recovers_its_tables_and_routes_on_them(
    worker: WorkerProcess,
) -> None:
    """The team (and the identity index) survive a restart: they are rebuilt from their
    changelogs, so an event after the restart is routed on state from before it."""
    settings = worker.settings
    worker.start()
    names = TopicNames.from_settings(settings)
    child = person(24)
    lead = practitioner("SW-4", "Alex Morgan", "social-care.northshire")
    dsl = practitioner(
        "DSL-4", "Sam Okafor", "oakfield-primary", role="designated safeguarding lead"
    )
    await publish_records(
        settings,
        [involvement(SOCIAL_CARE, "CIN-24", child, lead, involvement_id="SC-4", lead=True)],
    )
    assert await routed(settings, 1) == 1
    await settle(settings)  # committed, so its changelogs are written
    worker.stop()
    worker.start()
    # The school knows the child only by its UPN: identity must come from the recovered index.
    only_upn = {**child, "identifiers": [child["identifiers"][1]]}
    await publish_records(
        settings,
        [
            involvement(
                SCHOOL, "PUPIL-24", only_upn, dsl, involvement_id="SCH-4", category="EDUCATION"
            )
        ],
    )
    records = await settled_records(settings, names.alerts, expected=1)
    assert [
        (json.loads(r.value)["recipient_id"], json.loads(r.value)["case_ref"]) for r in records
    ] == [(f"{SOCIAL_CARE}/SW-4", "CIN-24")]
    assert "Error in recovery" not in worker.log_tail(400)


def test_quarantined_messages_are_listed_and_replayed_after_a_fix(
    worker: WorkerProcess, tmp_path: Path
) -> None:
    """A kind with no policy is quarantined; once the policy covers it, a replay routes it."""
    settings = worker.settings
    # A policy without PERSISTENT_ABSENCE: the school's event is quarantined (no_policy).
    policy = (REPO / "governance" / "policy.toml").read_text()
    start = policy.index("[kind.PERSISTENT_ABSENCE]")
    end = policy.index("[kind.", start + 1)
    narrow = tmp_path / "policy.toml"
    narrow.write_text(policy[:start] + policy[end:])
    worker.settings = settings.replace(
        policy_file=narrow, vocabulary_file=REPO / "governance" / "vocabulary.toml"
    )
    worker.start()
    names = TopicNames.from_settings(settings)
    child = person(25)
    lead = practitioner("SW-5", "Alex Morgan", "social-care.northshire")
    asyncio.run(
        publish_records(
            settings,
            [involvement(SOCIAL_CARE, "CIN-25", child, lead, involvement_id="SC-5", lead=True)],
        )
    )
    assert asyncio.run(routed(settings, 1)) == 1
    absence = life_event(SCHOOL, "PUP-25", child, "PERSISTENT_ABSENCE")
    asyncio.run(publish_records(settings, [absence]))
    assert len(asyncio.run(consume(settings.bootstrap, names.quarantine, count=1))) == 1

    listed = hub_command("quarantine", "list", settings=settings)
    assert "1 quarantined messages" in listed.stdout
    assert SCHOOL in listed.stdout
    assert "no_policy" in listed.stdout

    # The fix: restart with the full policy, then replay.
    worker.stop()
    worker.settings = settings
    worker.start()
    replayed = hub_command("quarantine", "replay", "--reason", "no_policy", settings=settings)
    assert "replayed 1 of 1" in replayed.stderr
    alerts = asyncio.run(settled_records(settings, names.alerts, expected=1))
    assert [json.loads(r.value)["kind"] for r in alerts] == ["PERSISTENT_ABSENCE"]
    # A second replay finds nothing new.
    again = hub_command("quarantine", "replay", settings=settings)
    assert "replayed 0 of 0" in again.stderr


def test_a_simulated_population_flows_through_the_hub(worker: WorkerProcess) -> None:
    """``hub simulate`` publishes through the agency producer; the worker takes all of it."""
    settings = worker.settings
    worker.start()

    result = hub_command(
        "simulate", "--families", "8", "--events", "60", "--seed", "11", settings=settings
    )

    assert result.returncode == 0, result.stderr
    match = re.search(r"published (\d+) events", result.stderr)
    assert match, result.stderr
    published = int(match.group(1))
    assert published > 60  # the setup records, then the events

    def all_consumed_and_some_routed() -> str | None:
        exposition = worker.metrics()
        consumed = metric(exposition, "hub_events_consumed_total") or 0
        # Routing follows consumption by the reorder buffer's wait (a watermark or two).
        routed = metric(exposition, "hub_alerts_routed_total") or 0
        return exposition if consumed >= published and routed > 0 else None

    exposition = wait_until("the population consumed", all_consumed_and_some_routed, 120)
    assert metric(exposition, "hub_events_consumed_total") == published
    assert not metric(exposition, "hub_quarantined_total")
