"""Two workers in one consumer group: partitions move between them while records flow.

A second worker joins mid-stream (scale out); one of two is stopped with SIGTERM mid-stream
(scale in); and a worker that built the state hands all of it over (both moves in turn).
After each, what the mail server accepted is compared with what one fault-free worker sent
for the same records -- nothing missing, nothing extra, no ``Message-ID`` twice -- and
every record of every table changelog must sit on the partition its key belongs to: a
write filed under another partition is state the partition's next owner never sees.

The records are a seeded synthetic population (``hub simulate``'s generator), published in
order at a steady rate, encoded once for the module so every run publishes the same bytes:
alert ids, and so Message-IDs, depend on the records only (``chaos_report``). Working
hours span the whole week, so no out-of-hours copy depends on the clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import shutil
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: TID251 - tests write and read raw records
from aiokafka.admin import AIOKafkaAdminClient  # noqa: TID251 - tests write and read raw records
from aiokafka.partitioner import murmur2  # noqa: TID251 - tests write and read raw records
from involvement_hub.config import load_config
from involvement_hub.core.alerts import Alert
from involvement_hub.core.delivery_plan import Mode, Preference
from involvement_hub.core.digest import DigestBox
from involvement_hub.core.messages import AlertTopicMessage
from involvement_hub.core.outbox import OutboxEntry
from involvement_hub.core.schedule import Due
from involvement_hub.delivery.settings_files import write_preferences
from involvement_hub.kafka import wire
from involvement_hub.kafka.admin import delete_topics, partitions_of
from involvement_hub.kafka.client import client_options
from involvement_hub.kafka.io import read_all
from involvement_hub.kafka.topics import TopicNames, state_changelog
from involvement_hub.settings import Settings
from involvement_hub_devtools.chaos.faults import last_outcomes
from involvement_hub_devtools.chaos.report import Accepted, Observed, Row, compare
from involvement_hub_devtools.mailbox import RCPT_HEADER, Mailbox, read_mailbox
from involvement_hub_devtools.population import Population
from involvement_hub_devtools.processes import free_port, metric_total
from involvement_hub_devtools.simulate import encoded, publish, records
from support import REPO
from support.records import involvement, life_event, person, practitioner
from support.topics import consumed_topics, publish_records
from support.worker import WorkerProcess, isolated_settings

# Its module fixtures are costly: under xdist the module runs in one process.
pytestmark = pytest.mark.xdist_group("rebalance")

PARTITIONS = 4
FAMILIES = 10
EVENTS = 60  # with the setup records, 110 records; 32 emails, and some alerts held
SEED = 7
RATE = 6.0  # records per second: the stream lasts long enough for a worker to join in it
REFERENCE_RATE = 20.0
# Retries and the ticker (which also refreshes the gauges read here) made quick.
QUICK = {"HUB_DELIVERY_TICK_S": "0.5", "HUB_RETRY_BASE_S": "1", "HUB_RETRY_CAP_S": "2"}
STABLE_S = 3.0  # quiet must hold this long: six ticks, two retries, were one due
QUIET_TIMEOUT_S = 90.0
TABLES = ("outbox", "delivery-due", "digests")
LONDON = ZoneInfo("Europe/London")  # the delivery plan's time zone
_LAG_LINE = re.compile(r'^hub_consumer_lag_messages\{partition="(\d+)",topic="([^"]+)"\}')

Item = tuple[str, bytes, bytes]


# -- the records, the mail settings and the fault-free reference ------------------------------


@pytest.fixture(scope="module")
def subscriptions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped subscriptions, with working hours all week: no out-of-hours copies."""
    folder = tmp_path_factory.mktemp("subscriptions")
    shutil.rmtree(folder)
    shutil.copytree(REPO / "subscriptions", folder)
    path = folder / "delivery.toml"
    text, replaced = re.subn(
        r"(?m)^\[working_hours\]\n(?:[a-z]+ *=.*\n)+",
        '[working_hours]\nstart = "00:00"\nend = "23:59:59"\n'
        'days = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]\n',
        path.read_text(),
    )
    assert replaced == 1, "subscriptions/delivery.toml has no [working_hours] table to widen"
    path.write_text(text)
    # The schools' safeguarding leads take routine alerts in a daily digest whose window
    # closes in 23 hours: held, so the digests table has state to move, and never sent here.
    closes = (dt.datetime.now(LONDON) - dt.timedelta(hours=1)).replace(second=0, microsecond=0)
    population = Population(FAMILIES, seed=SEED)
    daily = {
        recipient: Preference(Mode.DAILY, closes.time())
        for n in range(FAMILIES)
        for recipient in population.family(n).practitioners
        if "/DSL-" in recipient
    }
    assert daily, "the population has no school safeguarding lead"
    write_preferences(folder, daily)
    return folder


