"""What the hub reads of Faust's consumer that Faust offers no public way to read.

Kept here, in one place, so that an upgrade of faust-streaming has one file to check
(the versions this was written against are pinned in pyproject.toml, and the integration
tests -- rebalance, recovery, the fault harness -- exercise every use):

- **The committed offset of a partition** (``Consumer._committed_offset``). Faust seeds it
  from the broker when a partition is assigned and moves it at every commit. The public
  alternatives fall short: the ``Monitor`` sensor's ``tp_committed_offsets`` records only
  this worker's own commits (empty after a rebalance, when another worker committed), and
  aiokafka's ``committed()`` asks the broker at every call. Used for lag, stall detection
  (``/health/live``), the ingest watermarks and the seek after a rebalance.
- **When the consumer last received a fetch response for a partition**
  (``AIOKafkaConsumer.last_poll_timestamp``, public in aiokafka, but Faust keeps its
  aiokafka consumer in a private thread object). The ingest watermarks claim that moment.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Set
from typing import Any


def committed_offset(consumer: Any, tp: Any) -> int | None:
    """The offset Faust last committed for ``tp`` (or found committed when assigned it)."""
    offset = consumer._committed_offset.get(tp)
    return None if offset is None else int(offset)


def last_poll_ms(consumer: Any, tp: Any) -> int | None:
    """When a fetch response for ``tp`` last arrived, in milliseconds since the epoch."""
    polled = consumer._thread._ensure_consumer().last_poll_timestamp(tp)
    return None if polled is None else int(polled)


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
        if tp.topic in topics and not committed_offset(consumer, tp)
    ]
    if unread:
        earliest = await consumer.earliest_offsets(*unread)
        await consumer.seek_wait({tp: earliest[tp] for tp in unread})
