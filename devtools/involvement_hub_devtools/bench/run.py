"""``hub bench``: how fast the hub is against the limits of its own building blocks.

Every figure is measured in one run, on one broker, next to a raw baseline:

* ingest: a plain aiokafka consumer with fastavro decoding drains the ingest topics
  (baseline), two bare Faust stages do the least a stage does on the same events (one
  event a step, and batch-native), then a real ``hub worker`` routes them (identity, team,
  family, fan-out, policy, alerts); events per second, the ratios, CPU time per event and
  the Kafka messages per event, by topic (``bench_traffic``);
* delivery: alerts to a discarding SMTP server, by the worker (outbox, batching, a pool of
  connections) and by a plain aiosmtplib loop on one connection; emails per second and ratio;
* latency: events offered at a fixed rate for a while; for every alert, from the Kafka
  timestamp of its event to the mail server's acceptance; p50, p95, p99;
* memory and recovery: the worker's peak resident memory with the whole population in its
  tables, and the time from a restart to routing again (table recovery).

The results are printed as a table and written as JSON.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: TID251 - the baselines measure aiokafka itself
from involvement_hub.config import load_config
from involvement_hub.core.alerts import Alert
from involvement_hub.core.messages import AlertTopicMessage, DeliveryOutcome
from involvement_hub.core.model import LawfulBasis, Urgency
from involvement_hub.core.policy import ContentLevel, Link
from involvement_hub.delivery.message import build_message
from involvement_hub.delivery.smtp import plain_send_loop
from involvement_hub.errors import HubError
from involvement_hub.kafka import wire
from involvement_hub.kafka.admin import ensure_changelogs, ensure_topics, group_lag
from involvement_hub.kafka.client import client_options
from involvement_hub.kafka.topics import TopicNames
from involvement_hub.settings import Settings
from involvement_hub_producer import SchemaRegistry
from involvement_hub_producer.codec import decode_unchecked

from involvement_hub_devtools.bench import traffic as bench_traffic
from involvement_hub_devtools.localkafka import LocalKafka
from involvement_hub_devtools.population import Population
from involvement_hub_devtools.processes import Child, Worker, free_port, metric_total, wait_for_port
from involvement_hub_devtools.simulate import encoded, publish, records

Progress = Callable[[str], None]
# Issue 11's targets: against the raw baseline, and against the batch-native Faust stage
# (the most Faust allows a stage that writes a table for every event).
TARGETS = {
    "ingest_ratio": 0.05,
    "batch_ceiling_ratio": 0.5,
    "faust_ops_per_event": 4.0,
    "delivery_ratio": 0.9,
    "latency_p99_ms": 250.0,
    "rss_mib_at_1m_persons": 1024.0,
    "restart_to_routing_s_at_1m_persons": 60.0,
    # A stage on one partition cannot be spread over workers: its cap must be at least
    # this many times the hub's throughput target (issue 11, item 4).
    "single_partition_cap_to_target": 10.0,
    "failover_routing_s_at_1m_persons": 60.0,
}


@dataclass
class BenchOptions:
    families: int = 2000
    events: int = 20_000
    delivery_alerts: int = 3000
    latency_rate: float = 1000.0
    latency_seconds: float = 20.0
    seed: int = 1
    out: Path | None = None
    # of "ingest", "latency", "restart", "delivery", "state", "failover"
    skip: frozenset[str] = frozenset()
    state_persons: int = 20_000  # the large-state run: memory, recovery and restart
    failover_persons: int = 1_000_000  # two workers, the one routing killed (issue 11)


@dataclass
class Results:
    machine: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)


def _machine() -> dict[str, Any]:
    import os
    import platform

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


async def _drain_baseline(
    settings: Settings, registry: SchemaRegistry, topics: list[str], expected: int
) -> float:
    """A plain consumer decoding every message with fastavro; returns events per second."""
    consumer = AIOKafkaConsumer(
        *topics,
        **client_options(settings),
        group_id=f"bench-baseline-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=2000,
    )
    await consumer.start()
    try:
        seen = 0
        started: float | None = None
        while seen < expected:
            batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
            for messages in batch.values():
                if started is None and messages:
                    started = time.perf_counter()
                for message in messages:
                    decode_unchecked(message.value, registry)
                    seen += 1
        elapsed = time.perf_counter() - (started or time.perf_counter())
        return seen / elapsed if elapsed > 0 else 0.0
    finally:
        await consumer.stop()


def _every(progress: Progress, seconds: float = 10.0) -> Progress:
    """``progress``, passing on at most one line every ``seconds``."""
    said = time.monotonic()

    def say(text: str) -> None:
        nonlocal said
        if time.monotonic() - said >= seconds:
            said = time.monotonic()
            progress(f"  ... {text}")

    return say


def _wait_drained(
    settings: Settings, topics: list[str], progress: Progress, timeout: float = 3600
) -> float:
    """Seconds until the worker's group has committed everything in ``topics``."""
    started = time.monotonic()
    last = time.monotonic()
    quiet_since: float | None = None
    while time.monotonic() - started < timeout:
        lag = asyncio.run(group_lag(settings, settings.app_id, topics))
        if lag == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= 1.0:
                return quiet_since - started
        else:
            quiet_since = None
        if time.monotonic() - last >= 10:
            last = time.monotonic()
            progress(f"  ... {lag:,} messages still to process")
        # Each check opens admin and consumer connections: often enough to see the end
        # within a second, seldom enough not to compete with the worker being measured.
        time.sleep(1.0)
    raise TimeoutError("the worker did not drain its topics in time")


