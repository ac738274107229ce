"""Record batches the consumer cannot read are skipped, whole, instead of crashing the worker.

A batch that cannot be decompressed (a codec bug, a damaged payload) or fails its CRC
raises inside aiokafka's fetcher, which Faust calls outside every agent: the worker
crashes, restarts at the same committed offset, and crashes again, for ever. Worse,
aiokafka drops the *whole* fetch response when one batch in it fails, so the records
before the bad batch never arrive either, and the committed offset never moves.

aiokafka unpacks a fetch response batch by batch in ``PartitionRecords._unpack_records``.
:func:`install` wraps it so each batch is unpacked on its own: a batch that raises is
reported (topic, partition, first and last offset, the exception's type) and skipped, and
the records around it flow. Faust sees a gap in the offsets and commits past it. This
relies on aiokafka's private structure: aiokafka is pinned below 0.15 and
tests/integration/test_poison.py makes a batch undecodable to check it still holds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, Final

from aiokafka.consumer.fetcher import PartitionRecords  # noqa: TID251 - this package is the Kafka seam

log = logging.getLogger(__name__)

# (topic, partition, first offset, last offset, exception)
Reporter = Callable[[str, int, int, int, Exception], None]

_ORIGINAL: Final = PartitionRecords._unpack_records
_reporter: list[Reporter] = []


class _OneBatch:
    """The aiokafka records interface over one batch, for the original unpacker."""

    def __init__(self, batch: Any) -> None:
        self._batch: Any = batch

    def has_next(self) -> bool:
        return self._batch is not None

    def next_batch(self) -> Any:
        batch, self._batch = self._batch, None
        return batch


def _unpack_each_batch(self: Any) -> Iterator[Any]:
    records = self._records
    try:
        while records.has_next():
            # A batch whose header cannot be read has no known end to skip to: that still
            # raises (the broker validates every batch it accepts, so this needs a disk
            # that lies).
            batch = records.next_batch()
            first = getattr(batch, "base_offset", self.next_fetch_offset)
            self._records = _OneBatch(batch)
            try:
                yield from _ORIGINAL(self)
            except Exception as exc:
                # Whatever this batch's bytes make the decoder do, it is about this batch.
                last = batch.next_offset - 1
                self.next_fetch_offset = max(self.next_fetch_offset, batch.next_offset)
                for report in _reporter:
                    report(self._tp.topic, self._tp.partition, first, last, exc)
    finally:
        self._records = records


def install(report: Reporter) -> None:
    """Skip unreadable batches in every consumer of this process, telling ``report``."""
    _reporter[:] = [report]
    PartitionRecords._unpack_records = _unpack_each_batch
