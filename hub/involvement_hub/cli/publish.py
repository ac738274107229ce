"""``hub publish FILE``: JSON Lines of records, encoded and published to agency topics.

Every line is checked before anything is sent for it: valid JSON, a known ``schema``, the
JSON form of that record, an agency the hub knows. A bad line is reported with its number
and why, and skipped; the others are published through the agency producer (idempotent,
``acks=all``). The report says how many went and which lines did not.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from involvement_hub_producer import (
    AgencyPublisher,
    ContractError,
    PublishError,
    SchemaRegistry,
    encode_for_agency,
    from_json,
    record_key,
)
from involvement_hub_producer.json_form import SCHEMA_KEY

from involvement_hub.kafka.client import agency_options
from involvement_hub.settings import Settings


class Publisher(Protocol):
    """What publishing needs of an agency's producer (``AgencyPublisher`` in production)."""

    async def send_encoded(self, value: bytes, key: bytes) -> asyncio.Future[Any]: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class LineError:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Prepared:
    line: int
    agency_id: str
    value: bytes
    key: bytes


@dataclass
class PublishReport:
    sent: int = 0
    errors: list[LineError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def prepare_lines(
    lines: Iterable[str], registry: SchemaRegistry, agencies: tuple[str, ...]
) -> Iterator[Prepared | LineError]:
    """Check and encode each non-blank line; never raises for a bad line."""
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        yield _prepare(number, text, registry, agencies)


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return _NOT_UTF8


_NOT_UTF8 = "\x00not-utf-8"


def _prepare(
    number: int, text: str, registry: SchemaRegistry, agencies: tuple[str, ...]
) -> Prepared | LineError:
    if text == _NOT_UTF8:
        return LineError(number, "not UTF-8 text")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return LineError(number, f"not valid JSON ({exc.msg} at column {exc.colno})")
    except (ValueError, RecursionError):
        # json.loads raises these, not JSONDecodeError, for an integer over Python's digit
        # limit and for nesting deeper than the recursion limit.
        return LineError(number, "not valid JSON (a number too long, or nested too deeply)")
    if not isinstance(obj, dict):
        return LineError(number, "a line must be a JSON object")
    record_type = obj.pop(SCHEMA_KEY, None)
    if not isinstance(record_type, str):
        names = ", ".join(registry.names)
        return LineError(number, f'missing "{SCHEMA_KEY}" naming the record type ({names})')
    try:
        schema = registry.current(record_type)
        record = from_json(obj, schema.source)
        agency = record["source"]["agency_id"]
        if agency not in agencies:
            return LineError(number, f"agency {agency!r} is not one of the hub's agencies")
        value = encode_for_agency(record, record_type, agency, registry)
    except ContractError as exc:
        return LineError(number, str(exc))
    return Prepared(number, agency, value, record_key(record))


async def publish_prepared(
    items: Iterable[Prepared | LineError],
    settings: Settings,
    *,
    progress: Callable[[str], None] = lambda _: None,
    open_publisher: Callable[[str, Settings], Awaitable[Publisher | str]] | None = None,
) -> PublishReport:
    """Publish in the file's order, as far as Kafka allows.

    Kafka orders records only within a partition, and each agency has its own topic, so
    the order *across* agencies is kept by waiting: consecutive lines of one agency go as
    one batch, and the next batch is sent only when the broker has acknowledged the
    previous one. A file published to an idle hub is then read by it in file order.
    """
    report = PublishReport()
    runs: list[tuple[str, list[Prepared]]] = []
    for item in items:
        if isinstance(item, LineError):
            report.errors.append(item)
            progress(str(item))
        elif runs and runs[-1][0] == item.agency_id:
            runs[-1][1].append(item)
        else:
            runs.append((item.agency_id, [item]))
    opener = open_publisher or _open
    publishers: dict[str, Publisher | str] = {}
    try:
        for agency, prepared in runs:
            if agency not in publishers:
                publishers[agency] = await opener(agency, settings)
            publisher = publishers[agency]
            if isinstance(publisher, str):
                _fail_all(prepared, publisher, report, progress)
            else:
                await _publish_run(publisher, prepared, report, progress)
    finally:
        for publisher in publishers.values():
            if not isinstance(publisher, str):
                await publisher.stop()
    report.errors.sort(key=lambda e: e.line)
    return report


async def _open(agency: str, settings: Settings) -> AgencyPublisher | str:
    """A started publisher for ``agency``, or why its lines cannot be sent."""
    publisher = AgencyPublisher(
        settings.bootstrap,
        agency,
        topic_prefix=settings.topic_prefix,
        **agency_options(settings),
        request_timeout_ms=15000,
    )
    try:
        await publisher.start()
    except PublishError as exc:
        return f"not sent: {exc}"
    if not await publisher.topic_exists():
        await publisher.stop()
        return f"not sent: topic {publisher.topic} does not exist (start the hub, or ask ops)"
    return publisher


async def _publish_run(
    publisher: Publisher,
    prepared: list[Prepared],
    report: PublishReport,
    progress: Callable[[str], None],
) -> None:
    """Send one agency's consecutive lines and wait until the broker has them all."""
    pending: list[tuple[Prepared, asyncio.Future[Any]]] = []
    for item in prepared:
        pending.append((item, await publisher.send_encoded(item.value, item.key)))
    for item, future in pending:
        try:
            await future
            report.sent += 1
        except Exception as exc:  # aiokafka raises several types for a failed send
            error = LineError(item.line, f"not sent: the broker refused it ({type(exc).__name__})")
            report.errors.append(error)
            progress(str(error))


def _fail_all(
    prepared: list[Prepared], why: str, report: PublishReport, progress: Callable[[str], None]
) -> None:
    for item in prepared:
        error = LineError(item.line, why)
        report.errors.append(error)
        progress(str(error))


def prepare_file(
    path: Path, registry: SchemaRegistry, agencies: tuple[str, ...]
) -> list[Prepared | LineError]:
    """Check and encode every line of a JSON Lines file."""
    # Lines are decoded one by one, so one line that is not UTF-8 is one bad line.
    lines = [_text(raw) for raw in path.read_bytes().split(b"\n")]
    return list(prepare_lines(lines, registry, agencies))
