"""The faults ``hub chaos`` applies, and the Kafka chores around them.

Hostile records go to the agencies' ingest topics with a plain aiokafka producer, because
the agency publisher would (rightly) refuse to send most of them. Every one of them must end
in the quarantine, never in an alert and never in a crash.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: TID251 - faults are injected below the hub's clients
from aiokafka.admin import AIOKafkaAdminClient  # noqa: TID251 - faults are injected below the hub's clients
from involvement_hub.core.messages import DeliveryOutcome
from involvement_hub.kafka import wire
from involvement_hub.kafka.client import client_options
from involvement_hub.kafka.io import read_values
from involvement_hub.kafka.topics import TopicNames
from involvement_hub.settings import Settings

from involvement_hub_devtools.localkafka import LocalKafka
from involvement_hub_devtools.processes import Child

Progress = Callable[[str], None]

# The broker's default message.max.bytes: the largest record batch it accepts.
BROKER_MAX_BATCH = 1_048_588
# Room for the batch and record headers and the key, so the record itself is accepted and
# the worker, not the broker, has to deal with it.
_BATCH_OVERHEAD = 1024
COMPRESSIONS = ("gzip", "snappy", "lz4", "zstd")


@dataclass(frozen=True, slots=True)
class Hostile:
    case: str
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


def hostile_records(valid_value: bytes, seed: int) -> tuple[Hostile, ...]:
    """One of each hostile case the ingest agent must survive (compression is separate:
    the population itself is published in batches compressed with each codec)."""
    rng = random.Random(seed)
    big = valid_value + rng.randbytes(BROKER_MAX_BATCH - _BATCH_OVERHEAD - len(valid_value))
    # Many headers and one very large one: nearly 700 KB the worker reads before the value.
    headers = tuple((f"x-hostile-{i}", rng.randbytes(2048)) for i in range(200))
    headers += (("x-hostile-huge", rng.randbytes(256 * 1024)),)
    return (
        Hostile("near-1MB record", big),
        Hostile("null value", None),
        Hostile("huge headers", valid_value, headers),
        Hostile("garbage bytes", rng.randbytes(1024)),
        # Garbage that starts like Avro single-object encoding, so it passes a magic check.
        Hostile("garbage after the Avro magic", b"\xc3\x01" + rng.randbytes(64)),
        Hostile("empty value", b""),
    )


async def send_hostile(settings: Settings, topic: str, records: tuple[Hostile, ...]) -> None:
    producer = AIOKafkaProducer(
        **client_options(settings),
        acks="all",
        max_request_size=BROKER_MAX_BATCH,
        request_timeout_ms=30_000,
    )
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(
                topic,
                record.value,
                key=b"HOSTILE-" + record.case.encode(),
                headers=list(record.headers),
            )
    finally:
        await producer.stop()


async def rewind_group(settings: Settings, group: str) -> int:
    """Commit the earliest offset of every partition the group has committed; returns how
    many. The group must have no live member (the worker is stopped)."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    partitions = [TopicPartition(tp.topic, tp.partition) for tp in committed]
    if not partitions:
        return 0
    consumer = AIOKafkaConsumer(
        **client_options(settings), group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        earliest = await consumer.beginning_offsets(partitions)
        await consumer.commit(dict(earliest))
    finally:
        await consumer.stop()
    return len(partitions)


async def last_outcomes(settings: Settings) -> dict[str, str]:
    """Each alert's last delivery status on ``hub.delivery`` (an alert's outcomes share a
    partition, so the last one read is the last one written)."""
    last: dict[str, str] = {}
    for value in await read_values(settings, TopicNames.from_settings(settings).delivery):
        outcome = wire.loads(DeliveryOutcome, value)
        last[outcome.alert_id] = outcome.status
    return last


def kill_broker(settings: Settings) -> int | None:
    """``kill -9`` the local broker; returns its pid, or None if it was not running."""
    pid = LocalKafka(settings).status().pid
    if pid is None:
        return None
    os.kill(pid, signal.SIGKILL)
    # If this process started the broker it is our child: reap it, or it stays a zombie
    # that `hub kafka start` would take for a live broker.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    return pid


def start_broker(settings: Settings, log: Path, timeout: float = 120) -> None:
    """``hub kafka start`` as an operator would run it: same ports, same data."""
    child = Child(["kafka", "start"], settings, log).start()
    assert child.process is not None
    try:
        code = child.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.process.kill()
        child.process.wait()
        raise
    if code != 0:
        raise RuntimeError(f"hub kafka start exited with {code}; see {log}")


# mode (Faust's service library) logs this when an agent, or any service, crashes.
_CRASHED = re.compile(r"Crashed reason=")


def runs_with_logged_crash(log: Path, starts: list[int]) -> set[int]:
    """Which worker runs (each from its offset in the shared log) logged a crash.

    One incident logs a line for each service it brings down; counting runs, not lines,
    counts it once."""
    if not log.exists():
        return set()
    text = log.read_bytes()
    ends = [*starts[1:], len(text)]
    return {
        i
        for i, (start, end) in enumerate(zip(starts, ends, strict=True))
        if _CRASHED.search(text[start:end].decode("utf-8", errors="replace"))
    }


_LEVEL = re.compile(r"\[(ERROR|CRITICAL)\] (.*)")


def logged_errors(log: Path, limit: int = 12) -> list[str]:
    """The distinct ERROR and CRITICAL lines of a worker's log (no timestamps, pids or
    offsets, so one cause repeated is one line), for the JSON report."""
    if not log.exists():
        return []
    seen: dict[str, None] = {}
    for line in log.read_text(errors="replace").splitlines():
        found = _LEVEL.search(line)
        if found:
            text = re.sub(
                r"\[\d+\]@\d+|\bpid \d+|\(\d+@0x[0-9a-f]+\)|0x[0-9a-f]+", "", found.group(0)
            )[:300]
            seen.setdefault(text, None)
    return list(seen)[:limit]
