"""A batch of alerts, delivered in order per recipient, acknowledged in offset order.

Two rules, each learnt from a lost email:

- **Only what was handled is acknowledged.** Faust's ``Stream.take_events`` acknowledges a
  whole batch in a ``finally`` around its ``yield``: when a worker stops (a SIGTERM, a
  deploy) while a batch is being delivered, every event of the batch is acknowledged, the
  ones not yet delivered too, and the final commit moves past them (measured by
  ``hub chaos --long``: 5-6 of 2,223 emails lost over ten SIGTERM restarts). The delivery
  agent takes batches with ``noack_take`` and acknowledges each event here.
- **Acknowledgements go in offset order, per partition.** Alerts to different recipients
  are delivered concurrently, so they finish out of order; but Faust's commit bookkeeping
  (faust-streaming 0.15, ``Consumer._new_offset``) commits past a single unacknowledged
  message at the committed offset when later ones are acknowledged (its gap check is off
  by one). An alert still at a slow mail server when its neighbours finished was then
  committed past, and lost if the worker stopped before it was sent (seen under heavy
  load: 1 of 78 emails in the fault harness). An event is therefore acknowledged only
  once every earlier event of its partition in the batch is: a stop leaves a handled
  event unacknowledged behind an unhandled one, and it is read again after the restart,
  where the outbox knows it was sent (no second email).

This module is free of Faust so the rules can be tested without a broker.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Protocol, TypeVar


class Keyed(Protocol):
    @property
    def key(self) -> bytes | None: ...


E = TypeVar("E", bound=Keyed)


async def handle_and_ack(
    events: Sequence[E],
    handle: Callable[[E], Awaitable[None]],
    ack: Callable[[E], Awaitable[object]],
    position: Callable[[E], tuple[Hashable, int]],
) -> None:
    """Handle events, in order within each key and concurrently across keys, and
    acknowledge each once it and every earlier event of its partition are handled.

    ``position`` gives an event's partition and offset. ``handle`` deals with its own
    errors; an event whose handling was cancelled, every event after it for its key, and
    every event after it in its partition, are never acknowledged.
    """
    by_key: dict[bytes, list[E]] = {}
    waiting: dict[Hashable, deque[E]] = {}
    for event in events:
        by_key.setdefault(event.key or b"", []).append(event)
    for event in sorted(events, key=lambda e: position(e)[1]):
        waiting.setdefault(position(event)[0], deque()).append(event)
    handled: set[int] = set()

    async def release(partition: Hashable) -> None:
        queue = waiting[partition]
        while queue and id(queue[0]) in handled:
            # Taken off before the await: another key's turn cannot acknowledge it again.
            await ack(queue.popleft())

    async def in_order(group: list[E]) -> None:
        for event in group:
            await handle(event)
            handled.add(id(event))
            await release(position(event)[0])

    await asyncio.gather(*(in_order(group) for group in by_key.values()))
