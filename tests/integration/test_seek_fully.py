"""After a rebalance every partition the hub consumes is read again from its committed
offset -- or from its beginning when it has none (``streaming/consumer_state.seek_fully``)."""

from __future__ import annotations

import functools
from pathlib import Path

from aiokafka import TopicPartition  # noqa: TID251 - tests write and read raw records
from involvement_hub.config import load_config
from involvement_hub.delivery.mailer import MemoryMailer
from involvement_hub.observability.metrics import create_metrics
from involvement_hub.settings import Settings
from involvement_hub.streaming.app import HubApp
from involvement_hub.streaming.consumer_state import seek_fully

INGEST = "ingest.northshire-police"
ALERTS = "hub.alerts"
CHANGELOG = "involvement-hub-outbox-changelog"


class Consumer:
    """The part of Faust's consumer that ``seek_fully`` uses, after Faust's own seek."""

    def __init__(self, committed: dict[TopicPartition, int | None], earliest: int) -> None:
        self._committed_offset = committed
        self.earliest = earliest
        self.calls: list[object] = []

    def assignment(self) -> set[TopicPartition]:
        return set(self._committed_offset)

    async def seek_to_committed(self) -> None:  # Faust's perform_seek, as far as it goes
        self.calls.append("faust's seek")

    async def earliest_offsets(self, *tps: TopicPartition) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, self.earliest)

    async def seek_wait(self, offsets: dict[TopicPartition, int]) -> None:
        self.calls.extend((tp.topic, tp.partition, offset) for tp, offset in offsets.items())


async def test_partitions_without_a_committed_offset_are_read_again_from_their_start() -> None:
    consumer = Consumer(
        {
            TopicPartition(INGEST, 0): 17,  # Faust itself seeks back to 17
            TopicPartition(INGEST, 2): None,  # kept through a rebalance, never committed
            TopicPartition(ALERTS, 1): None,
            TopicPartition(ALERTS, 3): 0,  # Faust records a committed 0 as None too
            TopicPartition(CHANGELOG, 2): None,  # table recovery positions its own
        },
        earliest=4,
    )

    await seek_fully(consumer, consumer.seek_to_committed, frozenset({INGEST, ALERTS}))

    assert consumer.calls[0] == "faust's seek"
    assert sorted(consumer.calls[1:]) == [(ALERTS, 1, 4), (ALERTS, 3, 4), (INGEST, 2, 4)]


async def test_nothing_more_is_sought_when_every_partition_has_a_committed_offset() -> None:
    consumer = Consumer({TopicPartition(INGEST, 0): 3, TopicPartition(ALERTS, 0): 9}, 0)

    await seek_fully(consumer, consumer.seek_to_committed, frozenset({INGEST, ALERTS}))

    assert consumer.calls == ["faust's seek"]


def test_the_worker_app_seeks_with_it(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    hub = HubApp(settings, load_config(settings), create_metrics(), MemoryMailer())
    hub.seek_fully_after_rebalances()
    consumer = hub.app.consumer
    try:
        seek = consumer.perform_seek
        assert isinstance(seek, functools.partial)
        assert seek.func is seek_fully
        assert seek.args[0] is consumer
        names = {*settings.agencies, "identity", "alerts"}
        assert {t.rsplit(".", 1)[-1] for t in seek.args[2]} == names
    finally:
        # Nothing ran: close the loops the consumer's thread made, or they leak.
        consumer._thread.thread_loop.close()
        consumer._thread.parent_loop.close()
