"""A delivery batch acknowledges exactly the alerts it has handled, even when cancelled."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from involvement_hub.streaming.batches import handle_and_ack


@dataclass(frozen=True)
class Event:
    key: bytes | None
    n: int


def batch() -> list[Event]:
    return [Event(b"a", 0), Event(b"b", 1), Event(b"a", 2), Event(None, 3), Event(b"b", 4)]


async def test_every_event_is_handled_in_order_per_key_then_acknowledged() -> None:
    handled: list[int] = []
    acked: list[int] = []

    async def handle(event: Event) -> None:
        assert event.n not in acked
        await asyncio.sleep(0)
        handled.append(event.n)

    async def ack(event: Event) -> None:
        assert event.n in handled, "acknowledged before it was handled"
        acked.append(event.n)

    await handle_and_ack(batch(), handle, ack)

    assert sorted(acked) == [0, 1, 2, 3, 4]
    assert handled.index(0) < handled.index(2)
    assert handled.index(1) < handled.index(4)


async def test_a_stop_mid_batch_leaves_the_unhandled_events_unacknowledged() -> None:
    acked: list[int] = []
    stuck = asyncio.Event()
    others_done = asyncio.Event()

    async def handle(event: Event) -> None:
        if event.n == 2:  # the second alert for recipient "a" is at the mail server
            stuck.set()
            await asyncio.Event().wait()

    async def ack(event: Event) -> None:
        acked.append(event.n)
        if len(acked) == 4:
            others_done.set()

    task = asyncio.create_task(handle_and_ack(batch(), handle, ack))
    await stuck.wait()
    # Let the other recipients' deliveries finish before the stop arrives.
    await others_done.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert sorted(acked) == [0, 1, 3, 4]
    assert 2 not in acked


async def test_a_stop_before_a_keys_turn_acknowledges_nothing_of_it() -> None:
    acked: list[int] = []
    at_server = asyncio.Event()

    async def handle(event: Event) -> None:
        at_server.set()
        await asyncio.Event().wait()

    async def ack(event: Event) -> None:
        acked.append(event.n)

    task = asyncio.create_task(handle_and_ack(batch(), handle, ack))
    await at_server.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert acked == []
