"""``hub publish`` keeps the file's order across agencies: one agency's consecutive lines go
as one batch, and the next batch is sent only once the broker has acknowledged the last.

No broker here: a recording publisher stands in for the agency producer, and its sends are
acknowledged only when the test says so.
"""

from __future__ import annotations

import asyncio
from typing import Any

from involvement_hub.cli.publish import LineError, Prepared, Publisher, publish_prepared
from involvement_hub.settings import Settings


class Recording:
    """Records sends and leaves each one unacknowledged until ``ack_all``."""

    def __init__(self, agency: str, log: list[str]) -> None:
        self.agency = agency
        self.log = log
        self.futures: list[asyncio.Future[Any]] = []

    async def send_encoded(self, value: bytes, key: bytes) -> asyncio.Future[Any]:
        self.log.append(f"send {self.agency} {value.decode()}")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future

    def ack_all(self) -> None:
        for future in self.futures:
            if not future.done():
                self.log.append(f"ack {self.agency}")
                future.set_result(None)

    async def stop(self) -> None:
        self.log.append(f"stop {self.agency}")


def _item(line: int, agency: str) -> Prepared:
    return Prepared(line, agency, f"L{line}".encode(), b"k")


async def test_a_batch_goes_only_after_the_previous_one_is_acknowledged() -> None:
    log: list[str] = []
    publishers: dict[str, Recording] = {}

    async def opener(agency: str, settings: Settings) -> Publisher | str:
        publishers[agency] = Recording(agency, log)
        return publishers[agency]

    items: list[Prepared | LineError] = [
        _item(1, "police"),
        _item(2, "police"),
        _item(3, "school"),
        LineError(4, "not valid JSON"),
        _item(5, "police"),
    ]
    task = asyncio.create_task(
        publish_prepared(items, Settings.from_env({}), open_publisher=opener)
    )

    async def until(text: str) -> None:
        while text not in log:
            assert not task.done(), log
            await asyncio.sleep(0)

    await until("send police L2")
    assert not any(entry.startswith("send school") for entry in log)
    publishers["police"].ack_all()
    await until("send school L3")
    assert "send police L5" not in log
    publishers["school"].ack_all()
    await until("send police L5")
    publishers["police"].ack_all()
    report = await task
    assert report.sent == 4
    assert [e.line for e in report.errors] == [4]
    sends = [entry for entry in log if entry.startswith("send")]
    assert sends == ["send police L1", "send police L2", "send school L3", "send police L5"]
    assert log.count("stop police") == 1


async def test_an_agency_that_cannot_publish_fails_only_its_own_lines() -> None:
    log: list[str] = []

    async def opener(agency: str, settings: Settings) -> Publisher | str:
        if agency == "school":
            return "not sent: topic ingest.school does not exist"
        publisher = Recording(agency, log)
        original = publisher.send_encoded

        async def send_and_ack(value: bytes, key: bytes) -> asyncio.Future[Any]:
            future = await original(value, key)
            future.set_result(None)
            return future

        publisher.send_encoded = send_and_ack  # type: ignore[method-assign]
        return publisher

    items: list[Prepared | LineError] = [_item(1, "school"), _item(2, "police"), _item(3, "school")]
    report = await publish_prepared(items, Settings.from_env({}), open_publisher=opener)
    assert report.sent == 1
    assert [(e.line, e.reason.startswith("not sent: topic")) for e in report.errors] == [
        (1, True),
        (3, True),
    ]
