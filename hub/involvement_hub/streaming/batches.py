"""A batch of alerts, delivered in order per recipient, each acknowledged once handled.

Faust's ``Stream.take_events`` acknowledges a whole batch in a ``finally`` around its
``yield``: when a worker stops (a SIGTERM, a deploy) while a batch is being delivered,
the agent's task is cancelled, the generator is closed, and every event of the batch is
acknowledged, the ones not yet delivered too. The final commit then moves past them and
no worker ever delivers them (measured by ``hub chaos --long``: 5-6 of 2,223 emails lost
over ten SIGTERM restarts). The delivery agent therefore takes batches with
``noack_take`` and acknowledges each event here, after its handling has finished; a
cancelled batch leaves the rest unacknowledged, to be delivered after the restart.

This module is free of Faust so the rule can be tested without a broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar


class Keyed(Protocol):
    @property
    def key(self) -> bytes | None: ...


E = TypeVar("E", bound=Keyed)


async def handle_and_ack(
    events: Sequence[E],
    handle: Callable[[E], Awaitable[None]],
    ack: Callable[[E], Awaitable[object]],
) -> None:
    """Handle events, in order within each key and concurrently across keys.

    Each event is acknowledged after ``handle`` returns (``handle`` deals with its own
    errors); an event whose handling was cancelled, and every event after it for that
    key, is never acknowledged.
    """
    by_key: dict[bytes, list[E]] = {}
    for event in events:
        by_key.setdefault(event.key or b"", []).append(event)

    async def in_order(group: list[E]) -> None:
        for event in group:
            await handle(event)
            await ack(event)

    await asyncio.gather(*(in_order(group) for group in by_key.values()))