@pytest.fixture(scope="module")
def stream() -> list[Item]:
    """The population's records, encoded as its agencies would send them."""
    start = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    population = Population(FAMILIES, seed=SEED)
    settings = Settings(
        policy_file=REPO / "governance" / "policy.toml", subscriptions_dir=REPO / "subscriptions"
    )
    registry = load_config(settings).registry
    return list(encoded(records(population, events=EVENTS, setup=True, start=start), registry))


def worker_env(subscriptions: Path) -> dict[str, str]:
    return {"HUB_SUBSCRIPTIONS_DIR": str(subscriptions), **QUICK}


@pytest.fixture(scope="module")
def reference(
    kafka_bootstrap: str,
    stream: list[Item],
    subscriptions: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Accepted, ...]:
    """What one worker, undisturbed, has the mail server accept for the stream."""
    folder = tmp_path_factory.mktemp("reference")
    tag = uuid.uuid4().hex[:10]
    settings = isolated_settings(kafka_bootstrap, folder, tag, partitions=PARTITIONS).replace(
        instance_id=f"hub-test-{tag}-a"
    )
    worker = WorkerProcess(settings, folder / "worker.log")
    try:
        with Mailbox(settings.mailbox_dir, port=settings.mailbox_port):
            worker.start(**worker_env(subscriptions))
            asyncio.run(publish_stream(stream, settings, REFERENCE_RATE))
            asyncio.run(wait_quiet(settings, [worker]))
        accepted = mail_accepted(settings)
        assert accepted, f"the reference run sent nothing:\n{worker.log_tail()}"
        return accepted
    finally:
        worker.stop()
        asyncio.run(delete_topics(settings))


# -- the two workers --------------------------------------------------------------------


@pytest.fixture
def hub_settings(hub_settings: Settings) -> Settings:
    """The test's settings with more partitions to move, and the first worker's own id."""
    return hub_settings.replace(partitions=PARTITIONS, instance_id=f"{hub_settings.app_id}-a")


