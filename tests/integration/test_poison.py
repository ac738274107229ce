"""No poison pills: whatever bytes an agency gets into its ingest topic, the worker stays up,
sets the record aside with a reason, and routes everything around it.

One worker, one partition (every record has the same key), and between ordinary events:
a record just under the broker's size limit, batches compressed with each of Kafka's
codecs, a null value, ~100 KB of headers and garbage bytes.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer  # noqa: TID251 - tests write and read raw records
from involvement_hub.cli.publish import Prepared, prepare_lines
from involvement_hub.config import load_config
from involvement_hub.kafka.topics import TopicNames
from involvement_hub.settings import Settings
from support.records import involvement, person, practitioner
from support.topics import consume
from support.waiting import eventually
from support.worker import WorkerProcess

SOCIAL_CARE = "northshire-social-care"
SCHOOL = "oakfield-primary"
KEY = b"CIN-POISON"
# The broker's default message.max.bytes is 1,048,588 for a whole record batch.
NEARLY_BROKER_LIMIT = 1_048_000
CODECS = ("gzip", "snappy", "lz4", "zstd")


def _encoded(settings: Settings, record: dict[str, Any]) -> bytes:
    registry = load_config(settings).registry
    (prepared,) = prepare_lines([json.dumps(record)], registry, settings.agencies)
    assert isinstance(prepared, Prepared)
    return prepared.value


def _child_events(settings: Settings, n: int) -> tuple[bytes, bytes]:
    """A lead's involvement and then a school's: the lead is alerted that the school joined."""
    child = person(n)
    lead = practitioner(f"SW-{n}", "Alex Morgan", "social-care.northshire")
    dsl = practitioner(f"DSL-{n}", "Sam Okafor", SCHOOL, role="designated safeguarding lead")
    first = involvement(SOCIAL_CARE, f"CIN-{n}", child, lead, involvement_id=f"SC-{n}", lead=True)
    second = involvement(
        SOCIAL_CARE, f"CIN-{n}", child, dsl, involvement_id=f"SC-{n}-b", category="EDUCATION"
    )
    return _encoded(settings, first), _encoded(settings, second)


async def _wait_for(what: str, check: Callable[[], Awaitable[bool]], worker: WorkerProcess) -> None:
    async def alive_and_done() -> bool:
        assert worker.process is not None
        assert worker.process.poll() is None, f"worker died:\n{worker.log_tail()}"
        return await check()

    await eventually(what, alive_and_done, 90, worker.log_tail)


def _headers(record: Any) -> dict[str, str]:
    return {k: v.decode() for k, v in record.headers or ()}


async def test_no_record_an_agency_can_write_stops_the_worker(worker: WorkerProcess) -> None:
    settings = worker.settings
    worker.start()
    names = TopicNames.from_settings(settings)
    topic = names.ingest(SOCIAL_CARE)
    expected: dict[int, str] = {}  # offset -> quarantine reason
    valid: list[bytes] = []

    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, max_request_size=2**21)
    compressed = {
        codec: AIOKafkaProducer(bootstrap_servers=settings.bootstrap, compression_type=codec)
        for codec in CODECS
    }
    for p in (producer, *compressed.values()):
        await p.start()
    try:

        async def send(
            value: bytes | None, reason: str | None = None, key: bytes | None = KEY, **kw: Any
        ) -> int:
            meta = await producer.send_and_wait(topic, value=value, key=key, **kw)
            if reason:
                expected[meta.offset] = reason
            elif value is not None:
                valid.append(value)
            return int(meta.offset)

        before_lead, before_school = _child_events(settings, 1)
        await send(before_lead)
        await send(before_school)
        big = await send(b"\xc3\x01" + b"\x00" * (NEARLY_BROKER_LIMIT - 2), "too_large")
        await send(None, "empty_value")
        # No key and zero bytes (aiokafka cannot send null and null; a Java client can):
        # the note must still have something, or the hub's own producer refuses it.
        await send(b"", "empty_value", key=None)
        await send(b"not avro", "bad_magic", headers=[("trace", b"t" * 100_000), ("x", b"y")])
        await send(b"\x00\xff garbage \x13", "bad_magic")
        for n, (codec, p) in enumerate(compressed.items(), start=2):
            # Two records sent together: one batch, compressed with the codec.
            lead, school = _child_events(settings, n)
            sent = [
                await p.send(topic, value=v, key=KEY) for v in (lead, b"garbage " + codec.encode())
            ]
            sent.append(await p.send(topic, value=school, key=KEY))
            await p.flush()
            metas = [await f for f in sent]
            valid.extend([lead, school])
            expected[metas[1].offset] = "bad_magic"
        after_lead, after_school = _child_events(settings, 9)
        await send(after_lead)
        await send(after_school)
    finally:
        for p in (producer, *compressed.values()):
            await p.stop()

    quarantined: list[Any] = []

    async def all_quarantined() -> bool:
        quarantined[:] = await consume(
            settings.bootstrap, names.quarantine, count=len(expected), timeout=3
        )
        return len(quarantined) >= len(expected)

    await _wait_for("every hostile record in the quarantine", all_quarantined, worker)
    got = {int(_headers(r)["hub-source-offset"]): _headers(r)["hub-reason"] for r in quarantined}
    assert got == expected
    for record in quarantined:
        headers = _headers(record)
        assert all(name.startswith("hub-") for name in headers)  # no agency header copied
        assert headers["hub-source-topic"] == topic
        if int(headers["hub-source-offset"]) == big:
            assert record.value == b""
            assert record.key is None
            assert headers["hub-payload"] == "dropped"
            assert headers["hub-source-size"] == str(NEARLY_BROKER_LIMIT)
            assert headers["hub-source-partition"].isdigit()
        elif headers["hub-reason"] == "empty_value":
            assert record.value == b""
        else:
            assert headers["hub-payload"] == "kept"
            assert record.value is not None
            assert len(record.value) < 1000
            assert record.key == KEY
    header_note = next(r for r in quarantined if r.value == b"not avro")
    assert int(_headers(header_note)["hub-source-header-bytes"]) > 100_000

    # Every valid event, compressed or not, reached identity resolution ...
    identity: list[Any] = []

    async def all_resolved() -> bool:
        identity[:] = await consume(settings.bootstrap, names.identity, count=len(valid), timeout=3)
        return len(identity) >= len(valid)

    await _wait_for("every valid event on hub.identity", all_resolved, worker)
    # ... and was routed: each child's lead hears that the school joined, including the
    # children whose events came in compressed batches and the one after every poison.
    alerts: list[Any] = []

    async def all_alerted() -> bool:
        alerts[:] = _alerts(await consume(settings.bootstrap, names.alerts, count=99, timeout=3))
        return len(alerts) >= 6

    await _wait_for("an alert for each child", all_alerted, worker)
    recipients = sorted(json.loads(r.value)["recipient_id"] for r in alerts)
    assert recipients == sorted(f"{SOCIAL_CARE}/SW-{n}" for n in (1, 2, 3, 4, 5, 9))

    assert worker.process is not None
    assert worker.process.poll() is None
    assert worker.probe("/healthz") == 200
    metrics = worker.metrics()
    assert "hub_agent_errors_total{" not in metrics
    assert f'hub_quarantined_total{{agency="{SOCIAL_CARE}",reason="too_large"}} 1.0' in metrics
    assert f'hub_quarantined_total{{agency="{SOCIAL_CARE}",reason="empty_value"}} 2.0' in metrics


async def test_a_batch_the_consumer_cannot_read_is_skipped_and_noted(
    worker: WorkerProcess,
) -> None:
    """A batch that fails to decompress inside the consumer (outside every handler) is
    skipped whole and noted with its offsets; the records before and after it, in the same
    fetch, still route, and the worker does not crash."""
    settings = worker.settings
    worker.start(PYTHONPATH=str(Path(__file__).parent / "undecodable_lz4"))
    names = TopicNames.from_settings(settings)
    topic = names.ingest(SOCIAL_CARE)
    plain = AIOKafkaProducer(bootstrap_servers=settings.bootstrap)
    lz4 = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, compression_type="lz4")
    await plain.start()
    await lz4.start()
    try:
        before = _child_events(settings, 1)
        lost = _child_events(settings, 2)
        after = _child_events(settings, 3)
        for value in before:
            await plain.send(topic, value=value, key=KEY)
        sent = [await lz4.send(topic, value=value, key=KEY) for value in lost]
        await lz4.flush()
        offsets = [(await f).offset for f in sent]
        for value in after:
            await plain.send(topic, value=value, key=KEY)
        await plain.flush()
    finally:
        await plain.stop()
        await lz4.stop()

    notes: list[Any] = []

    async def noted() -> bool:
        notes[:] = await consume(settings.bootstrap, names.quarantine, count=1, timeout=3)
        return bool(notes)

    await _wait_for("a note of the unreadable batch", noted, worker)
    (note,) = notes
    headers = _headers(note)
    assert headers["hub-reason"] == "unreadable_batch"
    assert headers["hub-payload"] == "not-read"
    assert headers["hub-source-topic"] == topic
    assert (int(headers["hub-source-offset"]), int(headers["hub-source-last-offset"])) == (
        offsets[0],
        offsets[-1],
    )
    assert headers["hub-detail"] == "DecompressionError"

    alerts: list[Any] = []

    async def routed() -> bool:
        alerts[:] = _alerts(await consume(settings.bootstrap, names.alerts, count=99, timeout=3))
        return len(alerts) >= 2

    await _wait_for("alerts for the children around the batch", routed, worker)
    recipients = sorted(json.loads(r.value)["recipient_id"] for r in alerts)
    assert recipients == [f"{SOCIAL_CARE}/SW-1", f"{SOCIAL_CARE}/SW-3"]
    assert worker.process is not None
    assert worker.process.poll() is None
    metrics = worker.metrics()
    assert f'hub_unreadable_batches_total{{topic="{topic}"}} 1.0' in metrics
    assert "skipped an unreadable batch" in worker.log_tail(200)


def _alerts(records: list[Any]) -> list[Any]:
    """The alerts among hub.alerts' records (delivery's retry nudges share the topic)."""
    return [r for r in records if json.loads(r.value).get("@") == "Alert"]
