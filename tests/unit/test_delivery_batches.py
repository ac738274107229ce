"""A delivery batch acknowledges exactly the alerts it has handled, in offset order per
partition, even when cancelled (streaming/batches.py says why each rule is there)."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from dataclasses import dataclass

import pytest
from involvement_hub.streaming.batches import handle_and_ack


@dataclass(frozen=True)
class Event:
    key: bytes | None
    n: int  # its offset
    partition: int = 0


def position(event: Event) -> tuple[Hashable, int]:
    return event.partition, event.n


def batch() -> list[Event]:
    return [Event(b"a", 0), Event(b"b", 1), Event(b"a", 2), Event(None, 3), Event(b"b", 4)]


async def test_every_event_is_handled_in_order_per_key_then_acknowledged_in_offset_order() -> None:
    handled: list[int] = []
    acked: list[int] = []

    async def handle(event: Event) -> None:
        assert event.n not in acked
        await asyncio.sleep(0.001 * (5 - event.n))  # later offsets finish first
        handled.append(event.n)

    async def ack(event: Event) -> None:
        assert event.n in handled, "acknowledged before it was handled"
        acked.append(event.n)

    await handle_and_ack(batch(), handle, ack, position)

    assert acked == [0, 1, 2, 3, 4]
    assert handled.index(0) < handled.index(2)
    assert handled.index(1) < handled.index(4)
    assert handled != sorted(handled)  # they did finish out of order


async def test_a_stop_mid_batch_acknowledges_only_the_handled_prefix_of_each_partition() -> None:
    acked: list[int] = []
    stuck = asyncio.Event()
    others_done = asyncio.Event()
    events = [*batch(), Event(b"c", 0, partition=1), Event(b"c", 1, partition=1)]

    async def handle(event: Event) -> None:
        if (event.partition, event.n) == (0, 2):  # recipient "a"'s second alert: at the server
            stuck.set()
            await asyncio.Event().wait()
        if (event.partition, event.n) == (1, 1):
            others_done.set()

    async def ack(event: Event) -> None:
        acked.append(event.partition * 100 + event.n)

    task = asyncio.create_task(handle_and_ack(events, handle, ack, position))
    await stuck.wait()
    await others_done.wait()
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    # Offsets 3 and 4 were delivered, but stay unacknowledged behind 2, so the commit never
    # passes 2: it is read again (3 and 4 with it, which the outbox knows were sent).
    assert sorted(acked) == [0, 1, 100, 101]


async def test_a_stop_before_a_keys_turn_acknowledges_nothing_of_it() -> None:
    acked: list[int] = []
    at_server = asyncio.Event()

    async def handle(event: Event) -> None:
        at_server.set()
        await asyncio.Event().wait()

    async def ack(event: Event) -> None:
        acked.append(event.n)

    task = asyncio.create_task(handle_and_ack(batch(), handle, ack, position))
    await at_server.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert acked == []
