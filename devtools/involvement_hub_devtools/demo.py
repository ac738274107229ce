"""``hub demo``: the whole hub on a real local broker, with alerts landing in a mailbox.

It starts what is missing (the local Kafka broker unless ``HUB_KAFKA_BOOTSTRAP`` names one,
the local mailbox, one hub worker), publishes a short multi-agency story about one
synthetic family with ``hub publish``'s own code, sends one unreadable message to show the
quarantine, waits for the alerts to arrive, prints them, and stops what it started.

Every run uses fresh event ids, so a second run alerts again instead of being recognised
as a replay of the first.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import signal
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from involvement_hub.cli.publish import prepare_file, publish_prepared
from involvement_hub.config import load_config
from involvement_hub.kafka import io as kafka_io
from involvement_hub.kafka.admin import group_lag
from involvement_hub.kafka.topics import TopicNames
from involvement_hub.settings import Settings

from involvement_hub_devtools.localkafka import LocalKafka
from involvement_hub_devtools.mailbox import RCPT_HEADER, Mailbox, read_mailbox
from involvement_hub_devtools.population import Population
from involvement_hub_devtools.processes import Worker, metric_total
from involvement_hub_devtools.simulate import encoded, publish, records
from involvement_hub_devtools.synthetic import email, nhs_number, upn

Progress = Callable[[str], None]
READY_TIMEOUT_S = 120.0
STORY_SETUP = 3  # the involvements; the life events and the change come after
QUIET_PERIOD_S = 4.0
ARRIVAL_TIMEOUT_S = 90.0


def _person(
    n: int, la_id: str, given: str, family: str, born: dt.date, upn_n: int | None, uprn: str
) -> dict[str, Any]:
    identifiers = [{"scheme": "nhs_number", "value": nhs_number(n)}]
    identifiers.append({"scheme": "la_person_id", "value": la_id})
    if upn_n is not None:
        identifiers.append({"scheme": "upn", "value": upn(upn_n)})
    return {
        "identifiers": identifiers,
        "given_name": given,
        "family_name": family,
        "date_of_birth": born.isoformat(),
        "address": {"uprn": uprn, "postcode": "ZZ99 3AA"},
    }


def _practitioner(
    pid: str, name: str, role: str, domain: str, team: str, ooh: str | None
) -> dict[str, Any]:
    return {
        "practitioner_id": pid,
        "name": name,
        "role": role,
        "email": email(name, domain),
        "phone": "01632 960001",
        "team": team,
        "out_of_hours_phone": ooh,
    }


def demo_records(now: dt.datetime, run: str, family: int = 0) -> list[dict[str, Any]]:
    """The story, in JSON form (one dict per ``hub publish`` line).

    ``family`` numbers the synthetic family: each run uses a new one, so the story starts
    from a clean slate even though the broker keeps the state of earlier runs.
    """
    n = 10 + 2 * family
    # The family's home: one per run too (the population's UPRNs begin 99900 and 99901).
    home = f"99902{family:07d}"
    kit = _person(
        n, f"LA-{100200 + n}", "Kit", "Ashdown", dt.date(2017, 3, 14), upn_n=100200 + n, uprn=home
    )
    robin = _person(
        n + 1, f"LA-{100201 + n}", "Robin", "Ashdown", dt.date(2022, 8, 2), upn_n=None, uprn=home
    )
    social_worker = _practitioner(
        "SW-0042",
        "Alex Morgan",
        "social worker",
        "social-care.northshire",
        "Children in Need North",
        "01632 960999",
    )
    dsl = _practitioner(
        "DSL-7", "Sam Okafor", "designated safeguarding lead", "oakfield-primary", "Pastoral", None
    )
    health_visitor = _practitioner(
        "HV-311",
        "Jo Lindqvist",
        "health visitor",
        "health.northshire",
        "0-19 Service West",
        "01632 960888",
    )
    step = iter(range(100))

    def envelope(agency: str, system: str, ref: str, subject: dict[str, Any]) -> dict[str, Any]:
        at = (now + dt.timedelta(seconds=next(step))).isoformat()
        return {
            "event_id": f"demo-{run}-{uuid.uuid4().hex[:8]}",
            "occurred_at": at,
            "recorded_at": at,
            "source": {"agency_id": agency, "system": system, "record_ref": ref},
            "subject": subject,
        }

    def involvement(
        agency: str, system: str, ref: str, subject: dict[str, Any], **kw: Any
    ) -> dict[str, Any]:
        return {"schema": "Involvement", **envelope(agency, system, ref, subject), **kw}

    def life(
        agency: str, system: str, ref: str, subject: dict[str, Any], **kw: Any
    ) -> dict[str, Any]:
        return {"schema": "LifeEvent", **envelope(agency, system, ref, subject), **kw}

    today = now.date().isoformat()
    social_care = ("northshire-social-care", "case-management", "CIN-2026-0417")
    school = ("oakfield-primary", "school-mis", "PUPIL-4471")
    health = ("northshire-health", "child-health-record", "CHR-88213")
    pastoral = {
        "service_id": "OAK-PASTORAL",
        "name": "Oakfield Primary pastoral support",
        "category": "EDUCATION",
        "level": "TARGETED",
    }
    return [
        involvement(
            *social_care,
            kit,
            involvement_id="INV-SC-1",
            change="STARTED",
            service={
                "service_id": "CIN-N",
                "name": "Children in Need North",
                "category": "SOCIAL_CARE",
                "level": "STATUTORY",
            },
            practitioner=social_worker,
            is_lead=True,
            lawful_basis="PUBLIC_TASK",
            started_on=today,
        ),
        involvement(
            *school,
            kit,
            involvement_id="INV-SCH-1",
            change="STARTED",
            service=pastoral,
            practitioner=dsl,
            is_lead=False,
            lawful_basis="PUBLIC_TASK",
            started_on=today,
        ),
        involvement(
            *health,
            robin,
            involvement_id="INV-HV-1",
            change="STARTED",
            service={
                "service_id": "HV-W",
                "name": "Health visiting West",
                "category": "HEALTH",
                "level": "UNIVERSAL",
            },
            practitioner=health_visitor,
            is_lead=True,
            lawful_basis="PUBLIC_TASK",
            started_on=today,
        ),
        life(
            "northshire-police",
            "incident-system",
            "INC-26-55120",
            kit,
            kind="DOMESTIC_ABUSE_INCIDENT",
            urgency="URGENT",
            details={"risk_assessment": "medium"},
        ),
        life(
            *school,
            kit,
            kind="SCHOOL_EXCLUSION",
            urgency="PRIORITY",
            details={"exclusion_type": "fixed_term", "days": "3"},
        ),
        life(
            *health,
            robin,
            kind="HOSPITAL_ATTENDANCE",
            urgency="PRIORITY",
            details={"setting": "emergency department"},
        ),
        involvement(
            *school,
            kit,
            involvement_id="INV-SCH-1",
            change="ENDED",
            service=pastoral,
            practitioner=dsl,
            is_lead=False,
            lawful_basis="PUBLIC_TASK",
            started_on=today,
            ended_on=today,
            end_reason="support plan completed",
        ),
    ]


def run_demo(
    settings: Settings, *, keep_running: bool, progress: Progress, population: int = 20
) -> int:
    load_config(settings)  # refuse to start on a bad policy or rules file
    workdir = settings.state_dir / "demo"
    workdir.mkdir(parents=True, exist_ok=True)
    local = None if settings.kafka_bootstrap else LocalKafka(settings, progress=progress)
    started_kafka = local.start() if local else False
    if local:
        progress(
            f"kafka: {'started' if started_kafka else 'already running'} at {settings.bootstrap}"
        )
    for old in settings.mailbox_dir.glob("*.eml"):
        old.unlink()
    mailbox = Mailbox(settings.mailbox_dir, port=settings.mailbox_port)
    mailbox.start()
    where = settings.mailbox_dir
    progress(f"mailbox: plain SMTP on 127.0.0.1:{settings.mailbox_port}, files in {where}/")
    # Plain SMTP only for the local mailbox, and only because it is asked for here.
    worker = Worker(
        settings,
        workdir / "worker.log",
        HUB_SMTP_HOST="127.0.0.1",
        HUB_SMTP_PORT=str(settings.mailbox_port),
        HUB_SMTP_SECURITY="plain",
    ).start()
    try:
        progress(f"worker: starting (log in {worker.log})")
        worker.wait_ready(READY_TIMEOUT_S)
        progress(f"worker: ready; metrics at {worker.url('/metrics')}")
        count = _run_story(settings, workdir, progress)
        if count == 0:
            return 1
        if population > 0:
            _run_population(settings, worker, population, progress)
        if keep_running:
            progress("everything is running; publish more with `hub publish FILE`. Ctrl-C to stop.")
            _wait_for_interrupt()
        return 0
    finally:
        worker.stop()
        progress("worker: stopped")
        mailbox.stop()
        if local and started_kafka:
            local.stop()
            progress("kafka: stopped")


def _run_story(settings: Settings, workdir: Path, progress: Progress) -> int:
    run = uuid.uuid4().hex[:6]
    family = random.randrange(100_000)  # a fresh synthetic family each run
    records = demo_records(dt.datetime.now(dt.UTC).replace(microsecond=0), run, family)
    events = workdir / f"events-{run}.jsonl"
    events.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    registry = load_config(settings).registry
    items = prepare_file(events, registry, settings.agencies)
    # First what the agencies already know (who works with the children, where they live),
    # then -- once the hub has taken that in, as it would have long before -- what happens.
    setup, happenings = items[:STORY_SETUP], items[STORY_SETUP:]
    report = asyncio.run(publish_prepared(setup, settings, progress=progress))
    _wait_until_settled(settings)
    report2 = asyncio.run(publish_prepared(happenings, settings, progress=progress))
    for failed in (report.stopped, report2.stopped):
        if failed is not None:
            progress(f"publishing stopped at line {failed.line}: {failed.reason}")
            return 0
    progress(f"published {report.sent + report2.sent} events from {events}")
    asyncio.run(_send_garbage(settings))
    progress("published 1 unreadable message (it will be quarantined on hub.quarantine)")
    _wait_until_settled(settings)
    messages = _wait_for_mail(settings.mailbox_dir)
    progress(f"{len(messages)} alerts delivered to {settings.mailbox_dir}/:")
    for message in messages:
        progress(f"  to {message[RCPT_HEADER]:<45} {message['Subject']}  {message['Message-ID']}")
    return len(messages)


@dataclass(frozen=True)
class PopulationRun:
    """The demo's background population, and the ``hub simulate`` command that makes the
    very same records."""

    families: int
    first: int  # also the seed: families no earlier demo published
    start: dt.datetime

    @classmethod
    def fresh(cls, families: int) -> PopulationRun:
        first = random.randrange(150_000)
        return cls(families, first, dt.datetime.now(dt.UTC).replace(microsecond=0))

    @property
    def events(self) -> int:
        return self.families * 10

    def records(self) -> Iterator[dict[str, Any]]:
        population = Population(self.families, seed=self.first, first=self.first)
        return records(population, events=self.events, setup=True, start=self.start)

    def simulate_args(self) -> list[str]:
        return [
            "simulate",
            f"--families={self.families}",
            f"--events={self.events}",
            f"--seed={self.first}",
            f"--first={self.first}",
            f"--start={self.start.isoformat()}",
        ]


@dataclass(frozen=True)
class Tally:
    """What the worker and the mailbox have counted so far."""

    routed: float
    quarantined: float
    arrived: int


def follow_population(
    run: PopulationRun,
    publish_all: Callable[[], int],
    settled: Callable[[], bool],
    tally: Callable[[], Tally],
    progress: Progress,
) -> None:
    """Publish, wait until the hub has routed and delivered everything, then count: the
    counts are taken only once ``settled`` says so (consumed, ordered, routed, handed to
    the mailbox), never from a moment before."""
    before = tally()
    sent = publish_all()
    progress(
        f"published a synthetic population (hub {' '.join(run.simulate_args())}): {sent} events ..."
    )
    if not settled():
        progress("  the worker is still busy with them; see its metrics")
        return
    after = tally()
    routed = after.routed - before.routed
    arrived = after.arrived - before.arrived
    if arrived < routed:
        waiting = " (the others wait for a digest or working hours)"
    elif arrived > routed:
        waiting = " (with out-of-hours copies of URGENT alerts, and any escalations)"
    else:
        waiting = ""
    progress(
        f"  all {sent} routed: {routed:.0f} alerts, {arrived} emails arrived in the mailbox"
        f"{waiting}; {after.quarantined - before.quarantined:.0f} messages quarantined"
    )


def _run_population(settings: Settings, worker: Worker, families: int, progress: Progress) -> None:
    """Background traffic: a fresh synthetic population, as ``hub simulate`` makes it."""
    run = PopulationRun.fresh(families)
    registry = load_config(settings).registry

    def tally() -> Tally:
        exposition = worker.metrics()
        return Tally(
            metric_total(exposition, "hub_alerts_routed_total"),
            metric_total(exposition, "hub_quarantined_total"),
            len(list(settings.mailbox_dir.glob("*.eml"))),
        )

    follow_population(
        run,
        lambda: asyncio.run(publish(encoded(run.records(), registry), settings)),
        lambda: _wait_until_settled(settings, ARRIVAL_TIMEOUT_S),
        tally,
        progress,
    )


def _wait_until_settled(settings: Settings, timeout_s: float = 60.0) -> bool:
    """Whether, within ``timeout_s``, the worker has committed everything on its ingest,
    routing and alert topics and nothing waits in its reorder buffer: every event published
    before the call is routed, and every alert delivered or held for a digest (the delivery
    agent commits an alert once the mail server has taken it)."""
    names = TopicNames.from_settings(settings)
    topics = [*names.all_ingest, names.identity, names.alerts]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if asyncio.run(group_lag(settings, settings.app_id, topics)) == 0 and _nothing_waits(
            settings
        ):
            return True
        time.sleep(0.5)
    return False


def _nothing_waits(settings: Settings) -> bool:
    url = f"http://127.0.0.1:{settings.metrics_port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return False
    return metric_total(text, "hub_ordered_waiting") == 0


async def _send_garbage(settings: Settings) -> None:
    topic = TopicNames.from_settings(settings).ingest("northshire-police")
    await kafka_io.publish(
        settings, [kafka_io.Outgoing(topic, b"this is not an Avro message", b"demo")]
    )


def _wait_for_mail(folder: Path) -> list[Any]:
    deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
    count, changed = 0, time.monotonic()
    while time.monotonic() < deadline:
        now_count = len(list(folder.glob("*.eml")))
        if now_count != count:
            count, changed = now_count, time.monotonic()
        elif count and time.monotonic() - changed > QUIET_PERIOD_S:
            break
        time.sleep(0.25)
    return read_mailbox(folder)


def _wait_for_interrupt() -> None:
    try:
        signal.pause()
    except KeyboardInterrupt:
        return
