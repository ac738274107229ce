"""The hub as a Faust application: five agents over the hub's topics and tables.

    ingest.<agency> --ingest--> hub.identity --resolver--> hub.person --person--> hub.alerts
         |                      (1 partition)   |   |   ^      |   |  ^              |
         v                                      |   v   |      |   v  |          --delivery--> SMTP
    hub.quarantine                hub.identity.log  fan-out,   | hub.household     |
                                                    edges,     v  --household--    v
                                                    merges  hub.audit         hub.delivery

Each agent runs with ``concurrency=1`` and handles one event at a time: Faust writes a
table change to the changelog partition of the *current* event, so batching several
events per step would file state under the wrong partition (and faust-streaming #606 can
commit past in-flight events when concurrency > 1). Delivery is the one exception: it
takes a batch, sends to different recipients at once, and makes each alert the current
event while it is handled (``as_current``). No exception escapes an agent: an
unexpected one is counted, logged without payload, and the message quarantined. Nothing
the hub produces can be refused by its producer outside a handler either: every output
and table write is measured first (``limits``), and a quarantine note never copies more
than the caps allow (``quarantine_note``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import functools
import importlib.metadata
import logging
import platform
import random
import socket
import time
import traceback
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence, Set
from typing import Any

import faust  # noqa: TID251 - the streaming package is the faust seam
import faust.streams  # noqa: TID251

from involvement_hub.config import HubConfig
from involvement_hub.core.alerts import Alert
from involvement_hub.core.digest import DigestBox
from involvement_hub.core.family import PersonState
from involvement_hub.core.household import HouseholdState
from involvement_hub.core.matching import MatchCandidate, Profile
from involvement_hub.core.messages import (
    AlertTopicMessage,
    DigestDue,
    Forwarded,
    IdentityMessage,
    RetryNudge,
    ToResolve,
    Watermark,
)
from involvement_hub.core.ordered import (
    GO_ON,
    Codec,
    JournalEntry,
    Outputs,
    Prefixed,
    StepResult,
    compute_entries,
    fitting_entry,
    handle_batch,
    journal_key,
    waiting_count,
)
from involvement_hub.core.ordered import Settings as StepSettings
from involvement_hub.core.outbox import Backoff, OutboxEntry
from involvement_hub.core.person_stage import Context
from involvement_hub.core.resolver import IdentityLogRecord, MergeRecord
from involvement_hub.delivery.mailer import Mailer
from involvement_hub.delivery.service import Deliverer, Due, Stores, handle
from involvement_hub.delivery.settings_files import PlanSource
from involvement_hub.errors import OversizeMessage
from involvement_hub.kafka import wire
from involvement_hub.kafka.client import ssl_context
from involvement_hub.kafka.quarantine_note import (
    UNREADABLE_BATCH,
    Source,
    note_for,
    unreadable_note,
)
from involvement_hub.kafka.topics import STATE_TABLE, TopicNames
from involvement_hub.limits import PRODUCE_LIMIT_BYTES, check_fits
from involvement_hub.observability.metrics import HubMetrics
from involvement_hub.settings import Settings
from involvement_hub.streaming import unreadable
from involvement_hub.streaming.batches import handle_and_ack
from involvement_hub.streaming.ingest import Accepted, examine, kafka_time
from involvement_hub.streaming.outage_log import OutageLog
from involvement_hub.streaming.tables import (
    Encoded,
    ValueCodec,
    dataclass_codec,
    json_codec,
    remembered,
    str_codec,
)

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
_RAW: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
# The reason for an event whose output would be larger than the hub may produce.
OUTPUT_TOO_LARGE = "output_too_large"
# Delivery takes up to this many alerts at a time and sends them concurrently across
# recipients (in order for each recipient), over the SMTP connection pool.
DELIVERY_BATCH = 64
# The ingest stage takes up to this many records at a time, and forwards them to the
# ordered stage in messages of at most so many records and bytes.
INGEST_FLUSH_S = 0.02
FORWARD_AT_MOST = 128
FORWARD_BYTES = 256 * 1024
# The ordered stage takes up to this many identity-topic messages at a time.
ORDERED_BATCH = 512
ORDERED_BATCH_WAIT_S = 0.01
ORDERED_CHUNK = 4
DELIVERY_BATCH_WAIT_S = 0.02
# Every so often the ingest side tells the ordered stage how far each partition it reads is
# known (a Watermark), so records waiting in the reorder buffer can go: this bounds the
# delay that ordering adds. The margin covers the broker's clock against the worker's.
WATERMARK_EVERY_S = 1.0
WATERMARK_MARGIN_S = 2.0
# Records forwarded in the last few seconds may be waiting: watermarks every second then.
# Otherwise one now and then, so that another worker's records are not held up by
# partitions this worker reads and nobody writes to.
WATERMARK_ACTIVE_S = 5.0
WATERMARK_IDLE_EVERY_S = 15.0


@contextlib.contextmanager
def as_current(event: Any) -> Iterator[None]:
    """Make ``event`` Faust's current event while its table writes are made.

    Faust files a table write under the partition of the current event. In a batch, the
    stream's current event is the batch's last one; each alert's writes must go under its
    own partition instead. (This sets faust.streams' context variable, which is private:
    faust-streaming is pinned below 0.16 and tests/integration exercise it.)
    """
    token = faust.streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust.streams._current_event.reset(token)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def flush_fully(buffer: Any) -> None:
    """Faust's producer buffer flush, made to keep its word.

    Before committing offsets Faust flushes its producer, but ``ProducerBuffer.flush``
    (faust-streaming 0.15) returns after any 0.1 s in which no message left the buffer,
    even with messages still in it: on a SIGTERM the offsets of events whose outputs were
    never handed to Kafka were committed, and the outputs cancelled (measured by
    ``hub chaos``: records lost on restarts). This waits until the buffer is empty; once
    the buffer is stopping (its drain task ends), the rest is handed over here, in order.
    """
    while buffer.size:
        if buffer.should_stop:
            # Let the drain task finish the message it may hold, then take over.
            buffer.message_sent.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(buffer.message_sent.wait(), timeout=1.0)
            while buffer.size:
                await buffer._send_pending(buffer.pending.get_nowait())
            return
        buffer.message_sent.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(buffer.message_sent.wait(), timeout=0.1)


def forwarded_through(ingested: int | None, committed: int | None) -> int:
    """The last offset of an ingest partition known to be with the ordered stage: the last
    record this worker forwarded (``ingested``), or the one before the group's committed
    offset (Faust commits only what was handled, after flushing its outputs) -- whichever
    is further. A worker that lost a partition in a rebalance and got it back has an old
    ``ingested``: another worker went on from there, and without the committed offset
    this one never claimed the partition caught up again, so the ordered stage waited for
    it for ever, routing nothing (seen in tests/integration/test_rebalance.py)."""
    return max(-1 if ingested is None else ingested, (committed or 0) - 1)


async def seek_fully(consumer: Any, seek: Callable[[], Awaitable[None]], topics: Set[str]) -> None:
    """Faust's seek back to the committed offsets after a rebalance, made to cover every
    partition of ``topics``.

    At a revocation Faust (faust-streaming 0.15) forgets what it had acknowledged but not yet
    committed, and drops the records it had fetched but not handled, counting on reading
    both again from the committed offset. But it seeks there only when that offset is above
    0 (aiokafka's ``seek_to_committed``): a partition with no committed offset that stays
    with this worker keeps its fetch position. A record handled just before the rebalance is
    then never committed (lag that never clears), and a record fetched but not handled is
    never handled at all; on an ingest partition the ordered stage then waits for ever for
    that partition to be known past it (seen in tests/integration/test_rebalance.py). Such
    partitions are sought to their beginning, where a consumer with no committed offset
    starts (``auto_offset_reset=earliest``): what they hold is read again, at least once.
    (With ``seek_wait``, which seeks in the consumer's own thread: a seek from this one
    raced the fetcher's and crashed it, ``KeyError`` in aiokafka's ``fetched_records``.)
    """
    await seek()
    unread = [
        tp
        for tp in consumer.assignment()
        if tp.topic in topics and not consumer._committed_offset.get(tp)
    ]
    if unread:
        earliest = await consumer.earliest_offsets(*unread)
        await consumer.seek_wait({tp: earliest[tp] for tp in unread})


class TrackedTable(faust.Table[Any, Any]):
    """A table that keeps the changelog send of each key's latest write, to be awaited.

    A table write only queues its changelog message; delivery must know when the broker has
    acknowledged an outbox entry before it talks to the mail server.
    """

    # Past this many writes nobody awaited (held alerts, bookkeeping), the settled ones go.
    _KEEP = 4096

    def __post_init__(self) -> None:
        super().__post_init__()
        self.latest: dict[Any, Any] = {}

    def send_changelog(self, partition: Any, key: Any, value: Any, *args: Any, **kw: Any) -> Any:
        future = super().send_changelog(partition, key, value, *args, **kw)
        if len(self.latest) >= self._KEEP:
            self.latest = {k: f for k, f in self.latest.items() if not f.done()}
        self.latest[key] = future
        return future


class Acknowledged:
    """Delivery's :class:`~involvement_hub.delivery.service.Durable` on Kafka."""

    # A failed changelog send is written again after this many seconds, doubling up to the cap.
    RETRY_S = (0.5, 30.0)

    def __init__(self, tables: list[TrackedTable], alerts_topic: Any) -> None:
        self._tables = tables
        self._alerts_topic = alerts_topic

    async def recorded(self, key: str) -> None:
        for table in self._tables:

            def write_again(failed: Any, table: TrackedTable = table) -> Any:
                # Unless a newer write of the key came meanwhile (then wait for that one).
                if table.latest.get(key) is failed:
                    raw = table.get(key)
                    if raw is None:
                        del table[key]
                    else:
                        table[key] = raw
                return table.latest.get(key)

            done = await self._until_acknowledged(
                table.latest.get(key), write_again, "outbox record"
            )
            if done is not None and table.latest.get(key) is done:
                del table.latest[key]

    async def queued(self, alerts: Sequence[Alert]) -> None:
        for alert in alerts:

            def send(_failed: Any = None, alert: Alert = alert) -> Any:
                return self._alerts_topic.send_soon(
                    key=alert.recipient_id.encode(), value=wire.dumps(alert, AlertTopicMessage)
                )

            await self._until_acknowledged(send(), send, "derived alert")

    async def _until_acknowledged(self, future: Any, again: Callable[[Any], Any], what: str) -> Any:
        """Await ``future``; while Kafka refuses it, wait (doubling) and send ``again``.
        Nothing is sent by mail until the record is safe. Returns the future that was
        acknowledged (None if there was nothing to wait for)."""
        delay = self.RETRY_S[0]
        while future is not None:
            try:
                await future
                return future
            except Exception as exc:  # aiokafka raises several types for a failed send
                log.warning(
                    "%s not acknowledged (%s); sending it again in %.1f s",
                    what,
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.RETRY_S[1])
                future = again(future)
        return None


class HubApp:
    """Builds the Faust app for one worker from settings, loaded config and collaborators."""

    def __init__(
        self,
        settings: Settings,
        config: HubConfig,
        metrics: HubMetrics,
        mailer: Mailer,
        *,
        clock: Clock = utc_now,
        outage: OutageLog | None = None,
    ) -> None:
        self.settings = settings
        self.outage = outage
        self.config = config
        self.metrics = metrics
        self.mailer = mailer
        self.clock = clock
        self.names = TopicNames.from_settings(settings)
        self._secret = settings.pseudonym_key.reveal().encode("utf-8")
        self._retention = dt.timedelta(days=settings.involvement_retention_days)
        # The ordered step's context; its time is each message's own, never the clock.
        self._ingest_partitions = tuple(
            f"{topic}/{p}"
            for topic in TopicNames.from_settings(settings).all_ingest
            for p in range(settings.partitions)
        )
        self._step_settings = StepSettings(
            Context(config.policy, config.rules, self._retention, utc_now()),
            self._secret,
            self._ingest_partitions,
        )
        # ingest partition -> the last offset the ingest agent finished with
        self._ingested: dict[tuple[str, int], int] = {}
        self._last_ingested_at = 0.0  # monotonic
        # Records examined, waiting to be forwarded (and then acknowledged) in one message.
        self._pending_ingest: list[tuple[Any, ToResolve | None]] = []
        self._ingest_stream: Any = None
        self._last_watermark_at = 0.0
        # id -> (the due time nudged for, monotonic time of the nudge)
        self._nudged: dict[str, tuple[dt.datetime, float]] = {}
        # Liveness: when the committed offsets last moved, and whether there is work.
        self._progress_at = time.monotonic()
        self._committed_total = -1
        self._lagging = False
        self._lag_labels: set[tuple[str, str]] = set()
        self._standby_labels: set[tuple[str, str]] = set()
        metrics.build_info.labels(
            _version("involvement-hub"), platform.python_version(), _version("faust-streaming")
        ).set(1)
        self.app = self._create_app()
        self._declare()
        unreadable.install(self._skipped_unreadable)
        # Faust pauses every stream while more than 100 table writes wait to be produced,
        # logging a warning each time; a hub writes a few per event, so allow more.
        self.app.producer.buffer.max_messages = 5000
        buffer = self.app.producer.buffer
        buffer.flush = functools.partial(flush_fully, buffer)  # type: ignore[method-assign]

    # -- construction -------------------------------------------------------------

    def _create_app(self) -> faust.App:
        s = self.settings
        # One folder per application id: two hubs (or a bench and a hub) on one machine must
        # never read each other's RocksDB tables as their own.
        datadir = s.state_dir / "worker" / s.app_id
        datadir.mkdir(parents=True, exist_ok=True)
        return faust.App(
            s.app_id,
            broker=f"kafka://{s.bootstrap}",
            broker_credentials=faust_credentials(s),
            store=s.store,
            datadir=str(datadir),
            processing_guarantee="at_least_once",
            topic_partitions=s.partitions,
            topic_replication_factor=s.replication_factor,
            # Faust's web server would expose table contents (personal data); the worker's
            # own endpoints serve metrics and health instead.
            web_enabled=False,
            autodiscover=False,
            consumer_auto_offset_reset="earliest",
            # Static membership: a worker restarted after a crash rejoins under the same id
            # and takes its partitions back at once, instead of waiting for the dead
            # member's session to time out before anything is processed.
            consumer_group_instance_id=group_instance_id(s),
            # A worker that is not restarted (a lost node) keeps its partitions until its
            # session times out: Faust's 60 s is most of a failover, so the hub's is shorter.
            broker_session_timeout=s.session_timeout_s,
            broker_heartbeat_interval=s.heartbeat_interval_s,
            # Each table partition kept warm on another worker, which takes it over after
            # reading only what its copy lacks (RocksDB keeps the copy's offset).
            table_standby_replicas=s.standby_replicas,
            producer_acks=-1,
            # A few milliseconds of lingering lets the producer send changelog and topic
            # messages in batches instead of one request (and syscall) each.
            producer_linger_ms=5,
            # Faust's default (1,000,000) is below the hub's own limit; limits.check_fits
            # keeps every message under this one, so the producer never refuses one.
            producer_max_request_size=PRODUCE_LIMIT_BYTES,
            stream_wait_empty=False,
        )

    def _declare(self) -> None:
        app, names, n = self.app, self.names, self.settings.partitions
        topic: Callable[..., Any] = app.topic
        self.ingest_topic = topic(*names.all_ingest, **_RAW)
        self.quarantine_topic = topic(names.quarantine, **_RAW)
        self.identity_topic = topic(names.identity, partitions=1, **_RAW)
        self.identity_log_topic = topic(names.identity_log, partitions=1, **_RAW)
        self.alerts_topic = topic(names.alerts, partitions=n, **_RAW)
        self.audit_topic = topic(names.audit, partitions=n, **_RAW)
        self.delivery_topic = topic(names.delivery, partitions=n, **_RAW)

        def table(name: str, partitions: int) -> Any:
            return app.Table(
                name,
                partitions=partitions,
                key_type=str,
                value_type=bytes,
                extra_topic_configs={"max.message.bytes": str(PRODUCE_LIMIT_BYTES)},
            )

        def tracked(name: str, partitions: int) -> TrackedTable:
            made = TrackedTable(
                app,
                name=name,
                beacon=app.tables.beacon,
                partitions=partitions,
                key_type=str,
                value_type=bytes,
                extra_topic_configs={"max.message.bytes": str(PRODUCE_LIMIT_BYTES)},
            )
            app.tables.add(made)
            return made

        # The ordered stage's whole state, on the identity topic's single partition: one
        # table, so one changelog whose writes reach Kafka in the order they are made.
        self.state = table(STATE_TABLE, 1)
        outbox, due = tracked("outbox", n), tracked("delivery-due", n)
        self.stores = Stores(
            outbox=Encoded(outbox, dataclass_codec(OutboxEntry)),
            due=Encoded(due, dataclass_codec(Due)),
            digests=Encoded(table("digests", n), dataclass_codec(DigestBox)),
        )
        s = self.settings
        self.deliverer = Deliverer(
            mailer=self.mailer,
            plan=PlanSource(s.subscriptions_dir, self.config.delivery),
            mail_from=s.mail_from,
            backoff=Backoff(
                base=dt.timedelta(seconds=s.retry_base_s),
                cap=dt.timedelta(seconds=s.retry_cap_s),
                horizon=dt.timedelta(hours=s.retry_horizon_h),
            ),
            metrics=self.metrics,
            clock=self.clock,
            rand=random.random,
            durable=Acknowledged([outbox, due], self.alerts_topic),
            in_flight=asyncio.Semaphore(s.smtp_connections),
        )
        agent: Callable[..., Any] = app.agent
        agent(self.ingest_topic, name="ingest", concurrency=1)(self._ingest_agent)
        agent(self.identity_topic, name="ordered", concurrency=1)(self._ordered_agent)
        agent(self.alerts_topic, name="delivery", concurrency=1)(self._delivery_agent)
        app.timer(s.delivery_tick_s, name="delivery-tick")(self._tick_safely)
        app.timer(WATERMARK_EVERY_S, name="watermarks")(self._watermarks_safely)
        app.timer(INGEST_FLUSH_S, name="ingest-flush")(self._flush_ingest_safely)
        self._consumed_topics = frozenset([*names.all_ingest, names.identity, names.alerts])

    def seek_fully_after_rebalances(self) -> None:
        """Make the consumer read again what a rebalance made it forget (:func:`seek_fully`).

        Called by the worker that runs the app: the consumer is created here, with its
        thread and event loop, which merely building the app must not do."""
        consumer: Any = self.app.consumer
        consumer.perform_seek = functools.partial(
            seek_fully, consumer, consumer.perform_seek, self._consumed_topics
        )

    # -- readiness ----------------------------------------------------------------

    def ready(self) -> bool:
        """Tables recovered, not rebalancing, and consuming at least one partition."""
        app = self.app
        ok = False
        if app.started:
            tables: Any = app.tables
            recovered = tables.recovery.completed.is_set()
            consuming = bool(app.consumer.assignment())
            ok = bool(recovered and not app.rebalancing and consuming)
        self.metrics.ready.set(1 if ok else 0)
        return ok

    def live(self) -> bool:
        """Every agent runs, and the worker has committed progress recently if it has work."""
        crashed = any(agent.crashed for agent in self.app.agents.values())
        stalled = self._lagging and time.monotonic() - self._progress_at > self.settings.stall_s
        ok = not crashed and not stalled
        self.metrics.live.set(1 if ok else 0)
        return ok

    def observe(self) -> None:
        """Lag per partition, recovery progress, standby copies, and whether commits still
        advance. Called at every delivery tick and before /metrics answers."""
        app = self.app
        if not app.started:
            return
        consumer: Any = app.consumer
        committed_total = 0
        lag_total = 0
        labelled: set[tuple[str, str]] = set()
        for tp in consumer.assignment():
            if tp.topic not in self._consumed_topics:
                continue  # table changelogs and Faust's own topics are read, never committed
            highwater = consumer.highwater(tp)
            committed = consumer._committed_offset.get(tp) or 0
            lag = max((highwater or 0) - committed, 0)
            lag_total += lag
            committed_total += committed
            labels = (tp.topic, str(tp.partition))
            labelled.add(labels)
            self.metrics.consumer_lag.labels(*labels).set(lag)
        # Partitions moved to another worker by a rebalance are not this worker's lag.
        for gone in self._lag_labels - labelled:
            self.metrics.consumer_lag.remove(*gone)
        self._lag_labels = labelled
        if committed_total != self._committed_total:
            self._committed_total = committed_total
            self._progress_at = time.monotonic()
        self._lagging = lag_total > 0
        tables: Any = app.tables
        recovery = tables.recovery
        self.metrics.recovery_remaining.set(recovery.active_remaining_total())
        standby = standby_remaining(
            recovery.standby_tps,
            recovery.standby_offsets,
            {tp: consumer.highwater(tp) for tp in recovery.standby_tps},
            recovery.standby_highwaters,
        )
        for tp, remaining in standby.items():
            self.metrics.standby_remaining.labels(tp.topic, str(tp.partition)).set(remaining)
        kept = {(tp.topic, str(tp.partition)) for tp in standby}
        for gone in self._standby_labels - kept:
            self.metrics.standby_remaining.remove(*gone)
        self._standby_labels = kept
        # The gauges must move without anyone calling the probes.
        self.ready()
        self.live()

    # -- the agents -----------------------------------------------------------------

    async def _ingest_agent(self, stream: Any) -> None:
        """Agencies' records: each examined, the accepted ones forwarded to the ordered
        stage a batch per message (``Forwarded``). A record is acknowledged only once its
        batch is handed to the producer: when FORWARD_AT_MOST are waiting, or at the next
        ingest tick (every INGEST_FLUSH_S)."""
        self._ingest_stream = stream.noack()
        async for event in self._ingest_stream.events():
            try:
                forward = self._examine(event)
            except Exception as exc:
                await self._stage_error("ingest", event, exc)
                forward = None
            self._pending_ingest.append((event, forward))
            if len(self._pending_ingest) >= FORWARD_AT_MOST:
                await self._flush_ingest()

    async def _flush_ingest_safely(self) -> None:
        # An exception escaping a Faust timer ends it for good.
        try:
            await self._flush_ingest()
        except Exception:
            log.exception("could not forward the records read; trying again at the next tick")

    async def _flush_ingest(self) -> None:
        pending, self._pending_ingest = self._pending_ingest, []
        if not pending:
            return
        try:
            await self._forward([(e, f) for e, f in pending if f is not None])
        except BaseException:
            # Not forwarded, so not acknowledged: kept, to go first next time.
            self._pending_ingest[:0] = pending
            raise
        for event, _ in pending:
            message = event.message
            self._ingested[(message.topic, message.partition)] = message.offset
            await self._ingest_stream.ack(event)
        self._last_ingested_at = time.monotonic()

    async def _forward(self, accepted: Sequence[tuple[Any, ToResolve]]) -> None:
        """Send records on in messages of at most FORWARD_AT_MOST records and
        FORWARD_BYTES: a batch whose message is larger is split; a record too large alone
        is quarantined."""
        chunks = [
            accepted[i : i + FORWARD_AT_MOST] for i in range(0, len(accepted), FORWARD_AT_MOST)
        ]
        while chunks:
            chunk = chunks.pop(0)
            if not chunk:
                continue
            raw = wire.dumps(Forwarded(tuple(r for _, r in chunk)), IdentityMessage)
            if len(chunk) > 1 and len(raw) > FORWARD_BYTES:
                half = len(chunk) // 2
                chunks[:0] = [chunk[:half], chunk[half:]]
                continue
            try:
                self._send(self.identity_topic, None, raw)
            except OversizeMessage as exc:
                await self._stage_error("ingest", chunk[0][0], exc)

    async def _watermarks_safely(self) -> None:
        try:
            self._watermarks()
        except Exception:
            log.exception("could not send watermarks; trying again at the next tick")

    def _watermarks(self) -> None:
        """Tell the ordered stage which ingest partitions this worker has read to the end.

        A partition is caught up when the ingest agent has finished its last record by the
        high-water mark of the consumer's latest fetch response for it. The broker built
        that response before the consumer received it, so anything appended since has a
        later broker time than the moment of receipt: that moment, less a margin for the
        brokers' clocks against this one, is what the watermark claims. A worker too busy
        to fetch claims nothing new.
        """
        mono = time.monotonic()
        active = mono - self._last_ingested_at < WATERMARK_ACTIVE_S
        if not self.app.started or (
            not active and mono - self._last_watermark_at < WATERMARK_IDLE_EVERY_S
        ):
            return
        consumer: Any = self.app.consumer
        kafka_consumer = consumer._thread._ensure_consumer()
        caught_up: list[str] = []
        polled: list[int] = []
        for tp in consumer.assignment():
            if self.names.agency_of(tp.topic) is None:
                continue
            highwater = consumer.highwater(tp)
            polled_ms = kafka_consumer.last_poll_timestamp(tp)
            if highwater is None or polled_ms is None:
                continue
            ingested = self._ingested.get((tp.topic, tp.partition))
            done = forwarded_through(ingested, consumer._committed_offset.get(tp))
            if done + 1 >= highwater:
                caught_up.append(f"{tp.topic}/{tp.partition}")
                polled.append(polled_ms)
        if caught_up:
            through = dt.datetime.fromtimestamp(min(polled) / 1000, tz=dt.UTC) - dt.timedelta(
                seconds=WATERMARK_MARGIN_S
            )
            mark = Watermark(tuple(sorted(caught_up)), through)
            self._send(self.identity_topic, None, wire.dumps(mark, IdentityMessage))
            self._last_watermark_at = mono

    def _examine(self, event: Any) -> ToResolve | None:
        message = event.message
        agency = self.names.agency_of(message.topic)
        result = examine(
            message.value,
            topic_agency=agency,
            registry=self.config.registry,
            policy=self.config.policy,
            max_bytes=self.settings.max_message_bytes,
        )
        if not isinstance(result, Accepted):
            if result.decode_failure:
                self.metrics.decode_failures.labels(agency or "unknown", result.reason).inc()
            self._quarantine(event, result.reason, result.detail, agency)
            return None
        self.metrics.events_consumed.labels(agency, result.event.kind).inc()
        return ToResolve(
            result.event,
            kafka_time(message.timestamp, self.clock()),
            (f"{message.topic}/{message.partition}", message.offset),
        )

    async def _ordered_agent(self, stream: Any) -> None:
        """The ordered stage, a batch at a time: one journal entry, one write per key
        changed and one ``applied`` mark per batch. Acknowledged after the batch: offsets
        are committed between batches only, which the journal relies on."""
        async for batch in stream.noack_take(ORDERED_BATCH, within=ORDERED_BATCH_WAIT_S):
            for start in range(0, len(batch), ORDERED_CHUNK):
                events = batch[start : start + ORDERED_CHUNK]
                began = time.thread_time()
                # One identity partition: every state write is filed under it.
                with as_current(events[-1]):
                    try:
                        self._ordered(events)
                    except Exception as exc:
                        log.warning(
                            "ordered stage: a batch of %d failed (%s); one at a time",
                            len(events),
                            type(exc).__name__,
                            exc_info=True,
                        )
                        # Find the event that fails: one at a time, a batch of one each.
                        for event in events:
                            try:
                                self._ordered([event])
                            except Exception as exc:
                                await self._stage_error("ordered", event, exc)
                self.metrics.ordered_cpu.inc(time.thread_time() - began)
                # Acknowledged a chunk at a time, each chunk's entries whole, so an offset
                # committed is always an entry's end; the loop turns between chunks, so
                # a backlog does not hold up ingest, delivery and timers.
                for event in events:
                    await stream.ack(event)
                await asyncio.sleep(0)

    def _ordered(self, events: Sequence[Any]) -> None:
        """Positions of the identity topic: resolved, applied and routed exactly once."""
        items = [(e.message.offset, wire.loads(IdentityMessage, e.value)) for e in events]

        def run(
            messages: Sequence[tuple[int, Any]], budget: int
        ) -> tuple[JournalEntry[bytes], list[StepResult]]:
            return compute_entries(
                messages, self.state, STATE_CODECS, self._step_settings, decided_at_most=budget
            )

        def encode(entry: JournalEntry[bytes]) -> bytes:
            # Every output must fit before anything is written: an entry is refused whole.
            for topic, key, value in self._encoded_outputs(entry.outputs):
                check_fits(topic.get_topic_name(), key, value)
            return encode_journal(entry)

        def compute(rest: Sequence[tuple[int, Any]]) -> tuple[JournalEntry[bytes], bytes]:
            entry, results, raw = fitting_entry(rest, run, encode, OversizeMessage)
            self._count(entry, results)
            return entry, raw

        handled = handle_batch(items, self.state, compute, decode=decode_journal)
        for outcome in handled:
            if outcome.outcome != "computed":
                self.metrics.ordered_replays.labels(outcome.outcome).inc()
            self._send_outputs(outcome.outputs)
        self.metrics.ordered_waiting.set(
            waiting_count(
                Prefixed(self.state, "queues/", STATE_CODECS["queues"]),
                self._step_settings.ingest_partitions,
            )
        )
        if any(h.outputs.more for h in handled):
            # More waiting records may go: another step, after whatever has arrived since.
            self.identity_topic.send_soon(value=wire.dumps(GO_ON, IdentityMessage))

    def _count(self, entry: JournalEntry[bytes], results: Sequence[StepResult]) -> None:
        for result in results:
            for problem in result.rejected:
                self.metrics.identifiers_rejected.labels(problem.scheme, problem.reason).inc()
            for decision in result.decisions:
                outcome, reason = decision.outcome.value, decision.suppression or ""
                self.metrics.decisions.labels(outcome, reason).inc()
        for record in entry.outputs.identity_log:
            if isinstance(record, MergeRecord):
                self.metrics.identity_merges.inc()
        for alert in entry.outputs.alerts:
            self.metrics.alerts_routed.labels(alert.urgency.value).inc()

    def _encoded_outputs(self, outputs: Outputs) -> Iterator[tuple[Any, bytes | None, bytes]]:
        for alert in outputs.alerts:
            yield (
                self.alerts_topic,
                alert.recipient_id.encode(),
                wire.dumps(alert, AlertTopicMessage),
            )
        for record in outputs.audit:
            yield self.audit_topic, record.person_id.encode(), wire.dumps(record)
        for log_record in outputs.identity_log:
            yield self.identity_log_topic, None, wire.dumps(log_record, IdentityLogRecord)

    def _send_outputs(self, outputs: Outputs) -> None:
        for topic, key, value in self._encoded_outputs(outputs):
            topic.send_soon(key=key, value=value)

    async def _delivery_agent(self, stream: Any) -> None:
        # noack_take, not take_events: take_events acknowledges a whole batch when a stop
        # cancels it half-delivered (see streaming/batches.py).
        async for events in stream.noack_take(DELIVERY_BATCH, within=DELIVERY_BATCH_WAIT_S):
            await handle_and_ack(events, self._deliver_safely, stream.ack)

    async def _deliver_safely(self, event: Any) -> None:
        with as_current(event):
            try:
                await self._deliver(event)
            except Exception as exc:
                await self._stage_error("delivery", event, exc)

    async def _deliver(self, event: Any) -> None:
        message = wire.loads(AlertTopicMessage, event.value)
        # Copies and escalations (result.queue) are already on hub.alerts: delivery waited
        # for them before recording their cause.
        result = await handle(message, self.stores, self.deliverer)
        for outcome in result.outcomes:
            self._send(self.delivery_topic, outcome.recipient_id.encode(), wire.dumps(outcome))
        for record in result.audit:  # IG-5: suppressions at send time are audited too
            self._send(self.audit_topic, record.person_id.encode(), wire.dumps(record))

    def _queue_alert(self, alert: Alert) -> None:
        self._send(
            self.alerts_topic, alert.recipient_id.encode(), wire.dumps(alert, AlertTopicMessage)
        )

    def _send(self, topic: Any, key: bytes | None, value: bytes) -> None:
        """Hand a message to Faust's producer buffer, if the producer will take it."""
        check_fits(topic.get_topic_name(), key, value)
        topic.send_soon(key=key, value=value)

    async def _tick_safely(self) -> None:
        # An exception escaping a Faust timer ends it for good, and with it every retry.
        try:
            await self._tick()
        except Exception:
            log.exception("delivery tick failed; trying again at the next one")
        try:
            self.observe()
        except Exception:
            log.exception("could not observe lag and recovery; trying again at the next tick")
        if self.outage is not None:
            self.outage.tick()

    async def _tick(self) -> None:
        """Nudge due retries and closed digest windows; measure what is waiting.

        Tables can only be read here (writes need an event), so due work is sent as a
        message to the recipient's partition of hub.alerts, where the delivery agent does it.
        """
        now = self.clock()
        mono = time.monotonic()
        # A nudge not acted on within a minute (a rebalance, a restart) is sent again; one
        # that was acted on and failed again has a new due time, nudged when that comes.
        self._nudged = {k: v for k, v in self._nudged.items() if mono - v[1] < 60}
        oldest: dict[str, dt.datetime] = {}
        waiting = 0
        for key, due in list(self.stores.due.items()):
            waiting += 1
            if due.urgency not in oldest or due.since < oldest[due.urgency]:
                oldest[due.urgency] = due.since
            if due.next_at <= now and self._nudged.get(key, (None, 0.0))[0] != due.next_at:
                self._nudged[key] = (due.next_at, mono)
                nudge = RetryNudge(due.recipient_id, key)
                self._send(
                    self.alerts_topic,
                    due.recipient_id.encode(),
                    wire.dumps(nudge, AlertTopicMessage),
                )
        for recipient, box in list(self.stores.digests.items()):
            waiting += len(box.windows)
            for window in box.due(now):
                key = window.digest_id(recipient)
                if key in self._nudged or key in self.stores.due:
                    continue  # a failed digest is retried through its due entry
                self._nudged[key] = (window.due, mono)
                message = DigestDue(recipient, window.window)
                self._send(
                    self.alerts_topic, recipient.encode(), wire.dumps(message, AlertTopicMessage)
                )
        self.metrics.delivery_pending.set(waiting)
        for urgency in ("ROUTINE", "PRIORITY", "URGENT"):
            since = oldest.get(urgency)
            age = (now - since).total_seconds() if since else 0.0
            self.metrics.oldest_pending_age.labels(urgency).set(age)

    # -- failure paths --------------------------------------------------------------

    def _quarantine(self, event: Any, reason: str, detail: str, agency: str | None) -> None:
        message = event.message
        self.metrics.quarantined.labels(agency or "unknown", reason).inc()
        note = note_for(
            Source(message.topic, message.partition, message.offset),
            message.key,
            message.value,
            message.headers,
            reason=reason,
            detail=detail,
            at=self.clock(),
            max_payload_bytes=self.settings.max_message_bytes,
        )
        self.quarantine_topic.send_soon(key=note.key, value=note.value, headers=note.headers)

    def _skipped_unreadable(
        self, topic: str, partition: int, first: int, last: int, exc: Exception
    ) -> None:
        """A batch the consumer could not read was skipped: say so loudly, and where."""
        agency = self.names.agency_of(topic)
        self.metrics.unreadable_batches.labels(topic).inc()
        self.metrics.quarantined.labels(agency or "unknown", UNREADABLE_BATCH).inc()
        # The exception's text may quote bytes of the batch; its type says enough.
        log.error(
            "skipped an unreadable batch %s[%s]@%s..%s: %s; its records are lost to the hub "
            "and noted in the quarantine",
            topic,
            partition,
            first,
            last,
            type(exc).__name__,
        )
        note = unreadable_note(
            Source(topic, partition, first), last, type(exc).__name__, self.clock()
        )
        try:
            self.quarantine_topic.send_soon(key=note.key, value=note.value, headers=note.headers)
        except Exception:
            log.exception("could not quarantine a note of the unreadable batch")

    async def _stage_error(self, stage: str, event: Any, exc: Exception) -> None:
        message = event.message
        self.metrics.agent_errors.labels(stage).inc()
        # The exception's text may quote payload data; log its type and where it was raised.
        where = "".join(traceback.format_tb(exc.__traceback__)[-3:])
        log.error(
            "stage %s failed on %s[%s]@%s: %s\n%s",
            stage,
            message.topic,
            message.partition,
            message.offset,
            type(exc).__name__,
            where,
        )
        if isinstance(exc, OversizeMessage):
            reason, detail = OUTPUT_TOO_LARGE, str(exc)
        else:
            reason, detail = f"internal_error_{stage}", type(exc).__name__
        try:
            # Filed under agency "unknown": the hub's failure, not the agency's doing.
            self._quarantine(event, reason, detail, None)
        except Exception:
            log.exception("could not quarantine after a %s failure", stage)


def _codec(codec: ValueCodec[Any]) -> Codec:
    return Codec(encode=codec.encode, decode=codec.decode)


# How many decoded profiles, persons and households the ordered stage keeps at hand, each:
# decoding state values was a fifth of its time. Measured in process over the benchmark's
# population (31,920 records), paired runs: 361-400 us a record without, 318-340 with.
REMEMBERED = 16_384
# How each part of the ordered stage's state is kept in the state table.
STATE_CODECS: dict[str, Codec] = {
    "identity-person-of": _codec(str_codec),
    "identity-keys-of": _codec(json_codec),
    "identity-profiles": _codec(remembered(dataclass_codec(Profile), REMEMBERED)),
    "identity-by-birthday": _codec(json_codec),
    "identity-candidates": _codec(dataclass_codec(MatchCandidate)),
    "identity-decided": _codec(json_codec),
    "identity-rejected": _codec(json_codec),
    "persons": _codec(remembered(dataclass_codec(PersonState), REMEMBERED)),
    "households": _codec(remembered(dataclass_codec(HouseholdState), REMEMBERED)),
    "sources": _codec(json_codec),
    "frontiers": _codec(str_codec),
    "queues": _codec(json_codec),
    "waiting": _codec(dataclass_codec(ToResolve)),
}


@dataclasses.dataclass(frozen=True, slots=True)
class _JournalRecord:
    """A journal entry as stored: every value the step wrote is UTF-8 text (JSON)."""

    position: int
    writes: tuple[tuple[str, str | None], ...]
    outputs: Outputs
    last: int = -1


def encode_journal(entry: JournalEntry[bytes]) -> bytes:
    """Checked against the producer's limit here, before the step writes anything: a step
    too large to record is refused whole (the event is quarantined), never half applied."""
    writes = tuple((k, None if v is None else v.decode("utf-8")) for k, v in entry.writes)
    raw = wire.dumps(_JournalRecord(entry.position, writes, entry.outputs, entry.last))
    check_fits(STATE_TABLE, journal_key(entry.position).encode(), raw)
    return raw


def decode_journal(raw: bytes) -> JournalEntry[bytes]:
    record: _JournalRecord = wire.loads(_JournalRecord, raw)
    writes = tuple((k, None if v is None else v.encode("utf-8")) for k, v in record.writes)
    return JournalEntry(record.position, writes, record.outputs, record.last)


def standby_remaining(
    standbys: Iterable[Any],
    offsets: Mapping[Any, int | None],
    ends: Mapping[Any, int | None],
    highwaters_at_start: Mapping[Any, int | None],
) -> dict[Any, int]:
    """Changelog messages each standby partition still lacks.

    ``offsets``: the last offset Faust's recovery took in for the standby (-1 or None:
    none yet); ``ends``: the consumer's latest end offset of the partition (None before
    its first fetch); ``highwaters_at_start``: the last offset when the standby started
    (Faust's own figure, which it never updates). The further of the two is the target.
    """
    remaining = {}
    for tp in standbys:
        end, at_start = ends.get(tp), highwaters_at_start.get(tp)
        last = max(end - 1 if end is not None else -1, at_start if at_start is not None else -1)
        taken = offsets.get(tp)
        remaining[tp] = max(last - (taken if taken is not None else -1), 0)
    return remaining


def group_instance_id(settings: Settings) -> str:
    """This worker's static membership id: ``HUB_INSTANCE_ID``, else host name and app id."""
    return settings.instance_id or f"{socket.gethostname()}-{settings.app_id}"


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def faust_credentials(settings: Settings) -> Any:
    """Faust's form of the connection security every other client gets from kafka.client."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = ssl_context(settings) if protocol in ("SSL", "SASL_SSL") else None
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    return faust.SASLCredentials(
        username=settings.kafka_username,
        password=settings.kafka_password.reveal(),
        ssl_context=context,
        mechanism=settings.kafka_sasl_mechanism,
    )
