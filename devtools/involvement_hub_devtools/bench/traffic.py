"""Kafka messages per input event, by topic, for ``hub bench``'s ingest run.

Every message a Faust stage receives, every table write (one changelog message) and every
message it sends goes through Faust's per-message machinery, so their number per input
event is what bounds the hub's throughput (docs/performance.md, "What limits
throughput"). They are counted from the topics' end offsets, read before the population
is published, before the worker starts and after it has delivered everything:

* produced by the hub: what each of its topics gained while the worker ran -- the hub's
  own topics (``<topic prefix>hub.*``) and its Faust topics (``<app id>-*``: table
  changelogs, Faust's internal ones);
* consumed by the hub: what each topic its agents read gained over the whole run (the
  worker reads them from the start and drains them), and each changelog's length when the
  worker started (a worker recovers a table by reading its whole changelog).

Topics are the benchmark's own and fresh, and nothing but the worker writes to them
while it runs, so the differences are the hub's.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer  # noqa: TID251 - the baselines measure aiokafka itself
from aiokafka.admin import AIOKafkaAdminClient  # noqa: TID251 - the baselines measure aiokafka itself
from involvement_hub.kafka.admin import partitions_of
from involvement_hub.kafka.client import client_options
from involvement_hub.settings import Settings

Offsets = Mapping[str, int]


async def end_offsets(settings: Settings, prefixes: tuple[str, ...]) -> dict[str, int]:
    """The end offset of every topic whose name starts with one of ``prefixes``, summed
    over its partitions (the number of messages it ever held)."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        topics = sorted(t for t in await admin.list_topics() if t.startswith(prefixes))
    finally:
        await admin.close()
    partitions = await partitions_of(settings, topics)
    if not partitions:
        return {}
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    totals = dict.fromkeys(topics, 0)
    for tp, end in ends.items():
        totals[tp.topic] += end
    return totals


async def partition_ends(settings: Settings, topics: list[str]) -> dict[int, int]:
    """End offsets by partition number, summed over ``topics``."""
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(await partitions_of(settings, topics))
    finally:
        await consumer.stop()
    totals: dict[int, int] = {}
    for tp, end in ends.items():
        totals[tp.partition] = totals.get(tp.partition, 0) + end
    return totals


@dataclass(frozen=True, slots=True)
class Traffic:
    """Messages per input event, by topic."""

    produced: dict[str, float]
    consumed: dict[str, float]

    @property
    def operations(self) -> float:
        """Faust message operations per input event: received, plus written and sent."""
        return sum(self.produced.values()) + sum(self.consumed.values())


def traffic(
    events: int,
    at_start: Offsets,
    at_worker_start: Offsets,
    at_end: Offsets,
    consumed_topics: Collection[str],
) -> Traffic:
    """Per input event: what each topic gained while the worker ran (produced), and what
    each topic in ``consumed_topics`` gained over the whole run plus each changelog's
    length at the worker's start (consumed). Topics with nothing are left out."""

    def gained(before: Offsets, topic: str) -> int:
        return at_end.get(topic, 0) - before.get(topic, 0)

    produced = {t: gained(at_worker_start, t) for t in at_end}
    consumed = {t: gained(at_start, t) for t in consumed_topics}
    for topic, length in at_worker_start.items():
        if topic.endswith("-changelog"):
            consumed[topic] = consumed.get(topic, 0) + length
    return Traffic(
        produced={t: n / events for t, n in sorted(produced.items()) if n > 0},
        consumed={t: n / events for t, n in sorted(consumed.items()) if n > 0},
    )
