"""The Faust ceilings for ``hub bench``: bare agents doing the least one hub stage does.

Each reads the ingest topics under its own consumer group, decodes each event with
fastavro, writes one table entry and sends one message -- what every stage of the hub does
at the least, without any of the hub's own work. ``hub bench`` runs them as child
processes between the raw aiokafka baseline and the hub, so the figures show how much of
the gap is Faust's per-message cost and how much is the hub's. Two modes:

* ``per-event``: ``async for event in stream.events()``, one event a step, as the hub's
  table-owning agents run today;
* ``batch``: ``stream.noack_take`` batches, each event made the current one while it is
  handled (``as_current``), so its table write is filed under its own partition, and
  acknowledged once handled -- the most a batch-native stage could gain within Faust.

Run as ``python -m involvement_hub_devtools.bench.ceiling MODE EXPECTED REPORT`` with the hub's
``HUB_*`` settings; after EXPECTED events it writes ``{"events": n, "events_per_s": r,
"cpu_s": c, "changelog": topic}`` to REPORT (``cpu_s``: the process's CPU seconds over the
same window; ``topic``: the table's changelog, for the benchmark to check that each write
went to its event's partition) and keeps running until stopped.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import faust  # noqa: TID251 - the streaming package is the faust seam
from involvement_hub.config import load_config
from involvement_hub.kafka.topics import TopicNames
from involvement_hub.settings import Settings
from involvement_hub.streaming.faust_app import as_current, create_app
from involvement_hub.streaming.worker import ServiceWorker
from involvement_hub_producer.codec import decode_unchecked

from involvement_hub_devtools.processes import cpu_seconds

_RAW: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
MODES = ("per-event", "batch")
# The batch mode takes up to this many events, or what arrived within the wait: about one
# fetch's worth of a busy partition, and a wait short enough not to idle a busy stage.
BATCH = 500
BATCH_WAIT_S = 0.05


class _Window:
    """Events handled and the wall and CPU time since the first; reports once at the end."""

    def __init__(self, expected: int, report: Path, changelog: str) -> None:
        self.expected, self.report, self.changelog = expected, report, changelog
        self.seen = 0
        self.first = self.first_cpu = 0.0

    def start(self) -> None:
        if not self.seen:
            self.first, self.first_cpu = time.perf_counter(), cpu_seconds(os.getpid())

    def count(self) -> None:
        self.seen += 1
        if self.seen == self.expected:
            elapsed = time.perf_counter() - self.first
            cpu = cpu_seconds(os.getpid()) - self.first_cpu
            rate = self.expected / elapsed if elapsed > 0 else 0.0
            figures = {
                "events": self.expected,
                "events_per_s": rate,
                "cpu_s": cpu,
                "changelog": self.changelog,
            }
            # Once, after the measured window: blocking here costs the figure nothing.
            self.report.write_text(json.dumps(figures))


def ceiling_app_id(settings: Settings, mode: str) -> str:
    """Each mode's own application id: its own consumer group, reading from the start.

    Its topics (changelog, output) start with neither the hub's topic prefix nor
    ``<app_id>-``, so the benchmark's count of the hub's messages never includes them.
    """
    return f"{settings.app_id}.ceiling" + ("-batch" if mode == "batch" else "")


def build(settings: Settings, mode: str, expected: int, report: Path) -> faust.App:
    registry = load_config(settings).registry
    names = TopicNames.from_settings(settings)
    app_id = ceiling_app_id(settings, mode)
    # The hub's own Faust settings (streaming/faust_app.py), under the stage's own app id.
    app = create_app(settings.replace(app_id=app_id), store="memory://")
    topic: Any = app.topic
    source = topic(*names.all_ingest, **_RAW)
    sink = topic(f"{app_id}.out", partitions=settings.partitions, internal=True, **_RAW)
    table = app.Table("ceiling", partitions=settings.partitions, key_type=str, value_type=bytes)
    window = _Window(expected, report, table.changelog_topic.get_topic_name())

    def handle(event: Any) -> None:
        decode_unchecked(event.value, registry)
        table[(event.key or b"").decode()] = event.value
        sink.send_soon(key=event.key, value=event.value)
        window.count()

    async def per_event(stream: Any) -> None:
        await sink.maybe_declare()  # Faust declares only the topics it consumes
        async for event in stream.events():
            window.start()
            handle(event)

    async def batch(stream: Any) -> None:
        await sink.maybe_declare()
        # noack_take, not take_events: see streaming/batches.py.
        async for events in stream.noack_take(BATCH, within=BATCH_WAIT_S):
            window.start()
            for event in events:
                # Faust files a table write under the current event's partition, and in a
                # noack_take batch the agent has none (the stream fills the batch in a task
                # of its own): without this the write is refused with a TypeError.
                with as_current(event):
                    handle(event)
                await stream.ack(event)

    stages: dict[str, Callable[[Any], Awaitable[None]]] = {"per-event": per_event, "batch": batch}

    async def reporting(stream: Any) -> None:
        try:
            await stages[mode](stream)
        except Exception as exc:
            # A crashed agent leaves Faust's worker running: the benchmark would wait for
            # a report until its timeout.
            report.write_text(json.dumps({"error": repr(exc)}))  # noqa: ASYNC240
            raise

    app.agent(source, name="ceiling")(reporting)
    return app


def main(argv: list[str]) -> None:
    mode, expected, report = argv[0], int(argv[1]), Path(argv[2])
    if mode not in MODES:
        sys.exit(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    settings = Settings.from_env()
    app = build(settings, mode, expected, report)
    worker = ServiceWorker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1:])
