"""The hub as a Faust application: three agents over the hub's topics and tables.

    ingest.<agency> --ingest--> hub.identity --ordered--> hub.alerts --delivery--> SMTP
         |                      (1 partition)    |   |  (table hub-state)  |
         v                                       v   v                     v
    hub.quarantine                  hub.identity.log  hub.audit        hub.delivery
                                                          (tables outbox, delivery-due,
                                                           digests)

The ingest agent examines agencies' records (``ingest``) and forwards the accepted ones
to the one partition of ``hub.identity`` in ``Forwarded`` messages, with ``Watermark``s
saying how far each ingest partition is read. The ordered agent takes identity messages a
batch at a time and runs the core's ordered step over them (``core.ordered.run_batch``):
the hub's order, its journal and its outputs. The delivery agent takes batches of
``hub.alerts`` and runs the core's delivery service, making each alert the current event
while it is handled (``faust_app.as_current``), so that its table writes are filed under
its own partition. No exception escapes an agent: an unexpected one is counted, logged
without payload, and the message quarantined. Nothing the hub produces can be refused by
its producer outside a handler either: every output and table write is measured first
(``limits``), and a quarantine note never copies more than the caps allow
(``kafka.quarantine_note``). The Faust app itself is built in ``faust_app``; the health
probes are in ``health``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import platform
import random
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from involvement_hub.config import HubConfig
from involvement_hub.core.alerts import Alert
from involvement_hub.core.digest import DigestBox
from involvement_hub.core.messages import (
    AlertTopicMessage,
    Forwarded,
    IdentityMessage,
    ToResolve,
    Watermark,
)
from involvement_hub.core.model import Urgency
from involvement_hub.core.ordered import (
    GO_ON,
    JournalEntry,
    Outputs,
    Prefixed,
    StepResult,
    run_batch,
    waiting_count,
)
from involvement_hub.core.ordered import Settings as StepSettings
from involvement_hub.core.outbox import Backoff, OutboxEntry
from involvement_hub.core.person_stage import Context
from involvement_hub.core.reasons import Reason
from involvement_hub.core.resolver import IdentityLogRecord, MergeRecord
from involvement_hub.core.schedule import Due, due_now
from involvement_hub.delivery.mailer import Mailer
from involvement_hub.delivery.service import Deliverer, Stores, handle
from involvement_hub.delivery.settings_files import PlanSource
from involvement_hub.errors import OversizeMessage
from involvement_hub.kafka import unreadable, wire
from involvement_hub.kafka.quarantine_note import (
    Source,
    note_for,
    unreadable_note,
)
from involvement_hub.kafka.topics import (
    DIGESTS_TABLE,
    DUE_TABLE,
    OUTBOX_TABLE,
    STATE_TABLE,
    TopicNames,
)
from involvement_hub.limits import PRODUCE_LIMIT_BYTES, check_fits
from involvement_hub.observability.metrics import HubMetrics
from involvement_hub.settings import Settings
from involvement_hub.streaming.acknowledged import Acknowledged, TrackedTable
from involvement_hub.streaming.batches import handle_and_ack
from involvement_hub.streaming.consumer_state import (
    committed_offset,
    forwarded_through,
    last_poll_ms,
    seek_fully,
)
from involvement_hub.streaming.faust_app import as_current, create_app, flush_fully, version
from involvement_hub.streaming.health import Health
from involvement_hub.streaming.ingest import Accepted, examine, kafka_time
from involvement_hub.streaming.outage_log import OutageLog
from involvement_hub.streaming.state_codecs import STATE_CODECS, decode_journal, encode_journal
from involvement_hub.streaming.tables import (
    Encoded,
    dataclass_codec,
)

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
_RAW: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
# The reason for an event whose output would be larger than the hub may produce.
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


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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
        metrics.build_info.labels(
            version("involvement-hub"), platform.python_version(), version("faust-streaming")
        ).set(1)
        self.app = create_app(settings)
        self._declare()
        self.health = Health(self.app, metrics, settings, self._consumed_topics)
        unreadable.install(self._skipped_unreadable)
        # Faust pauses every stream while more than 100 table writes wait to be produced,
        # logging a warning each time; a hub writes a few per event, so allow more.
        self.app.producer.buffer.max_messages = 5000
        buffer = self.app.producer.buffer
        buffer.flush = functools.partial(flush_fully, buffer)  # type: ignore[method-assign]

    # -- construction -------------------------------------------------------------

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
        outbox, due = tracked(OUTBOX_TABLE, n), tracked(DUE_TABLE, n)
        self.stores = Stores(
            outbox=Encoded(outbox, dataclass_codec(OutboxEntry)),
            due=Encoded(due, dataclass_codec(Due)),
            digests=Encoded(table(DIGESTS_TABLE, n), dataclass_codec(DigestBox)),
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
            words=self.config.vocabulary,
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
        caught_up: list[str] = []
        polled: list[int] = []
        for tp in consumer.assignment():
            if self.names.agency_of(tp.topic) is None:
                continue
            highwater = consumer.highwater(tp)
            polled_ms = last_poll_ms(consumer, tp)
            if highwater is None or polled_ms is None:
                continue
            ingested = self._ingested.get((tp.topic, tp.partition))
            done = forwarded_through(ingested, committed_offset(consumer, tp))
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

        def encode(entry: JournalEntry[bytes]) -> bytes:
            # Every output must fit before anything is written: an entry is refused whole.
            for topic, key, value in self._encoded_outputs(entry.outputs):
                check_fits(topic.get_topic_name(), key, value)
            return encode_journal(entry)

        handled = run_batch(
            items,
            self.state,
            STATE_CODECS,
            self._step_settings,
            encode=encode,
            decode=decode_journal,
            too_large=OversizeMessage,
            on_entry=self._count,
        )
        for outcome in handled:
            if outcome.outcome != "computed":
                self.metrics.ordered_replays.labels(outcome.outcome).inc()
            self._send_outputs(outcome.outputs)
        self._observe_waiting()
        if any(h.outputs.more for h in handled):
            # More waiting records may go: another step, after whatever has arrived since.
            self.identity_topic.send_soon(value=wire.dumps(GO_ON, IdentityMessage))

    def _observe_waiting(self) -> None:
        """How many records wait in the reorder buffer, read from the state: after each
        step, and on every tick, so a worker that recovered a buffer from the changelog
        says so before its first step (a gauge left at 0 then told the fault harness, and
        would tell a dashboard, that nothing waited). Only the worker consuming the
        identity topic's partition says so: another may hold a standby copy of the state."""
        if not self.app.started:
            return
        consumer: Any = self.app.consumer
        if not any(tp.topic == self.names.identity for tp in consumer.assignment()):
            self.metrics.ordered_waiting.set(0)
            return
        self.metrics.ordered_waiting.set(
            waiting_count(
                Prefixed(self.state, "queues/", STATE_CODECS["queues"]),
                self._step_settings.ingest_partitions,
            )
        )

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
            await handle_and_ack(events, self._deliver_safely, stream.ack, _position)

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
            self.health.observe()
            self._observe_waiting()
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
        schedule = due_now(
            now,
            list(self.stores.due.items()),
            list(self.stores.digests.items()),
            {key: at for key, (at, _) in self._nudged.items()},
        )
        for nudge in schedule.nudges:
            self._nudged[nudge.key] = (nudge.at, mono)
            recipient = nudge.message.recipient_id
            self._send(
                self.alerts_topic, recipient.encode(), wire.dumps(nudge.message, AlertTopicMessage)
            )
        self.metrics.delivery_pending.set(schedule.waiting)
        for urgency in Urgency:
            since = schedule.oldest.get(urgency)
            age = (now - since).total_seconds() if since else 0.0
            self.metrics.oldest_pending_age.labels(urgency.value).set(age)

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
        self.metrics.quarantined.labels(agency or "unknown", Reason.UNREADABLE_BATCH).inc()
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
            reason, detail = Reason.OUTPUT_TOO_LARGE, str(exc)
        else:
            reason, detail = Reason.internal_error(stage), type(exc).__name__
        try:
            # Filed under agency "unknown": the hub's failure, not the agency's doing.
            self._quarantine(event, reason, detail, None)
        except Exception:
            log.exception("could not quarantine after a %s failure", stage)


def _position(event: Any) -> tuple[Any, int]:
    """An event's partition and offset, for acknowledging in offset order."""
    message = event.message
    return message.tp, int(message.offset)
