"""``hub publish`` keeps the file's order across agencies: one agency's consecutive lines go
as one batch, and the next batch is sent only once the broker has acknowledged the last.
The first broker error stops it, with one reason, within a bounded wait.

No broker here: a recording publisher stands in for the agency producer, and its sends are
acknowledged only when the test says so.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError  # noqa: TID251 - tests write and read raw records
from involvement_hub.cli import publish
from involvement_hub.cli.publish import LineError, Prepared, Publisher, publish_prepared
from involvement_hub.errors import PublishError
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

    async def opener(agency: str, settings: Settings) -> Publisher:
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


def _acknowledging(agency: str, log: list[str], fail: frozenset[bytes] = frozenset()) -> Recording:
    """A publisher whose sends are acknowledged at once, or refused for values in ``fail``."""
    publisher = Recording(agency, log)
    original = publisher.send_encoded

    async def send_and_answer(value: bytes, key: bytes) -> asyncio.Future[Any]:
        future = await original(value, key)
        if value in fail:
            future.set_exception(KafkaTimeoutError("no leader"))
        else:
            future.set_result(None)
        return future

    publisher.send_encoded = send_and_answer  # type: ignore[method-assign]
    return publisher


async def test_a_broker_error_stops_publishing_with_one_reason() -> None:
    log: list[str] = []
    opened: list[str] = []

    async def opener(agency: str, settings: Settings) -> Publisher:
        opened.append(agency)
        if agency == "school":
            raise PublishError("topic ingest.school does not exist")
        return _acknowledging(agency, log)

    items: list[Prepared | LineError] = [
        _item(1, "police"),
        _item(2, "school"),
        LineError(3, "not valid JSON"),
        _item(4, "police"),
        _item(5, "school"),
    ]
    report = await publish_prepared(items, Settings.from_env({}), open_publisher=opener)

    assert report.sent == 1
    assert report.stopped == LineError(2, "topic ingest.school does not exist")
    assert report.unsent == 3
    # The bad line is still reported as such; the lines after the stop are not, one by one.
    assert report.errors == [LineError(3, "not valid JSON")]
    assert report.not_sent == 4
    assert opened == ["police", "school"]
    assert [e for e in log if e.startswith("send")] == ["send police L1"]
    assert "stop police" in log


async def test_a_refused_send_stops_after_its_run_is_answered() -> None:
    log: list[str] = []

    async def opener(agency: str, settings: Settings) -> Publisher:
        return _acknowledging(agency, log, fail=frozenset({b"L1"}))

    items: list[Prepared | LineError] = [_item(1, "police"), _item(2, "police"), _item(3, "school")]
    report = await publish_prepared(items, Settings.from_env({}), open_publisher=opener)

    assert report.sent == 1  # line 2 was acknowledged after line 1 was refused
    assert report.stopped is not None
    assert report.stopped.line == 1
    assert report.stopped.reason.startswith("the broker refused it (KafkaTimeoutError")
    assert report.unsent == 2
    assert "send school L3" not in log


async def test_a_broker_that_stops_acknowledging_stops_publishing_within_the_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log: list[str] = []
    stopping = asyncio.Event()

    class Hanging(Recording):
        async def stop(self) -> None:
            # A producer flushing to a broker that is gone: it would wait for ever.
            stopping.set()
            await asyncio.Future()

    async def opener(agency: str, settings: Settings) -> Publisher:
        return Hanging(agency, log)

    monkeypatch.setattr(publish, "CLOSE_WAIT_S", 0.01)
    items: list[Prepared | LineError] = [_item(1, "police"), _item(2, "school")]
    report = await publish_prepared(
        items, Settings.from_env({}), open_publisher=opener, broker_wait_s=0.01
    )

    assert report.sent == 0
    assert report.stopped == LineError(1, "the broker did not acknowledge it within 0.01 s")
    assert report.unsent == 2
    assert stopping.is_set()
    assert "send school L2" not in log


async def test_a_broker_that_never_answers_is_given_up_within_the_wait() -> None:
    # A socket that accepts connections (the kernel completes the handshake) and never
    # answers a request: the real agency producer, against a broker that is hung.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        settings = Settings.from_env(
            {"HUB_KAFKA_BOOTSTRAP": f"127.0.0.1:{silent.getsockname()[1]}"}
        )
        report = await publish_prepared(
            [_item(1, "northshire-police")], settings, broker_wait_s=0.5
        )
    finally:
        silent.close()

    assert report.stopped == LineError(1, f"no answer from Kafka at {settings.bootstrap}")
    assert report.unsent == 1
