"""Reading a topic to its end and publishing a few messages: what the operators' commands
need from Kafka, over aiokafka, so nothing outside this package handles a client.

The worker's own consuming and producing is Faust's (``involvement_hub.streaming``); these
are short-lived clients for ``hub team``, ``hub audit``, ``hub quarantine``, a steward's
decision and the development tools.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: TID251 - this package is the Kafka seam
from aiokafka.errors import KafkaError  # noqa: TID251 - this package is the Kafka seam
from aiokafka.structs import OffsetAndMetadata  # noqa: TID251 - this package is the Kafka seam

from involvement_hub.errors import QueryError
from involvement_hub.kafka.admin import partitions_of
from involvement_hub.kafka.client import client_options
from involvement_hub.settings import Settings


@dataclass(frozen=True, slots=True)
class Record:
    """One message as read: where it sits, its key, value and headers."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to publish."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


async def read_to_end(
    settings: Settings, topic: str, *, group: str | None = None, from_start: bool = True
) -> tuple[list[Record], dict[int, int]]:
    """Every record of ``topic`` up to its end as of now, and that end per partition.

    Without ``group`` the reading starts at the beginning. With one it starts where that
    group last committed (the beginning if it never did), unless ``from_start``; nothing
    is committed: :func:`commit_positions` does that once the caller is done.
    """
    consumer = AIOKafkaConsumer(
        **client_options(settings),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id=f"hub-reader-{uuid.uuid4().hex[:6]}",
    )
    try:
        await consumer.start()
    except KafkaError as exc:
        raise QueryError(f"cannot reach Kafka at {settings.bootstrap}: {exc}") from exc
    try:
        tps = await partitions_of(settings, [topic])
        if not tps:
            return [], {}
        consumer.assign(tps)
        if group is None or from_start:
            await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[Record] = []
        remaining = {tp for tp in tps if await consumer.position(tp) < ends[tp]}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, items in batch.items():
                records.extend(
                    Record(
                        tp.topic,
                        tp.partition,
                        r.offset,
                        r.key,
                        r.value,
                        tuple(r.headers or ()),
                    )
                    for r in items
                    if r.offset < ends[tp]
                )
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return records, {tp.partition: end for tp, end in ends.items()}
    finally:
        await consumer.stop()


async def read_all(settings: Settings, topic: str) -> list[Record]:
    """Every record of ``topic`` from its start to its end as of now."""
    records, _ = await read_to_end(settings, topic)
    return records


async def read_values(settings: Settings, topic: str) -> list[bytes]:
    """The value of every record of ``topic`` up to its end, tombstones left out."""
    return [r.value for r in await read_all(settings, topic) if r.value is not None]


async def commit_positions(
    settings: Settings, topic: str, group: str, positions: Mapping[int, int]
) -> None:
    """Record, for consumer group ``group``, the next offset to read in each partition."""
    consumer = AIOKafkaConsumer(
        **client_options(settings), group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = {TopicPartition(topic, partition): end for partition, end in positions.items()}
        consumer.assign(list(tps))
        await consumer.commit({tp: OffsetAndMetadata(end, "") for tp, end in tps.items()})
    finally:
        await consumer.stop()


async def publish(settings: Settings, messages: Iterable[Outgoing]) -> int:
    """Publish ``messages`` (idempotent producer, every in-sync replica acknowledging) and
    wait until Kafka has every one. Returns how many were sent."""
    producer = AIOKafkaProducer(**client_options(settings), enable_idempotence=True, acks="all")
    await producer.start()
    try:
        futures = [
            await producer.send(m.topic, value=m.value, key=m.key, headers=list(m.headers))
            for m in messages
        ]
        for future in futures:
            await future
        return len(futures)
    finally:
        await producer.stop()
