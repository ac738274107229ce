"""A broker outage in the worker's log: one line when it starts, progress while it lasts,
one when it ends -- and nothing else held back."""

from __future__ import annotations

import logging

import pytest
from involvement_hub.streaming.outage_log import OutageLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(name: str, text: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, text, None, None)


CONNECT = "Unable connect to node with id 1: [Errno 111] Connect call failed ('127.0.0.1', 19092)"


def shown(outage: OutageLog, rec: logging.LogRecord) -> str | None:
    return rec.getMessage() if outage.filter(rec) else None


def test_an_outage_is_one_line_to_start_progress_every_30_s_and_one_to_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    outage = OutageLog(clock=clock)
    lines = []
    for step in range(3300):  # what aiokafka logged for a 30 s outage of one broker
        clock.now = 1000.0 + step * 0.02
        name = ("aiokafka.conn", "aiokafka.cluster", "aiokafka.consumer.fetcher")[step % 3]
        lines.append(shown(outage, record(name, CONNECT)))
    visible = [line for line in lines if line is not None]
    assert visible[0].startswith("Kafka unreachable: Unable connect to node")
    assert len(visible) == 1 + 2  # the start, then progress at 30 s and 60 s
    assert visible[1].startswith("Kafka still unreachable after 30 s")
    clock.now += 5
    outage.tick()  # errors stopped only 5 s ago: not over yet
    assert not caplog.records
    clock.now += 10
    with caplog.at_level(logging.WARNING):
        outage.tick()
    assert [r.getMessage() for r in caplog.records] == [
        "Kafka reachable again: connection errors stopped after 66 s (3299 not shown)"
    ]
    # A second outage starts with a line of its own.
    assert shown(outage, record("aiokafka.conn", CONNECT)) is not None


def test_nothing_but_connection_errors_is_held_back() -> None:
    outage = OutageLog(clock=Clock())
    assert shown(outage, record("aiokafka.conn", CONNECT)) is not None  # the start
    assert shown(outage, record("aiokafka.conn", CONNECT)) is None
    assert shown(outage, record("involvement_hub.streaming.app", "stage ordered failed"))
    assert shown(outage, record("aiokafka.consumer", "some other failure: CorruptRecord"))
    assert shown(outage, record("aiokafka.conn", CONNECT, logging.INFO))
