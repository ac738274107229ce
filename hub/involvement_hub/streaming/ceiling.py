"""The Faust ceiling for ``hub bench``: a bare agent doing the least one hub stage does.

It reads the ingest topics under its own consumer group, decodes each event with fastavro,
writes one table entry and sends one message -- what every stage of the hub does at the
least, without any of the hub's own work. ``hub bench`` runs it as a child process between
the raw aiokafka baseline and the hub, so the figures show how much of the gap is Faust's
per-message cost and how much is the hub's.

Run as ``python -m involvement_hub.streaming.ceiling EXPECTED REPORT`` with the hub's
``HUB_*`` settings; it writes ``{"events": n, "events_per_s": r}`` to REPORT after EXPECTED
events and keeps running until stopped.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import faust  # noqa: TID251 - the streaming package is the faust seam
from involvement_hub_producer.codec import decode_unchecked

from involvement_hub.config import load_config
from involvement_hub.settings import Settings
from involvement_hub.streaming.app import faust_credentials
from involvement_hub.streaming.worker import ServiceWorker
from involvement_hub.topics import TopicNames

_RAW: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}


def build(settings: Settings, expected: int, report: Path) -> faust.App:
    registry = load_config(settings).registry
    names = TopicNames.from_settings(settings)
    # Faust makes only the last folder: on a fresh state folder the parent must exist.
    datadir = settings.state_dir / "worker" / f"{settings.app_id}-ceiling"
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        f"{settings.app_id}-ceiling",
        broker=f"kafka://{settings.bootstrap}",
        broker_credentials=faust_credentials(settings),
        store="memory://",
        datadir=str(datadir),
        processing_guarantee="at_least_once",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        web_enabled=False,
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger_ms=5,
        stream_wait_empty=False,
    )
    topic: Any = app.topic
    source = topic(*names.all_ingest, **_RAW)
    sink = topic(
        f"{settings.topic_prefix}ceiling.out", partitions=settings.partitions, internal=True, **_RAW
    )
    table = app.Table("ceiling", partitions=settings.partitions, key_type=str, value_type=bytes)
    seen = {"n": 0, "first": 0.0}

    async def stage(stream: Any) -> None:
        await sink.maybe_declare()  # Faust declares only the topics it consumes
        async for event in stream.events():
            if not seen["n"]:
                seen["first"] = time.perf_counter()
            decode_unchecked(event.value, registry)
            table[(event.key or b"").decode()] = event.value
            sink.send_soon(key=event.key, value=event.value)
            seen["n"] += 1
            if seen["n"] == expected:
                elapsed = time.perf_counter() - seen["first"]
                rate = expected / elapsed if elapsed > 0 else 0.0
                # Once, after the measured window: blocking here costs the figure nothing.
                report.write_text(json.dumps({"events": expected, "events_per_s": rate}))  # noqa: ASYNC240

    app.agent(source, name="ceiling")(stage)
    return app


def main(argv: list[str]) -> None:
    expected, report = int(argv[0]), Path(argv[1])
    settings = Settings.from_env()
    app = build(settings, expected, report)
    worker = ServiceWorker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1:])