async def _read(settings: Settings, topic: str) -> list[Any]:
    from involvement_hub.kafka.io import read_all

    return await read_all(settings, topic)


def _deliveries(settings: Settings, since: float) -> list[tuple[float, float]]:
    """(ingested, accepted by the mail server), epoch seconds, of every alert delivered
    whose event was ingested after ``since``."""
    names = TopicNames.from_settings(settings)
    alerts = asyncio.run(_read(settings, names.alerts))
    outcomes = asyncio.run(_read(settings, names.delivery))
    ingested: dict[str, float] = {}
    for record in alerts:
        message = wire.loads(AlertTopicMessage, record.value)
        if isinstance(message, Alert):
            ingested[message.alert_id] = message.ingested_at.timestamp()
    delivered = []
    for record in outcomes:
        outcome = wire.loads(DeliveryOutcome, record.value)
        if (
            outcome.status == "SENT"
            and outcome.alert_id in ingested
            and ingested[outcome.alert_id] >= since
        ):
            delivered.append((ingested[outcome.alert_id], outcome.at.timestamp()))
    return delivered


def _latencies(settings: Settings, since: float) -> list[float]:
    """For each alert delivered after ``since`` (epoch s): seconds from ingest to SMTP 250."""
    return [sent - ingested for ingested, sent in _deliveries(settings, since)]


def _wait_routing(settings: Settings, since: float, timeout: float, progress: Progress) -> None:
    """Until the first alert of an event published after ``since`` is delivered."""
    started = time.monotonic()
    said = started
    while time.monotonic() - started < timeout and not _latencies(settings, since):
        if time.monotonic() - said >= 10:
            said = time.monotonic()
            progress(f"  ... no alert delivered yet ({said - started:.0f} s)")
        time.sleep(0.5)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _bench_alerts(count: int, now: dt.datetime) -> list[Alert]:
    """Alerts for 200 practitioners, as the routing stage would make them."""
    return [
        Alert(
            alert_id=f"bench{index:027d}",
            event_key=f"bench/{index}",
            created_at=now,
            recipient_id=f"northshire-social-care/BENCH-{index % 200:03d}",
            recipient_email=f"bench-{index % 200:03d}@social-care.northshire.example",
            recipient_name="Bench Practitioner",
            recipient_out_of_hours_phone=None,
            case_ref=f"CIN-{index:06d}",
            kind="SCHOOL_EXCLUSION",
            urgency=Urgency.PRIORITY,
            content_level=ContentLevel.REFERENCE,
            occurred_at=now,
            source_agency="oakfield-primary",
            link=Link.SELF,
            why="you are the lead practitioner for this child",
            rule_id="lead-practitioner",
            policy_version="bench",
            lawful_basis=LawfulBasis.PUBLIC_TASK,
            changes=(),
            team=(),
            ingested_at=now,
        )
        for index in range(count)
    ]


