"""Reading and writing real Kafka topics from the integration tests."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from involvement_hub.cli.publish import PublishReport, prepare_lines, publish_prepared
from involvement_hub.config import load_config
from involvement_hub.core.ordered import APPLIED
from involvement_hub.kafka.topics import state_changelog
from involvement_hub.settings import Settings


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


async def settle_and_consume(
    bootstrap: str, topic: str, *, expected: int, quiet: float = 3.0
) -> list[Any]:
    """All records of ``topic`` once ``expected`` arrived and then nothing more for ``quiet`` s.

    Used to check that *no more* than the expected records are produced.
    """
    await consume(bootstrap, topic, count=expected)
    await asyncio.sleep(quiet)
    return await consume(bootstrap, topic, count=expected + 1, timeout=quiet)


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


APPLIED_KEY = json.dumps(APPLIED).encode()
