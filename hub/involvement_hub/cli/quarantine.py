"""The quarantine, for the people who fix what went into it: ``hub quarantine list|replay``.

Every quarantined message keeps its original bytes and key, with headers saying where it
came from and why (``hub-reason``, ``hub-detail``, ``hub-source-topic``, ...) -- unless it
was too large to copy or could not be read at all (``hub-payload`` is then ``dropped`` or
``not-read``, see ``quarantine_note``): those are listed but never replayed. Once the
cause is fixed -- a schema deployed, a policy entry added, an agency's bug mended -- a
replay publishes the messages back to the topics they came from, to be processed again.
Replays are safe to repeat: events are idempotent by their ids and alerts by theirs.

A replay remembers how far it got (a consumer group of its own), so the next replay starts
after it; ``--from-start`` goes over everything again.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from involvement_hub.kafka.admin import partitions_of
from involvement_hub.kafka.client import client_options
from involvement_hub.kafka.quarantine_note import KEPT, Header
from involvement_hub.kafka.topics import TopicNames
from involvement_hub.settings import Settings


@dataclass(frozen=True, slots=True)
class Quarantined:
    offset: int
    partition: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]

    @property
    def reason(self) -> str:
        return self.headers.get(Header.REASON, "?")

    @property
    def source_topic(self) -> str:
        return self.headers.get(Header.SOURCE_TOPIC, "")

    @property
    def replayable(self) -> bool:
        """Whether the note holds the original message (notes from before ``hub-payload``
        existed always did)."""
        return self.value is not None and self.headers.get(Header.PAYLOAD, KEPT) == KEPT

    def agency(self, names: TopicNames) -> str:
        return names.agency_of(self.source_topic) or "-"


def replay_group(settings: Settings) -> str:
    return f"{settings.app_id}-quarantine-replay"


async def read(
    settings: Settings, *, from_start: bool
) -> tuple[list[Quarantined], dict[TopicPartition, int]]:
    """Quarantined messages (after the last replay unless ``from_start``), and the end
    offsets read to."""
    topic = TopicNames.from_settings(settings).quarantine
    tps = await partitions_of(settings, [topic])
    if not tps:
        return [], {}
    consumer = AIOKafkaConsumer(
        **client_options(settings),
        group_id=replay_group(settings),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id=f"hub-quarantine-{uuid.uuid4().hex[:6]}",
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        if from_start:
            await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        found: list[Quarantined] = []
        remaining = {tp for tp in tps if await consumer.position(tp) < ends[tp]}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batch.items():
                for r in records:
                    if r.offset < ends[tp]:
                        headers = {k: v.decode("utf-8", "replace") for k, v in (r.headers or ())}
                        found.append(Quarantined(r.offset, tp.partition, r.key, r.value, headers))
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return found, ends
    finally:
        await consumer.stop()


def summary(messages: list[Quarantined], names: TopicNames) -> str:
    if not messages:
        return "The quarantine holds nothing new."
    counts = Counter((m.agency(names), m.reason) for m in messages)
    lines = [f"{len(messages)} quarantined messages:"]
    lines += [f"  {n:6d}  {agency:<28} {reason}" for (agency, reason), n in counts.most_common()]
    lines.append("Most recent:")
    for m in messages[-10:]:
        when = m.headers.get(Header.QUARANTINED_AT, "?")
        detail = m.headers.get(Header.DETAIL, "")
        lines.append(f"  offset {m.offset} at {when}: {m.reason} from {m.source_topic} - {detail}")
    return "\n".join(lines)


async def replay(
    settings: Settings,
    messages: list[Quarantined],
    ends: dict[TopicPartition, int],
    *,
    reason: str | None,
    agency: str | None,
    progress: Callable[[str], None],
) -> int:
    """Publish the chosen messages back to their source topics; remember how far we got."""
    names = TopicNames.from_settings(settings)
    chosen = [
        m
        for m in messages
        if m.source_topic
        and m.replayable
        and (reason is None or m.reason == reason)
        and (agency is None or m.agency(names) == agency)
    ]
    producer = AIOKafkaProducer(**client_options(settings), enable_idempotence=True, acks="all")
    await producer.start()
    try:
        stamp = dt.datetime.now(dt.UTC).isoformat().encode()
        futures = [
            await producer.send(
                m.source_topic,
                value=m.value,
                key=m.key,
                headers=[
                    (
                        Header.REPLAYED_FROM,
                        f"{names.quarantine}[{m.partition}]@{m.offset}".encode(),
                    ),
                    (Header.REPLAYED_AT, stamp),
                ],
            )
            for m in chosen
        ]
        for future in futures:
            await future
    finally:
        await producer.stop()
    # Remember how far the replay got, but never past a message its filters left out: a
    # later replay with other filters must still find it. (A note without the message can
    # never be replayed, so it holds nothing back.)
    marks = dict(ends)
    picked = {(m.partition, m.offset) for m in chosen}
    for m in messages:
        if m.replayable and (m.partition, m.offset) not in picked:
            tp = TopicPartition(names.quarantine, m.partition)
            marks[tp] = min(marks.get(tp, m.offset), m.offset)
    await _remember(settings, marks)
    progress(
        f"replayed {len(chosen)} of {len(messages)} quarantined messages to their source topics"
    )
    return len(chosen)


async def _remember(settings: Settings, ends: dict[TopicPartition, int]) -> None:
    consumer = AIOKafkaConsumer(
        **client_options(settings),
        group_id=replay_group(settings),
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        consumer.assign(list(ends))
        await consumer.commit({tp: OffsetAndMetadata(end, "") for tp, end in ends.items()})
    finally:
        await consumer.stop()