async def _produce_alerts(settings: Settings, alerts: list[Alert]) -> None:
    producer = AIOKafkaProducer(
        **client_options(settings), enable_idempotence=True, acks="all", linger_ms=5
    )
    await producer.start()
    try:
        topic = TopicNames.from_settings(settings).alerts
        futures = [
            await producer.send(
                topic, key=a.recipient_id.encode(), value=wire.dumps(a, AlertTopicMessage)
            )
            for a in alerts
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _delivery_rate(settings: Settings, prefix: str) -> tuple[int, float]:
    outcomes = [
        wire.loads(DeliveryOutcome, r.value)
        for r in asyncio.run(_read(settings, TopicNames.from_settings(settings).delivery))
    ]
    sent = [
        o.at.timestamp() for o in outcomes if o.status == "SENT" and o.alert_id.startswith(prefix)
    ]
    if len(sent) < 2:
        return len(sent), 0.0
    return len(sent), (len(sent) - 1) / (max(sent) - min(sent))


@dataclass
class _Run:
    settings: Settings
    options: BenchOptions
    registry: SchemaRegistry
    names: TopicNames
    population: Population
    workdir: Path
    progress: Progress
    figures: dict[str, Any]
    worker: Worker | None = None

    @property
    def routing_topics(self) -> list[str]:
        n = self.names
        return [*n.all_ingest, n.identity]

    def start_worker(self) -> Worker:
        self.worker = Worker(self.settings, self.workdir / "worker.log").start()
        return self.worker


def run_bench(settings: Settings, options: BenchOptions, progress: Progress) -> Results:
    results = Results(machine=_machine(), options={k: str(v) for k, v in asdict(options).items()})
    tag = uuid.uuid4().hex[:6]
    sink_port = free_port()
    settings = settings.replace(
        topic_prefix=f"bench-{tag}.",
        app_id=f"hub-bench-{tag}",
        metrics_port=free_port(),
        mailbox_port=sink_port,
        smtp_port=sink_port,
        smtp_host="127.0.0.1",
        smtp_security="plain",
        log_level="warning",
    )
    workdir = settings.state_dir / "bench" / tag
    workdir.mkdir(parents=True, exist_ok=True)
    local = None if settings.kafka_bootstrap else LocalKafka(settings, progress=progress)
    started_kafka = local.start() if local else False
    sink = Child(["mailbox", "--discard"], settings, workdir / "sink.log").start()
    run = _Run(
        settings,
        options,
        load_config(settings).registry,
        TopicNames.from_settings(settings),
        Population(options.families, seed=options.seed),
        workdir,
        progress,
        results.figures,
    )
    try:
        wait_for_port(settings.mailbox_port)
        asyncio.run(ensure_topics(settings))
        if "ingest" not in options.skip:
            _ingest(run)
        steps = (
            ("latency", _latency),
            ("restart", _restart),
            ("delivery", _delivery),
            ("state", _state),
            ("failover", _failover),
        )
        for name, step in steps:
            if name not in options.skip:
                step(run)
    finally:
        if run.worker is not None:
            run.worker.stop()
        sink.stop()
        if local is not None and started_kafka:
            local.stop()
    out = options.out or workdir / "results.json"
    out.write_text(json.dumps(asdict(results), indent=2))
    progress(f"results written to {out}")
    return results


def _ingest(run: _Run) -> None:
    f, say = run.figures, run.progress
    population = run.population
    hub_topics = (run.settings.topic_prefix, f"{run.settings.app_id}-")
    at_start = asyncio.run(bench_traffic.end_offsets(run.settings, hub_topics))
    say("population: generating and encoding ...")
    t0 = time.perf_counter()
    start = dt.datetime.now(dt.UTC)
    setup_and_events = records(population, events=run.options.events, setup=True, start=start)
    batch = list(encoded(setup_and_events, run.registry))
    families = [population.family(n) for n in range(population.families)]
    f["events_total"] = len(batch)
    f["persons"] = sum(len(x.adults) + len(x.children) for x in families)
    say(
        f"population: {population.families} families, {f['persons']} persons, {len(batch)} "
        f"events (generated and encoded in {time.perf_counter() - t0:.1f} s)"
    )
    say(f"publishing {len(batch):,} events with the agency producer ...")
    t0 = time.perf_counter()
    asyncio.run(publish(batch, run.settings, progress=_every(say)))
    f["publish_events_per_s"] = round(len(batch) / (time.perf_counter() - t0))
    say(f"published at {f['publish_events_per_s']:,}/s by the agency producer (acks=all)")

    topics = list(run.names.all_ingest)
    say("baseline: draining the ingest topics with aiokafka + fastavro ...")
    baseline = asyncio.run(_drain_baseline(run.settings, run.registry, topics, len(batch)))
    f["baseline_events_per_s"] = round(baseline)
    say(f"baseline (aiokafka + fastavro): {baseline:,.0f} events/s")
    _faust_ceiling(run, "per-event", len(batch), baseline)
    _faust_ceiling(run, "batch", len(batch), baseline)
    per_event, batched = f["faust_stage_events_per_s"], f["faust_batch_events_per_s"]
    f["faust_batch_to_per_event"] = round(batched / per_event, 2) if per_event else None

    at_worker_start = asyncio.run(bench_traffic.end_offsets(run.settings, hub_topics))
    say("hub: starting a worker on the same events ...")
    worker = run.start_worker()
    f["worker_first_ready_s"] = round(worker.wait_ready(progress=say), 1)
    ready_at = time.monotonic()
    cpu_at_ready = worker.cpu_seconds()
    at_ready = worker.metrics()
    consumed_at_ready = metric_total(at_ready, "hub_events_consumed_total")
    ordered_at_ready = metric_total(at_ready, "hub_ordered_cpu_seconds_total")
    say(f"  ready after {f['worker_first_ready_s']} s; routing ...")
    _wait_drained(run.settings, run.routing_topics, say)
    elapsed = time.monotonic() - ready_at
    measured = len(batch) - consumed_at_ready
    f["hub_cpu_ms_per_1000"] = _per_thousand(worker.cpu_seconds() - cpu_at_ready, measured)
    rate = measured / max(elapsed, 1e-9)
    f["hub_events_per_s"] = round(rate)
    f["hub_ratio"] = round(rate / baseline, 3) if baseline else None
    f["hub_to_batch_ceiling"] = round(rate / batched, 3) if batched else None
    routed = worker.metrics()
    f["alerts_routed"] = int(metric_total(routed, "hub_alerts_routed_total"))
    say(
        f"hub (ingest -> routed alerts): {rate:,.0f} events/s = {f['hub_ratio']} x baseline, "
        f"{f['hub_to_batch_ceiling']} x the batch-native Faust stage; "
        f"{_thousands(f['hub_cpu_ms_per_1000'])} CPU ms per 1,000 events"
    )
    ordered_s = metric_total(routed, "hub_ordered_cpu_seconds_total") - ordered_at_ready
    _single_partition_cap(f, ordered_s, measured, baseline)
    say(
        f"  the ordered stage alone (one partition): "
        f"{_thousands(f['ordered_cpu_ms_per_1000'])} CPU ms per 1,000 events, so at most "
        f"{_thousands(f['ordered_cap_events_per_s'])} events/s on one core = "
        f"{f['ordered_cap_to_target']} x the hub's target"
    )
    say("  delivering the routed alerts ...")
    _wait_drained(run.settings, [run.names.alerts], say)
    f["hub_cpu_ms_per_1000_with_delivery"] = _per_thousand(
        worker.cpu_seconds() - cpu_at_ready, measured
    )
    f["rss_mib"] = round(worker.peak_rss_bytes() / 2**20, 1)
    say(f"worker peak resident memory: {f['rss_mib']} MiB with {f['persons']} persons")
    at_end = asyncio.run(bench_traffic.end_offsets(run.settings, hub_topics))
    consumed = [*run.names.all_ingest, run.names.identity, run.names.alerts]
    traffic = bench_traffic.traffic(len(batch), at_start, at_worker_start, at_end, consumed)
    f["messages_per_event"] = {
        "produced": {t: round(n, 3) for t, n in traffic.produced.items()},
        "consumed": {t: round(n, 3) for t, n in traffic.consumed.items()},
    }
    f["faust_ops_per_event"] = round(traffic.operations, 2)
    say(f"Faust message operations per input event: {f['faust_ops_per_event']}")


def _single_partition_cap(
    f: dict[str, Any], cpu_seconds: float, events: float, baseline: float
) -> None:
    """The ordered stage's own cost, and the rate one core could give it at best: the cap
    on the whole hub, since no second worker can take a share of its one partition."""
    f["ordered_cpu_ms_per_1000"] = _per_thousand(cpu_seconds, events)
    per_event = cpu_seconds / events if events > 0 else 0.0
    cap = 1.0 / per_event if per_event > 0 else None
    f["ordered_cap_events_per_s"] = None if cap is None else round(cap)
    target = TARGETS["ingest_ratio"] * baseline
    f["ordered_cap_to_target"] = None if cap is None or not target else round(cap / target, 2)


def _filed_by_event(run: _Run, changelog: str, expected: int) -> bool:
    """Whether each partition of the ceiling's changelog got as many writes as the ingest
    topics have events in that partition: every write filed under its own event's."""
    ingest = asyncio.run(bench_traffic.partition_ends(run.settings, list(run.names.all_ingest)))
    deadline = time.monotonic() + 30
    # The report is written once the last event is handled; its writes may still be
    # in the producer's buffer.
    while True:
        written = asyncio.run(bench_traffic.partition_ends(run.settings, [changelog]))
        if sum(written.values()) >= expected or time.monotonic() > deadline:
            return written == ingest
        time.sleep(0.5)


def _per_thousand(cpu_seconds: float, events: float) -> int | None:
    """CPU milliseconds per 1,000 events."""
    return round(cpu_seconds * 1e6 / events) if events > 0 else None


def _thousands(value: float | None) -> str:
    return "-" if value is None else f"{value:,}"


# Figure names of the two Faust ceilings; "faust_stage" is the per-event one's of old.
_CEILING_FIGURES = {"per-event": "faust_stage", "batch": "faust_batch"}


def _faust_ceiling(run: _Run, mode: str, expected: int, baseline: float) -> None:
    """A bare Faust agent (decode, one table write, one send per event) on the same topics,
    one event a step (``per-event``) or batch-native (``batch``)."""
    f, say = run.figures, run.progress
    report = run.workdir / f"ceiling-{mode}.json"
    report.unlink(missing_ok=True)
    say(f"Faust stage, {mode}: decode, one table write and one send per event ...")
    child = Child(
        [mode, str(expected), str(report)],
        run.settings,
        run.workdir / f"ceiling-{mode}.log",
        module="involvement_hub_devtools.bench.ceiling",
    ).start()
    try:
        deadline = time.monotonic() + 1800
        said = time.monotonic()
        while not report.exists():
            if not child.alive():
                raise HubError(f"the Faust ceiling run ({mode}) exited; see {child.log}")
            if time.monotonic() > deadline:
                raise HubError(f"the Faust ceiling run ({mode}) took too long; see {child.log}")
            if time.monotonic() - said >= 10:
                said = time.monotonic()
                say(f"  ... still running ({said - child.started_at:.0f} s)")
            time.sleep(0.5)
        measured = json.loads(report.read_text())
        if "error" in measured:
            raise HubError(
                f"the Faust ceiling run ({mode}) failed: {measured['error']}; see {child.log}"
            )
        filed = _filed_by_event(run, measured["changelog"], expected)
    finally:
        child.stop()
    rate = float(measured["events_per_s"])
    name = _CEILING_FIGURES[mode]
    f[f"{name}_events_per_s"] = round(rate)
    f[f"{name}_ratio"] = round(rate / baseline, 3) if baseline else None
    f[f"{name}_cpu_ms_per_1000"] = _per_thousand(float(measured["cpu_s"]), expected)
    f[f"{name}_writes_on_event_partitions"] = filed
    if not filed:
        say(f"  WARNING: the {mode} stage filed table writes under other events' partitions")
    say(
        f"  {rate:,.0f} events/s = {f[f'{name}_ratio']} x baseline; "
        f"{_thousands(f[f'{name}_cpu_ms_per_1000'])} CPU ms per 1,000 events"
    )


def _latency(run: _Run) -> None:
    f, say, options = run.figures, run.progress, run.options
    if run.worker is None:
        run.start_worker().wait_ready(progress=say)
    since = time.time()
    count = int(options.latency_rate * options.latency_seconds)
    stream = list(encoded(run.population.events(count, dt.datetime.now(dt.UTC)), run.registry))
    say(f"latency: offering {count} events at {options.latency_rate:,.0f}/s ...")
    asyncio.run(publish(stream, run.settings, rate=options.latency_rate, progress=_every(say)))
    topics = [*run.routing_topics, run.names.alerts]
    f["latency_lag_at_end"] = asyncio.run(group_lag(run.settings, run.settings.app_id, topics))
    f["latency_drain_s"] = round(_wait_drained(run.settings, topics, say), 1)
    f["latency_kept_up"] = f["latency_drain_s"] <= KEPT_UP_S
    latencies = _latencies(run.settings, since)
    f["latency_alerts"] = len(latencies)
    for q in (0.5, 0.95, 0.99):
        f[f"latency_p{int(q * 100)}_ms"] = round(_percentile(latencies, q) * 1000, 1)
    say(
        f"latency over {len(latencies)} alerts: p50 {f['latency_p50_ms']} ms, "
        f"p95 {f['latency_p95_ms']} ms, p99 {f['latency_p99_ms']} ms; {_kept_up(f)}"
    )


# The worker kept up with the offered rate if it had everything routed and delivered
# within this long after the last event was offered.
KEPT_UP_S = 5.0


def _kept_up(f: dict[str, Any]) -> str:
    if f.get("latency_kept_up") is None:
        return ""
    if f["latency_kept_up"]:
        return f"kept up (all done {f['latency_drain_s']} s after the last event)"
    return (
        f"fell behind: {f['latency_lag_at_end']:,} messages unprocessed when the last event "
        f"was offered, done {f['latency_drain_s']} s later"
    )


def _restart(run: _Run) -> None:
    f, say = run.figures, run.progress
    say("restart: stopping the worker and starting it again ...")
    if run.worker is not None:
        run.worker.stop()
    worker = run.start_worker()
    f["restart_to_ready_s"] = round(worker.wait_ready(progress=say), 1)
    since = time.time()
    probe = list(encoded(run.population.events(50, dt.datetime.now(dt.UTC)), run.registry))
    asyncio.run(publish(probe, run.settings))
    _wait_routing(run.settings, since, 300, say)
    f["restart_to_routing_s"] = round(time.monotonic() - worker.started_at, 1)
    f["rss_after_recovery_mib"] = round(worker.peak_rss_bytes() / 2**20, 1)
    say(
        f"restart: ready after {f['restart_to_ready_s']} s, routing again after "
        f"{f['restart_to_routing_s']} s"
    )


def _delivery(run: _Run) -> None:
    f, say, settings = run.figures, run.progress, run.settings
    if run.worker is None:
        run.start_worker().wait_ready(progress=say)
    now = dt.datetime.now(dt.UTC)
    alerts = _bench_alerts(run.options.delivery_alerts, now)
    messages = [build_message(a, settings.mail_from, now) for a in alerts]
    say(f"delivery: {len(messages):,} emails by a plain aiosmtplib loop, then by the hub ...")
    seconds = asyncio.run(plain_send_loop("127.0.0.1", settings.mailbox_port, messages))
    plain = len(messages) / seconds
    f["plain_smtp_emails_per_s"] = round(plain)
    asyncio.run(_produce_alerts(settings, alerts))
    _wait_drained(settings, [run.names.alerts], say)
    sent, delivered = _delivery_rate(settings, "bench")
    f["hub_emails_per_s"] = round(delivered)
    f["delivery_ratio"] = round(delivered / plain, 3) if plain else None
    f["delivery_emails"] = sent
    ratio = f["delivery_ratio"]
    say(f"delivery: hub {delivered:,.0f}/s vs plain aiosmtplib {plain:,.0f}/s = {ratio} x")


def table(results: Results) -> str:
    """The figures as a fixed-width table; a measurement that was skipped says so."""
    f, t = results.figures, TARGETS
    rate = results.options.get("latency_rate")

    def num(key: str, unit: str) -> str:
        value = f.get(key)
        if value is None:
            return "skipped"
        return f"{value:,} {unit}" if isinstance(value, int) else f"{value} {unit}"

    latency = (
        "skipped"
        if f.get("latency_p99_ms") is None
        else f"{f['latency_p50_ms']} / {f['latency_p95_ms']} / {f['latency_p99_ms']} ms"
    )
    rows = [
        ("ingest, raw baseline (aiokafka + fastavro)", num("baseline_events_per_s", "ev/s"), ""),
        (
            "bare Faust stage, one event a step",
            num("faust_stage_events_per_s", "ev/s"),
            f"{f.get('faust_stage_ratio')} x baseline (decode, one table write, one send)",
        ),
        (
            "bare Faust stage, batch-native",
            num("faust_batch_events_per_s", "ev/s"),
            f"{f.get('faust_batch_ratio')} x baseline, "
            f"{f.get('faust_batch_to_per_event')} x one event a step",
        ),
        (
            "ingest -> routed alerts, the hub",
            num("hub_events_per_s", "ev/s"),
            f"{f.get('hub_ratio')} x baseline (target >= {t['ingest_ratio']})",
        ),
        (
            "the hub against the batch-native stage",
            num("hub_to_batch_ceiling", "x"),
            f"(target >= {t['batch_ceiling_ratio']})",
        ),
        (
            "Faust message operations per input event",
            num("faust_ops_per_event", "ops"),
            f"received + table writes + sent (target <= {t['faust_ops_per_event']:.0f})",
        ),
        (
            "CPU per 1,000 events, the hub's worker",
            num("hub_cpu_ms_per_1000", "ms"),
            f"routing; {_thousands(f.get('hub_cpu_ms_per_1000_with_delivery'))} ms with delivery",
        ),
        (
            "CPU per 1,000 events, the ordered stage",
            num("ordered_cpu_ms_per_1000", "ms"),
            f"one partition: at most {_thousands(f.get('ordered_cap_events_per_s'))} ev/s = "
            f"{f.get('ordered_cap_to_target')} x the hub's target "
            f"(target >= {t['single_partition_cap_to_target']:.0f})",
        ),
        (
            "CPU per 1,000 events, Faust one a step",
            num("faust_stage_cpu_ms_per_1000", "ms"),
            "",
        ),
        (
            "CPU per 1,000 events, Faust batch-native",
            num("faust_batch_cpu_ms_per_1000", "ms"),
            "",
        ),
        ("delivery, plain aiosmtplib loop", num("plain_smtp_emails_per_s", "mails/s"), ""),
        (
            "delivery, the hub",
            num("hub_emails_per_s", "mails/s"),
            f"{f.get('delivery_ratio')} x plain (target >= {t['delivery_ratio']})",
        ),
        (
            "end-to-end latency p50 / p95 / p99",
            latency,
            f"offered {rate} ev/s (target p99 <= {t['latency_p99_ms']:.0f} ms at 1000); "
            + _kept_up(f),
        ),
        (
            "worker peak memory, routing run",
            num("rss_mib", "MiB"),
            f"{f.get('persons', 0):,} persons",
        ),
        (
            "restart to routing, routing run",
            num("restart_to_routing_s", "s"),
            f"ready after {f.get('restart_to_ready_s')} s",
        ),
        (
            "failover to routing, 2 workers, kill -9",
            num("failover_routing_s", "s"),
            _failover_note(f),
        ),
        (
            "worker peak memory, large state",
            num("state_rss_mib", "MiB"),
            f"{f.get('state_persons', 0):,} persons, store {f.get('store', '-')}"
            " (target <= 1024 MiB at 1,000,000)",
        ),
        (
            "restart to routing, large state",
            num("state_restart_to_routing_s", "s"),
            f"ready after {f.get('state_restart_to_ready_s')} s (target <= 60 s at 1,000,000)",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    values = max(len(r[1]) for r in rows)
    lines = [
        f"{name:<{width}}  {value:>{values}}  {note if value != 'skipped' else ''}".rstrip()
        for name, value, note in rows
    ]
    return "\n".join([*lines, *_traffic_lines(f.get("messages_per_event"))])


def _failover_note(f: dict[str, Any]) -> str:
    from involvement_hub_devtools.bench.failover import verdict

    target = f"target <= {TARGETS['failover_routing_s_at_1m_persons']:.0f} s at 1,000,000"
    judged = verdict(f.get("failover_routing_s"), f.get("failover_persons") or 0)
    standby = (
        f"standby warm {f.get('failover_standby_warm_s')} s after start"
        if f.get("failover_standby_replicas", 1)
        else "no standby"
    )
    return (
        f"ready after {f.get('failover_to_ready_s')} s; {f.get('failover_persons') or 0:,} "
        f"persons, session timeout {f.get('failover_session_timeout_s')} s, {standby} "
        f"({target}" + (f": {judged})" if judged else ")")
    )


def _traffic_lines(messages: dict[str, dict[str, float]] | None) -> list[str]:
    """The hub's Kafka messages per input event, by topic and direction."""
    if not messages:
        return []
    width = max((len(topic) for counts in messages.values() for topic in counts), default=0)
    lines = ["", "Kafka messages per input event, the hub's ingest run:"]
    for direction in ("produced", "consumed"):
        counts = messages.get(direction, {})
        lines.append(f"  {direction} ({sum(counts.values()):.2f} in all)")
        lines += [f"    {topic:<{width}}  {count:>7.3f}" for topic, count in counts.items()]
    return lines


@dataclass
class _LargeState:
    """A large state written to the changelogs of an application of its own."""

    settings: Settings
    population: Population
    persons: int
    records: int


def _large_state(run: _Run, persons: int, name: str, **changes: Any) -> _LargeState:
    """About ``persons`` persons' tables built and written straight to the changelogs
    (``bench_state``), for an application id and topics of their own: a new consumer group
    on the earlier runs' topics would start by reprocessing all of them."""
    from involvement_hub_devtools.bench import state as bench_state

    say = run.progress
    families = max(1, round(persons / 3.6))
    population = Population(families, seed=run.options.seed + 1)
    settings = run.settings.replace(
        app_id=f"{run.settings.app_id}-{name}",
        topic_prefix=f"{run.settings.topic_prefix}{name}.",
        **changes,
    )
    asyncio.run(ensure_topics(settings))
    say(f"{name}: building {families} families' teams, families and identities ...")
    t0 = time.perf_counter()
    state = bench_state.build(
        population, run.registry, settings.pseudonym_key.reveal().encode(), say
    )
    count = bench_state.persons(state)
    asyncio.run(ensure_changelogs(settings))
    written = asyncio.run(bench_state.write(settings, state, say))
    took = time.perf_counter() - t0
    say(f"  {count:,} persons, {written:,} changelog records in {took:.0f} s")
    return _LargeState(settings, population, count, written)


def _failover(run: _Run) -> None:
    from involvement_hub_devtools.bench.failover import failover

    failover(run)


def _state(run: _Run) -> None:
    """Memory, first recovery and restart to routing with a large state (see bench_state)."""
    f, say = run.figures, run.progress
    if run.worker is not None:
        run.worker.stop()
    large = _large_state(run, run.options.state_persons, "state")
    settings, population = large.settings, large.population
    f["state_persons"] = large.persons
    f["state_changelog_records"] = large.records
    names = TopicNames.from_settings(settings)
    state_run = _Run(settings, run.options, run.registry, names, population, run.workdir, say, f)
    say("  starting a worker with an empty local store: it recovers the whole state ...")
    worker = state_run.start_worker()
    f["state_first_recovery_s"] = round(worker.wait_ready(timeout=3600, progress=say), 1)
    f["state_rss_mib"] = round(worker.peak_rss_bytes() / 2**20, 1)
    recovered, rss = f["state_first_recovery_s"], f["state_rss_mib"]
    say(f"  first start recovered in {recovered} s; peak memory {rss} MiB")
    say("  restarting it on its own local store ...")
    worker.stop()
    worker = state_run.start_worker()
    f["state_restart_to_ready_s"] = round(worker.wait_ready(timeout=3600, progress=say), 1)
    since = time.time()
    probe = list(encoded(population.events(50, dt.datetime.now(dt.UTC)), run.registry))
    asyncio.run(publish(probe, settings))
    _wait_routing(settings, since, 600, say)
    f["state_restart_to_routing_s"] = round(time.monotonic() - worker.started_at, 1)
    f["state_restart_rss_mib"] = round(worker.peak_rss_bytes() / 2**20, 1)
    f["store"] = settings.store
    say(
        f"  restart: ready after {f['state_restart_to_ready_s']} s, routing after "
        f"{f['state_restart_to_routing_s']} s; peak memory {f['state_restart_rss_mib']} MiB"
    )
    run.worker = worker
