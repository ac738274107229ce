"""``hub chaos``: the fault harness. Does the hub still send every email exactly once?

One seeded synthetic population is written once (``hub simulate``'s generator, a fixed
start time, so every scenario publishes the very same records) and published in file order
at a steady rate by the agency publisher. A fault-free **reference** run records which
emails the mail server accepted; then each fault gets a scenario of its own (topic prefix,
application id, mailbox, state folder, ports), the same population, and the fault:

- ``kill9``: the worker ``kill -9``ed at seeded random moments, restarted at once;
- ``sigterm``: the worker stopped with SIGTERM and restarted;
- ``broker``: the local broker ``kill -9``ed, then ``hub kafka start`` on its ports and data;
- ``smtp-down``: the mail server gone for minutes, then back;
- ``smtp-550``: the mail server refusing one practitioner with 550;
- ``hostile``: the population in batches compressed with each codec, and hostile records
  (a near-1 MB record, a null value, huge headers, garbage) on the ingest topics;
- ``replay``: once done, the worker's group rewound to the earliest offsets and run again;
- ``control``: no fault at all, a second reference: what differs here is the noise floor
  (routing that depends on timing), not the work of a fault.

Each scenario ends when it is quiet (see :meth:`Scenario.wait_quiet`) -- never after a
fixed sleep -- and the mail server's record is compared with the reference's
(``chaos_report``). Scenarios run side by side, except the broker fault, which runs alone
because it takes the broker from every scenario.

Out-of-hours copies of URGENT alerts depend on the clock: a run that straddles the start or
end of working hours can see extra or missing copies that are not the hub's fault.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import json
import logging
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from involvement_hub.cli.publish import Prepared, prepare_file
from involvement_hub.config import load_config
from involvement_hub.delivery.settings_files import load_plan
from involvement_hub.errors import ConfigError
from involvement_hub.kafka.admin import delete_topics
from involvement_hub.kafka.topics import TopicNames
from involvement_hub.settings import Settings

from involvement_hub_devtools.chaos import faults as chaos_faults
from involvement_hub_devtools.chaos.report import (
    Observed,
    Row,
    compare,
    fault_times,
    markdown_table,
    pick_refused_recipient,
    reference_row,
)
from involvement_hub_devtools.chaos.scenario import Scenario
from involvement_hub_devtools.localkafka import LocalKafka
from involvement_hub_devtools.population import Population
from involvement_hub_devtools.processes import free_port
from involvement_hub_devtools.simulate import publish, records, write_jsonl

Progress = Callable[[str], None]
Item = tuple[str, bytes, bytes]
FAULTS = ("control", "kill9", "sigterm", "broker", "smtp-down", "smtp-550", "hostile", "replay")
SHORT_FAULTS = ("control", "kill9", "sigterm", "hostile", "replay")
READY_TIMEOUT_S = 180.0
_KILL_CYCLE_S = 75.0  # a restart after kill -9 waits out the dead member's session (~60 s)


@dataclass(frozen=True)
class ChaosOptions:
    mode: str = "short"
    families: int = 20
    events_per_family: int = 10
    seed: int = 1
    rate: float = 15.0  # records per second: steady, so faults land mid-stream
    faults: tuple[str, ...] = SHORT_FAULTS
    worker_kills: int = 3
    sigterms: int = 1
    broker_kills: int = 0
    broker_down_s: float = 8.0
    smtp_down_s: float = 120.0
    # Long mode waits for the restarted worker to consume before the next kill -9, so every
    # kill hits a working worker; short mode kills at the drawn moments whatever the state.
    kill_when_ready: bool = False
    parallel: int = 5
    # From the end of publishing: a kill -9 alone costs a minute (the dead member's session).
    quiet_timeout_s: float = 150.0
    port_base: int | None = None
    json_path: Path | None = None


SHORT = ChaosOptions()
LONG = ChaosOptions(
    mode="long",
    families=200,
    rate=25.0,
    faults=FAULTS,
    events_per_family=15,
    worker_kills=10,
    sigterms=10,
    broker_kills=4,
    kill_when_ready=True,
    parallel=3,
    quiet_timeout_s=1800.0,
)


@dataclass
class _Plan:
    actions: list[tuple[float, str, Callable[[Scenario], None], bool]] = field(default_factory=list)
    after: list[Callable[[Scenario], None]] = field(default_factory=list)
    hostile: bool = False
    refuse: frozenset[str] = frozenset()
    rate: float | None = None  # records per second, if not the run's


@dataclass
class _Run:
    settings: Settings  # the caller's: the broker's ports and state folder
    options: ChaosOptions
    items: list[Item]
    workdir: Path
    tag: str
    say: Progress
    refused_recipient: str | None = None

    @property
    def publish_s(self) -> float:
        return len(self.items) / self.options.rate


def validate(options: ChaosOptions, settings: Settings) -> None:
    unknown = [f for f in options.faults if f not in FAULTS]
    if unknown:
        raise ConfigError(f"unknown fault(s) {', '.join(unknown)}; known: {', '.join(FAULTS)}")
    if "broker" in options.faults and settings.kafka_bootstrap:
        raise ConfigError("the broker fault needs the local broker (HUB_KAFKA_BOOTSTRAP is set)")
    if options.families < 1 or options.rate <= 0 or options.parallel < 1:
        raise ConfigError("--families, the rate and --parallel must be positive")


def _population(
    run_dir: Path, options: ChaosOptions, settings: Settings, say: Progress
) -> list[Item]:
    """Written once as JSON Lines, then read back as ``hub publish`` would read it."""
    path = run_dir / "population.jsonl"
    start = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    population = Population(options.families, seed=options.seed)
    events = options.families * options.events_per_family
    with path.open("w", encoding="utf-8") as out:
        write_jsonl(records(population, events=events, setup=True, start=start), out, say)
    prepared = prepare_file(path, load_config(settings).registry, settings.agencies)
    bad = [p for p in prepared if not isinstance(p, Prepared)]
    if bad:
        raise ConfigError(f"the generated population has bad lines: {bad[:3]}")
    return [(p.agency_id, p.key, p.value) for p in prepared if isinstance(p, Prepared)]


def _plan(fault: str, run: _Run) -> _Plan:
    o, window = run.options, run.publish_s
    plan = _Plan()
    if fault == "control":
        pass
    elif fault == "kill9":
        if o.kill_when_ready and o.worker_kills:
            # Each kill -9 costs the dead member's session (about a minute) before the next
            # worker consumes: publish slowly enough that every kill lands mid-stream.
            plan.rate = min(o.rate, len(run.items) / (o.worker_kills * _KILL_CYCLE_S))
            window = len(run.items) / plan.rate
        for t in fault_times(o.seed + 1, o.worker_kills, window, 2.0):
            plan.actions.append(
                (t, "worker kill -9", lambda s: s.signal_worker(signal.SIGKILL), o.kill_when_ready)
            )
    elif fault == "sigterm":
        for t in fault_times(o.seed + 2, o.sigterms, window, 2.0):
            plan.actions.append(
                (t, "worker SIGTERM", lambda s: s.signal_worker(signal.SIGTERM), True)
            )
    elif fault == "broker":
        for t in fault_times(o.seed + 3, o.broker_kills, window, o.broker_down_s + 10):
            plan.actions.append((t, "broker kill -9", lambda s: _broker_fault(s, run), True))
    elif fault == "smtp-down":
        plan.actions.append((window * 0.3, "SMTP down", lambda s: _smtp_down(s, run), False))
    elif fault == "smtp-550":
        if run.refused_recipient is None:
            raise ConfigError("the reference emailed nobody whose agency has an escalation contact")
        plan.refuse = frozenset({run.refused_recipient})
    elif fault == "hostile":
        plan.hostile = True
    elif fault == "replay":
        plan.after.append(lambda s: _replay(s, run))
    return plan


def _broker_fault(scenario: Scenario, run: _Run) -> None:
    pid = chaos_faults.kill_broker(run.settings)
    scenario.say(f"{scenario.name}: broker (pid {pid}) killed; down {run.options.broker_down_s} s")
    scenario.idle(run.options.broker_down_s)
    chaos_faults.start_broker(run.settings, scenario.workdir / "broker-start.log")
    scenario.disruptions += 1
    scenario.say(f"{scenario.name}: broker restarted")


def _smtp_down(scenario: Scenario, run: _Run) -> None:
    scenario.mailbox_down()
    scenario.idle(run.options.smtp_down_s)
    scenario.mailbox_up()
    scenario.say(f"{scenario.name}: SMTP back after {run.options.smtp_down_s:.0f} s")


def _replay(scenario: Scenario, run: _Run) -> None:
    scenario.wait_quiet(run.options.quiet_timeout_s, _stable_s(scenario.settings))
    before = scenario.email_count()
    scenario.worker.stop()
    rewound = asyncio.run(chaos_faults.rewind_group(scenario.settings, scenario.settings.app_id))
    scenario.say(f"{scenario.name}: {before} emails; group rewound on {rewound} partitions")
    scenario.start_worker()
    scenario.wait_ready(READY_TIMEOUT_S)


def _stable_s(settings: Settings) -> float:
    # The pending gauge is refreshed on the delivery tick: two ticks without a new email.
    return max(3.0, 2 * settings.delivery_tick_s)


async def _publish_hostile(items: list[Item], settings: Settings, run: _Run) -> None:
    """The population in slices, plain then each codec, with hostile records between."""
    codecs: list[str | None] = [None, *chaos_faults.COMPRESSIONS]
    size = -(-len(items) // len(codecs))
    hostile = chaos_faults.hostile_records(items[0][2], run.options.seed)
    names = TopicNames.from_settings(settings)
    for i, codec in enumerate(codecs):
        part = items[i * size : (i + 1) * size]
        await publish(part, settings, rate=run.options.rate, compression=codec, in_order=True)
        share = hostile[i :: len(codecs)]
        if share:
            topic = names.ingest(settings.agencies[i % len(settings.agencies)])
            await chaos_faults.send_hostile(settings, topic, share)


def _publish_all(scenario: Scenario, run: _Run, plan: _Plan) -> None:
    if plan.hostile:
        asyncio.run(_publish_hostile(run.items, scenario.settings, run))
    else:
        rate = plan.rate or run.options.rate
        agencies = sorted({agency for agency, _, _ in run.items})
        asyncio.run(
            publish(run.items, scenario.settings, rate=rate, agencies=agencies, in_order=True)
        )


def _scenario_settings(run: _Run, name: str, index: int) -> Settings:
    base = run.options.port_base
    metrics, smtp = (base + 2 * index, base + 2 * index + 1) if base else (free_port(), free_port())
    safe = name.replace("-", "")
    return run.settings.replace(
        topic_prefix=f"chaos-{run.tag}-{safe}.",
        app_id=f"hub-chaos-{run.tag}-{safe}",
        state_dir=run.workdir / name / "state",
        metrics_port=metrics,
        smtp_port=smtp,
        mailbox_port=smtp,
        smtp_host="127.0.0.1",
        smtp_security="plain",
        log_level="warning",
    )


def run_scenario(run: _Run, fault: str, index: int) -> Observed:
    try:
        plan = _plan(fault, run)
    except ConfigError as exc:
        run.say(f"{fault}: not run: {exc}")
        return Observed(fault, (), error=str(exc))
    settings = _scenario_settings(run, fault, index)
    scenario = Scenario(fault, settings, run.workdir / fault, run.say, plan.refuse)
    details: dict[str, object] = {}
    error: str | None = None
    started = time.monotonic()
    try:
        scenario.start(READY_TIMEOUT_S)
        rate = plan.rate or run.options.rate
        run.say(f"{fault}: worker ready; publishing {len(run.items)} records at {rate:.1f}/s")
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            publishing = pool.submit(_publish_all, scenario, run, plan)
            t0 = time.monotonic()
            for at, what, apply, needs_ready in sorted(plan.actions, key=lambda a: a[0]):
                scenario.idle(t0 + at - time.monotonic())
                if needs_ready:
                    scenario.wait_consuming(READY_TIMEOUT_S)
                run.say(f"{fault}: {what} at {time.monotonic() - t0:.0f} s")
                apply(scenario)
            while not publishing.done():
                scenario.idle(0.5)
            publishing.result()
        run.say(f"{fault}: published; waiting until quiet")
        for step in plan.after:
            step(scenario)
        scenario.wait_quiet(run.options.quiet_timeout_s, _stable_s(settings))
    except Exception as exc:  # a scenario's failure is its row's verdict, not the run's end
        error = f"{type(exc).__name__}: {exc}"
        run.say(f"{fault}: FAILED: {error}")
    finally:
        scenario.close()
        outcomes: dict[str, str] = {}
        try:
            outcomes = asyncio.run(chaos_faults.last_outcomes(settings))
            asyncio.run(delete_topics(settings))
        except Exception as exc:  # leftovers cost only broker space; say so and go on
            run.say(f"{fault}: could not delete its topics ({type(exc).__name__})")
    details.update(
        seconds=round(time.monotonic() - started, 1),
        exit_codes=scenario.unexpected_exits,
        kills_of_ready_worker=scenario.kills_of_ready_worker,
        log_errors=chaos_faults.logged_errors(scenario.log),
        log=str(scenario.log),
    )
    accepted = scenario.accepted()
    run.say(f"{fault}: done in {details['seconds']} s, {len(accepted)} emails accepted")
    return Observed(
        fault,
        accepted,
        crashes=scenario.crashes(),
        disruptions=scenario.disruptions,
        refused_recipient=next(iter(plan.refuse), None),
        error=error,
        details=details,
        outcomes=outcomes,
    )


def run_chaos(settings: Settings, options: ChaosOptions, progress: Progress) -> list[Row]:
    say = progress
    validate(options, settings)
    # The harness's own clients (publishers, lag checks) complain loudly and at length while
    # the broker is down on purpose; the scenario's verdict says what that cost.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    tag = uuid.uuid4().hex[:6]
    workdir = (settings.state_dir / "chaos" / tag).absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    local = None if settings.kafka_bootstrap else LocalKafka(settings, progress=say)
    started_kafka = False
    if local is not None and not local.status().answering:
        # Started by `hub kafka start`, not by this process, so a broker kill -9 leaves no
        # zombie child behind for the restart to mistake for a live broker.
        chaos_faults.start_broker(settings, workdir / "broker-start.log")
        started_kafka = True
    try:
        items = _population(workdir, options, settings, say)
        run = _Run(settings, options, items, workdir, tag, say)
        say(
            f"chaos {options.mode} {tag}: {options.families} families, {len(items)} records, "
            f"faults {', '.join(options.faults)}; work in {workdir}"
        )
        reference = run_scenario(run, "reference", 0)
        rows = [reference_row(reference)]
        if reference.error or not reference.accepted:
            say("the reference run failed or sent nothing: no comparison is possible")
            return _finish(rows, options, workdir, say)
        plan = load_plan(settings.subscriptions_dir)
        run.refused_recipient = pick_refused_recipient(reference.accepted, plan.contacts)
        together = [f for f in options.faults if f != "broker"]
        index = {f: i + 1 for i, f in enumerate(options.faults)}
        connections = settings.smtp_connections
        with concurrent.futures.ThreadPoolExecutor(options.parallel) as pool:
            observed = list(pool.map(lambda f: run_scenario(run, f, index[f]), together))
        if "broker" in options.faults:
            observed.append(run_scenario(run, "broker", index["broker"]))
        by_fault = {o.fault: o for o in observed}
        for fault in options.faults:
            rows.append(compare(reference.accepted, by_fault[fault], connections))
        return _finish(rows, options, workdir, say)
    finally:
        if local is not None and started_kafka:
            local.stop()


def _finish(rows: list[Row], options: ChaosOptions, workdir: Path, say: Progress) -> list[Row]:
    out = options.json_path or workdir / "chaos.json"
    document = {
        "options": asdict(options),
        "rows": [r.as_json() for r in rows],
        "met": all(r.met for r in rows),
    }
    out.write_text(json.dumps(document, indent=2, default=str))
    say(f"results written to {out}")
    return rows


def table(rows: list[Row]) -> str:
    return markdown_table(rows)


def options_for(mode: str, **changes: object) -> ChaosOptions:
    base = LONG if mode == "long" else SHORT
    return replace(base, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]
