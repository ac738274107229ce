"""``hub simulate``: publish (or write) a synthetic population's events.

Setup records first (what agencies already know: parents, open involvements), then a stream
of events. Every record goes through the agency producer library, exactly as an agency's
would: JSON form -> checked and encoded -> idempotent publish to its agency's topic.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from involvement_hub.kafka.client import agency_options
from involvement_hub.settings import Settings
from involvement_hub_producer import (
    AgencyPublisher,
    SchemaRegistry,
    encode_for_agency,
    from_json,
    record_key,
)

from involvement_hub_devtools.population import Population

Progress = Callable[[str], None]


def records(
    population: Population, *, events: int, setup: bool, start: dt.datetime
) -> Iterator[dict[str, Any]]:
    if setup:
        for number in range(population.families):
            yield from population.setup_records(population.family(number), start)
    yield from population.events(events, start + dt.timedelta(minutes=1))


def write_jsonl(items: Iterable[dict[str, Any]], out: TextIO, progress: Progress) -> int:
    count = 0
    for count, record in enumerate(items, start=1):
        out.write(json.dumps(record) + "\n")
        if count % 50_000 == 0:
            progress(f"{count} records written")
    return count


def encoded(
    items: Iterable[dict[str, Any]], registry: SchemaRegistry
) -> Iterator[tuple[str, bytes, bytes]]:
    """(agency, key, value) for each record, encoded as its agency would."""
    for record in items:
        body = dict(record)
        name = body.pop("schema")
        converted = from_json(body, registry.current(name).source)
        agency = converted["source"]["agency_id"]
        yield agency, record_key(converted), encode_for_agency(converted, name, agency, registry)


class Pacer:
    """Keeps a producer at ``rate`` per second (0: as fast as it can)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.started = time.monotonic()

    async def wait(self, sent: int) -> None:
        if self.rate <= 0:
            return
        ahead = sent / self.rate - (time.monotonic() - self.started)
        if ahead > 0.005:
            await asyncio.sleep(ahead)


async def publish(
    items: Iterable[tuple[str, bytes, bytes]],
    settings: Settings,
    *,
    rate: float = 0.0,
    progress: Progress = lambda _: None,
    on_sent: Callable[[str, float], None] | None = None,
    compression: str | None = None,
    agencies: Iterable[str] = (),
    in_order: bool = False,
) -> int:
    """Publish pre-encoded records through one idempotent publisher per agency.

    ``compression`` is the producers' ``compression_type`` (gzip, snappy, lz4, zstd).
    Publishers for ``agencies`` start before the first record, the others at their agency's
    first record: a started producer rides out a broker restart, one starting then fails.
    ``in_order``: a record of another agency than the one before waits until the broker
    has acknowledged everything sent so far, so the records reach Kafka in the order given
    even across a broker restart (as ``hub publish`` does)."""
    publishers: dict[str, AgencyPublisher] = {}
    pacer = Pacer(rate)
    futures: list[asyncio.Future[Any]] = []
    sent = 0
    last_report = time.monotonic()

    async def publisher_for(agency: str) -> AgencyPublisher:
        publisher = publishers.get(agency)
        if publisher is None:
            publisher = AgencyPublisher(
                settings.bootstrap,
                agency,
                topic_prefix=settings.topic_prefix,
                **agency_options(settings),
                linger_ms=5,
                compression_type=compression,
            )
            await publisher.start()
            publishers[agency] = publisher
        return publisher

    previous: str | None = None
    try:
        for agency in agencies:
            await publisher_for(agency)
        for agency, key, value in items:
            publisher = await publisher_for(agency)
            if in_order and agency != previous and futures:
                await asyncio.gather(*futures)
                futures.clear()
            previous = agency
            futures.append(await publisher.send_encoded(value, key))
            sent += 1
            if on_sent is not None:
                on_sent(agency, time.time())
            if len(futures) >= 5000:
                await asyncio.gather(*futures)
                futures.clear()
            await pacer.wait(sent)
            if time.monotonic() - last_report >= 2:
                last_report = time.monotonic()
                elapsed = last_report - pacer.started
                progress(f"{sent} events published ({sent / elapsed:,.0f}/s)")
        await asyncio.gather(*futures)
    finally:
        for publisher in publishers.values():
            await publisher.stop()
    return sent


def run_simulation(
    settings: Settings,
    registry: SchemaRegistry,
    *,
    families: int,
    events: int,
    seed: int,
    setup: bool,
    rate: float,
    out: Path | None,
    progress: Progress,
    start: dt.datetime | None = None,
    first: int = 0,
) -> int:
    population = Population(families, seed=seed, first=first)
    start = start or dt.datetime.now(dt.UTC).replace(microsecond=0)
    items = records(population, events=events, setup=setup, start=start)
    if out is not None:
        with out.open("w", encoding="utf-8") as handle:
            count = write_jsonl(items, handle, progress)
        progress(f"wrote {count} records to {out}")
        return count
    count = asyncio.run(publish(encoded(items, registry), settings, rate=rate, progress=progress))
    progress(f"published {count} events")
    return count
