"""Writing, reading and waiting on real Kafka topics from the integration and e2e tiers."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: TID251 - tests write and read raw records
from aiokafka.admin import AIOKafkaAdminClient  # noqa: TID251 - tests write and read raw records
from involvement_hub.cli.publish import PublishReport, prepare_lines, publish_prepared
from involvement_hub.config import load_config
from involvement_hub.core.ordered import APPLIED
from involvement_hub.kafka.admin import partitions_of
from involvement_hub.kafka.client import client_options
from involvement_hub.kafka.io import read_all
from involvement_hub.kafka.topics import TopicNames, state_changelog
from involvement_hub.settings import Settings

__all__ = ["read_all"]  # every record of a topic, as of now: the hub's own reader

APPLIED_KEY = json.dumps(APPLIED).encode()
STABLE_S = 1.0  # committed == end must hold this long: a commit tick can trail a send


async def consume(bootstrap: str, topic: str, *, count: int, timeout: float = 60.0) -> list[Any]:  # noqa: ASYNC109
    """At least ``count`` records from the start of ``topic`` (fewer if time runs out)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"test-reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for partition_records in batch.values():
                records.extend(partition_records)
    finally:
        await consumer.stop()
    return records


async def produce_raw(
    bootstrap: str, topic: str, values: list[bytes], key: bytes = b"test"
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()


async def publish_records(settings: Settings, records: list[dict[str, Any]]) -> PublishReport:
    """Publish JSON-form records exactly as ``hub publish`` does."""
    registry = load_config(settings).registry
    lines = [json.dumps(r) for r in records]
    items = list(prepare_lines(lines, registry, settings.agencies))
    return await publish_prepared(items, settings)


async def routed(settings: Settings, count: int, timeout: float = 60.0) -> int:  # noqa: ASYNC109
    """Wait until the ordered stage has handled ``count`` identity-topic positions (each
    writes one ``applied`` mark to the state changelog); the number seen."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=None)
    await consumer.start()
    seen = 0
    deadline = time.monotonic() + timeout
    try:
        consumer.assign([TopicPartition(state_changelog(settings), 0)])
        await consumer.seek_to_beginning()
        while seen < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            seen += sum(1 for rs in batch.values() for r in rs if r.key == APPLIED_KEY)
    finally:
        await consumer.stop()
    return seen


def consumed_topics(settings: Settings) -> list[str]:
    """The topics a worker's consumer group reads: every ingest topic, identity, alerts."""
    names = TopicNames.from_settings(settings)
    return [*names.all_ingest, names.identity, names.alerts]


async def uncommitted(
    settings: Settings, topics: list[str] | None = None
) -> tuple[list[str], dict[TopicPartition, int]]:
    """The partitions of ``topics`` (by default all the worker consumes) that the worker's
    group has not committed to their end, as ``topic[partition] committed/end``; and the
    end of every partition."""
    tps = await partitions_of(settings, topics or consumed_topics(settings))
    admin = AIOKafkaAdminClient(**client_options(settings))
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(settings.app_id)
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
        await admin.close()
    behind = [
        f"{tp.topic}[{tp.partition}] {committed[tp].offset if tp in committed else '-'}/{end}"
        for tp, end in ends.items()
        if end > 0 and (tp not in committed or committed[tp].offset < end)
    ]
    return behind, ends


async def settle(settings: Settings, timeout: float = 60.0) -> None:  # noqa: ASYNC109
    """Wait until the worker's consumer group has committed every message it consumes,
    and that has held, with no new message, for ``STABLE_S``. Faust flushes an event's
    outputs before it commits the event's offset, so then no output is on its way."""
    topics = consumed_topics(settings)
    assert len(await partitions_of(settings, topics)) >= len(topics), "missing topics"
    deadline = time.monotonic() + timeout
    done_since: float | None = None
    last_ends: dict[TopicPartition, int] = {}
    lagging: list[str] = []
    while time.monotonic() < deadline:
        lagging, ends = await uncommitted(settings, topics)
        if lagging:
            done_since = None
        elif ends != last_ends or done_since is None:
            done_since = time.monotonic()
        elif time.monotonic() - done_since >= STABLE_S:
            return
        last_ends = ends
        await asyncio.sleep(0.2)
    raise AssertionError(f"worker did not catch up in {timeout:.0f}s: {lagging}")


async def new_records(settings: Settings, topic: str, seen: set[tuple[int, int]]) -> list[Any]:
    """The records of ``topic`` not in ``seen`` (partition, offset), which they join."""
    fresh = []
    for record in await read_all(settings, topic):
        where = (record.partition, record.offset)
        if where not in seen:
            seen.add(where)
            fresh.append(record)
    return fresh


async def settled_records(settings: Settings, topic: str, *, expected: int) -> list[Any]:
    """Every record of ``topic`` once ``expected`` of them arrived and the worker settled
    (:func:`settle`): nothing more is on its way then, so a record too many is here too."""
    await consume(settings.bootstrap, topic, count=expected)
    await settle(settings)
    return await read_all(settings, topic)