@pytest.fixture
def second(hub_settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    """Another worker of the same application (same app id, so the same consumer group),
    with an instance id, metrics port and state folder of its own; not yet started."""
    settings = hub_settings.replace(
        instance_id=f"{hub_settings.app_id}-b",
        metrics_port=free_port(),
        state_dir=tmp_path / "second" / "state",
    )
    process = WorkerProcess(settings, tmp_path / "worker-b.log")
    try:
        yield process
    finally:
        process.stop()


def assigned(worker: WorkerProcess) -> set[tuple[str, int]]:
    """The consumed partitions this worker holds, as its lag gauges say (refreshed on
    every tick; a partition a rebalance took away loses its gauge)."""
    held = set()
    for line in worker.metrics().splitlines():
        found = _LAG_LINE.match(line)
        if found:
            held.add((found.group(2), int(found.group(1))))
    return held


def consumed_partitions(settings: Settings) -> set[tuple[str, int]]:
    names = TopicNames.from_settings(settings)
    keyed = [*names.all_ingest, names.alerts]
    return {(t, p) for t in keyed for p in range(settings.partitions)} | {(names.identity, 0)}


async def wait_settled(
    settings: Settings,
    workers: Sequence[WorkerProcess],
    timeout: float = 90.0,  # noqa: ASYNC109
) -> list[set[tuple[str, int]]]:
    """Until ``workers`` hold every consumed partition between them, each once, each worker
    some, and all of them are ready (recovered, not rebalancing); what each holds."""
    wanted = consumed_partitions(settings)
    deadline = time.monotonic() + timeout
    held: list[set[tuple[str, int]]] = []
    while time.monotonic() < deadline:
        held = [await asyncio.to_thread(assigned, w) for w in workers]
        whole = set().union(*held) == wanted and sum(map(len, held)) == len(wanted)
        if whole and all(held) and all(w.probe("/readyz") == 200 for w in workers):
            return held
        await asyncio.sleep(0.3)
    shares = [sorted(h) for h in held]
    pytest.fail(f"partitions not settled between the workers in {timeout:.0f}s: {shares}")


def describe(settings: Settings, held: set[tuple[str, int]]) -> str:
    """Which partitions of which of the hub's topics ``held`` has, briefly."""
    names = TopicNames.from_settings(settings)
    kinds = {names.identity: "identity", names.alerts: "alerts"}
    by_kind: dict[str, set[int]] = {}
    for topic, partition in held:
        by_kind.setdefault(kinds.get(topic, "ingest"), set()).add(partition)
    return ", ".join(f"{kind} {sorted(p)}" for kind, p in sorted(by_kind.items()))


def owner_of_identity(settings: Settings, held: Sequence[set[tuple[str, int]]]) -> int:
    identity = (TopicNames.from_settings(settings).identity, 0)
    (owner,) = [i for i, h in enumerate(held) if identity in h]
    return owner


def email_count(settings: Settings) -> int:
    folder = settings.mailbox_dir
    return sum(1 for _ in folder.glob("*.eml")) if folder.is_dir() else 0


def mail_accepted(settings: Settings) -> tuple[Accepted, ...]:
    """The mail server's own record: one entry per message it accepted."""
    return tuple(
        Accepted(str(m["Message-ID"]).strip(), str(m[RCPT_HEADER]).strip())
        for m in read_mailbox(settings.mailbox_dir)
    )


class GroupLag:
    """How far the worker group's committed offsets are behind the ends of the topics it
    consumes, partition by partition; its clients stay open between readings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.admin = AIOKafkaAdminClient(**client_options(settings))
        self.consumer = AIOKafkaConsumer(**client_options(settings), group_id=None)
        self.partitions: list[TopicPartition] = []

    async def __aenter__(self) -> GroupLag:
        await self.admin.start()
        await self.consumer.start()
        self.partitions = await partitions_of(self.settings, consumed_topics(self.settings))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def behind(self) -> dict[TopicPartition, tuple[int | None, int]]:
        """Each partition not committed to its end: (committed offset or None, end)."""
        committed = await self.admin.list_consumer_group_offsets(self.settings.app_id)
        ends = await self.consumer.end_offsets(self.partitions)
        done = {tp: meta.offset for tp, meta in committed.items() if meta.offset >= 0}
        return {tp: (done.get(tp), end) for tp, end in ends.items() if done.get(tp, 0) < end}


async def wait_quiet(
    settings: Settings,
    workers: Sequence[WorkerProcess],
    expected: int = 0,
    timeout: float = QUIET_TIMEOUT_S,  # noqa: ASYNC109
) -> None:
    """Until every consumed message is committed, the ordered stage's reorder buffer is
    empty and at least ``expected`` emails arrived; then until STABLE_S pass with no new
    email and nothing uncommitted on the ingest topics and hub.alerts, where a retry, or
    an alert read a second time, would show. (The identity topic may move meanwhile: each
    worker sends it a watermark now and then, which decides nothing.)"""
    names = TopicNames.from_settings(settings)
    identity = (names.identity, 0)
    deadline = time.monotonic() + timeout
    since: float | None = None
    last = -1
    state = ""
    async with GroupLag(settings) as lag:
        while time.monotonic() < deadline:
            behind = await lag.behind()
            # The gauge of the worker that holds the ordered stage; another's may be stale.
            waiting = [
                metric_total(w.metrics(), "hub_ordered_waiting")
                for w in workers
                if identity in await asyncio.to_thread(assigned, w)
            ]
            count = email_count(settings)
            state = f"behind {sorted(behind.items())}, waiting {waiting}, {count} emails"
            work = [tp for tp in behind if tp.topic != names.identity]
            if since is None:
                if not behind and waiting == [0.0] and count >= expected:
                    since, last = time.monotonic(), count
            elif work or count != last:
                since = None
            elif time.monotonic() - since >= STABLE_S:
                return
            await asyncio.sleep(0.2)
    logs = "\n".join(w.log_tail(30) for w in workers)
    pytest.fail(f"not quiet in {timeout:.0f}s ({state}; {expected} expected):\n{logs}")


async def publish_stream(items: Sequence[Item], settings: Settings, rate: float) -> None:
    agencies = sorted({agency for agency, _, _ in items})
    await publish(items, settings, rate=rate, agencies=agencies, in_order=True)


def verdict(reference: Sequence[Accepted], settings: Settings, fault: str) -> Row:
    return compare(reference, Observed(fault, mail_accepted(settings)), connections=0)


def assert_same_mail(row: Row) -> None:
    """Every email of the reference arrived, once, and nothing else did."""
    assert (row.missing, row.extra, row.duplicates) == (0, 0, 0), (
        f"{row.fault}: {row.received} emails against {row.reference} in the reference; "
        f"missing {list(row.missing_ids)}, extra {list(row.extra_ids)}, "
        f"{row.duplicates} duplicate(s)"
    )


# -- where table state is filed ---------------------------------------------------------------


def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2 of the key) gives ``key``."""
    return (murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % partitions


async def misfiled(settings: Settings) -> tuple[list[str], dict[str, set[int]]]:
    """Table changelog records not on the partition their key belongs to; and the
    partitions each table's changelog has records on.

    The delivery tables live with ``hub.alerts``, which is keyed by recipient: an outbox or
    due entry (keyed by alert or digest id) and a digest box (keyed by recipient) belong on
    the partition of their recipient. A deletion names no recipient; it belongs where the
    key's values are, or where the alert of that id was put on ``hub.alerts``."""
    names = TopicNames.from_settings(settings)
    n = settings.partitions
    problems: list[str] = []
    recipient_of: dict[str, str] = {}
    for record in await read_all(settings, names.alerts):
        recipient = record.key.decode()
        if record.partition != partition_for(recipient, n):
            problems.append(f"hub.alerts: {recipient} on {record.partition}: not murmur2")
        message = wire.loads(AlertTopicMessage, record.value)
        if isinstance(message, Alert):
            recipient_of[message.alert_id] = message.recipient_id
    decoders = {"outbox": OutboxEntry, "delivery-due": Due, "digests": DigestBox}
    used: dict[str, set[int]] = {}
    for table in TABLES:
        topic = f"{settings.app_id}-{table}-changelog"
        changelog = await read_all(settings, topic)
        known = dict(recipient_of)
        for record in changelog:
            if record.value is not None:
                value = wire.loads(decoders[table], record.value)
                known[json.loads(record.key)] = value.recipient_id
        used[table] = {r.partition for r in changelog}
        for record in changelog:
            key = json.loads(record.key)
            recipient = known.get(key)
            if recipient is None:
                problems.append(f"{table}: {key} on {record.partition}, no recipient known")
            elif record.partition != partition_for(recipient, n):
                want = partition_for(recipient, n)
                what = "deletion" if record.value is None else "write"
                problems.append(
                    f"{table}: {what} of {key} (recipient {recipient}) on partition "
                    f"{record.partition}, belongs on {want}"
                )
    state = await partitions_of(settings, [state_changelog(settings)])
    if len(state) != 1:
        problems.append(f"hub-state's changelog has {len(state)} partitions, not 1")
    used["hub-state"] = {tp.partition for tp in state}
    return problems, used


async def assert_filed_correctly(settings: Settings, *, held: bool = True) -> None:
    problems, used = await misfiled(settings)
    assert not problems, "\n".join(problems[:20])
    # Not vacuous: the outbox has entries on more than one partition, and so on.
    assert len(used["outbox"]) > 1, used
    # delivery-due holds only retries now (a first attempt writes nothing before it), and
    # these runs have none: nothing there to misfile.
    assert bool(used["digests"]) == held, used


# -- the tests ------------------------------------------------------------------------------


@pytest.mark.timeout(240)
async def test_a_worker_joining_mid_stream_loses_and_repeats_no_email(
    worker: WorkerProcess,
    second: WorkerProcess,
    mailbox: Mailbox,
    stream: list[Item],
    subscriptions: Path,
    reference: tuple[Accepted, ...],
) -> None:
    """Scale out: one worker routes and delivers; a second joins the group while records
    still flow and takes partitions over, the ordered stage's or not, as Faust assigns."""
    settings = worker.settings
    env = worker_env(subscriptions)
    await asyncio.to_thread(worker.start, **env)
    (alone,) = await wait_settled(settings, [worker])

    quarter = len(stream) // 4
    await publish_stream(stream[:quarter], settings, RATE)
    joining = asyncio.create_task(asyncio.to_thread(second.start, **env))
    await publish_stream(stream[quarter : 3 * quarter], settings, RATE)
    await joining  # the last quarter is published once the second worker holds partitions
    publishing = asyncio.create_task(publish_stream(stream[3 * quarter :], settings, RATE))
    held = await wait_settled(settings, [worker, second])
    await publishing
    print(f"moved to the second worker: {describe(settings, held[1])}")
    assert alone == consumed_partitions(settings)
    assert held[1], "the second worker took nothing over"

    await wait_quiet(settings, [worker, second], expected=len(reference))
    assert_same_mail(verdict(reference, settings, "scale-out"))
    await assert_filed_correctly(settings)
    sent_by = [metric_total(w.metrics(), "hub_emails_sent_total") for w in (worker, second)]
    print(f"emails sent by each worker: {sent_by}")


@pytest.mark.timeout(240)
async def test_a_worker_stopped_mid_stream_hands_over_without_loss_or_repeat(
    worker: WorkerProcess,
    second: WorkerProcess,
    mailbox: Mailbox,
    stream: list[Item],
    subscriptions: Path,
    reference: tuple[Accepted, ...],
) -> None:
    """Scale in: two workers share the partitions; the one running the ordered stage is
    stopped with SIGTERM while records flow, and the other takes everything over."""
    settings = worker.settings
    env = worker_env(subscriptions)
    await asyncio.to_thread(worker.start, **env)
    await asyncio.to_thread(second.start, **env)
    workers = [worker, second]
    held = await wait_settled(settings, workers)
    leaving = workers[owner_of_identity(settings, held)]
    staying = workers[1 - owner_of_identity(settings, held)]

    third = len(stream) // 3
    await publish_stream(stream[:third], settings, RATE)
    publishing = asyncio.create_task(publish_stream(stream[third:], settings, RATE))
    assert leaving.process is not None
    leaving.process.send_signal(signal.SIGTERM)
    await asyncio.to_thread(leaving.process.wait, 60)
    assert leaving.process.returncode == 0, leaving.log_tail()
    (everything,) = await wait_settled(settings, [staying])
    await publishing
    assert everything == consumed_partitions(settings)

    await wait_quiet(settings, [staying], expected=len(reference))
    assert_same_mail(verdict(reference, settings, "scale-in"))
    await assert_filed_correctly(settings)


# -- state built before the moves, used after them -------------------------------------------

SOCIAL_CARE = "northshire-social-care"
SCHOOL = "oakfield-primary"
POLICE = "northshire-police"
CASES = 6


def lead(n: int) -> dict[str, Any]:
    return practitioner(f"SW-{n}", f"Lead {n}", "social-care.northshire")


def safeguarding_lead(n: int) -> dict[str, Any]:
    return practitioner(f"DSL-{n}", f"Safeguarding {n}", SCHOOL, "designated safeguarding lead")


def team_of(n: int) -> list[dict[str, Any]]:
    """Child ``n``'s team: a social care lead, then the school (the lead hears of it)."""
    child = person(500 + n)
    return [
        involvement(SOCIAL_CARE, f"CIN-{n}", child, lead(n), involvement_id=f"SC-{n}", lead=True),
        involvement(
            SCHOOL,
            f"PUP-{n}",
            child,
            safeguarding_lead(n),
            involvement_id=f"SCH-{n}",
            category="EDUCATION",
        ),
    ]


def missing(n: int) -> dict[str, Any]:
    """The police report the child missing, knowing it only by the UPN the school gave."""
    child = person(500 + n)
    known_by = {**child, "identifiers": [i for i in child["identifiers"] if i["scheme"] == "upn"]}
    return life_event(POLICE, f"INC-{n}", known_by, "MISSING_EPISODE", urgency="URGENT")


async def alerts_on_topic(settings: Settings) -> list[Alert]:
    names = TopicNames.from_settings(settings)
    messages = [
        wire.loads(AlertTopicMessage, r.value) for r in await read_all(settings, names.alerts)
    ]
    return [m for m in messages if isinstance(m, Alert)]


@pytest.mark.timeout(240)
async def test_state_built_before_the_moves_is_used_after_them(
    worker: WorkerProcess,
    second: WorkerProcess,
    mailbox: Mailbox,
    subscriptions: Path,
) -> None:
    """One worker builds the teams and sends their alerts; a second joins, then the first
    is stopped, so every partition -- the ordered stage's and every outbox's -- has moved
    to a worker that never saw the records. An event about each child, naming it by one
    identifier only, still reaches its lead and its school; the alerts of the first worker,
    routed again, are recognised as sent and not emailed twice."""
    settings = worker.settings
    env = worker_env(subscriptions)
    await asyncio.to_thread(worker.start, **env)
    teams = [record for n in range(CASES) for record in team_of(n)]
    # Leads first, then schools: the hub's order is the order records reach Kafka.
    report = await publish_records(settings, teams[0::2] + teams[1::2])
    assert report.ok
    await wait_quiet(settings, [worker], expected=CASES)
    built = await alerts_on_topic(settings)
    assert sorted((a.recipient_id, a.kind) for a in built) == sorted(
        (f"{SOCIAL_CARE}/SW-{n}", "INVOLVEMENT_STARTED") for n in range(CASES)
    )

    await asyncio.to_thread(second.start, **env)
    await wait_settled(settings, [worker, second])
    assert worker.process is not None
    worker.process.send_signal(signal.SIGTERM)
    await asyncio.to_thread(worker.process.wait, 60)
    (everything,) = await wait_settled(settings, [second])
    assert everything == consumed_partitions(settings)

    # New events, and the schools' records once more (an agency sending a record twice).
    report = await publish_records(settings, [missing(n) for n in range(CASES)] + teams[1::2])
    assert report.ok
    await wait_quiet(settings, [second], expected=3 * CASES)

    routed = await alerts_on_topic(settings)
    after = [a for a in routed if a.kind == "MISSING_EPISODE" and a.copy_of is None]
    assert sorted((a.recipient_id, a.case_ref) for a in after) == sorted(
        [(f"{SOCIAL_CARE}/SW-{n}", f"CIN-{n}") for n in range(CASES)]
        + [(f"{SCHOOL}/DSL-{n}", f"PUP-{n}") for n in range(CASES)]
    )
    emails = Counter(a.message_id for a in mail_accepted(settings))
    alert_ids = {a.alert_id for a in built + after}
    assert set(emails) == {f"<{i}@hub.invalid>" for i in alert_ids}
    assert set(emails.values()) == {1}, f"sent twice: {[m for m, c in emails.items() if c > 1]}"
    # The first worker's alerts came round again and were found sent in the moved outbox.
    outcomes = await last_outcomes(settings)
    assert {outcomes.get(a.alert_id) for a in built} == {"DUPLICATE"}
    await assert_filed_correctly(settings, held=False)
