"""``hub publish FILE``: JSON Lines of records, encoded and published to agency topics.

Every line is checked before anything is sent for it: valid JSON, a known ``schema``, the
JSON form of that record, an agency the hub knows. A bad line is reported with its number
and why, and skipped; the others are published through the agency producer (idempotent,
``acks=all``). The report says how many went and which lines did not.

A broker error is not a line's fault: the first one (the broker cannot be reached, a topic
is missing, a send is refused or not acknowledged in time) stops publishing, and the
report carries that one reason instead of one error per remaining line.
"""

from __future__ import annotations

import asyncio
import contextlib
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
    errors: list[LineError] = field(default_factory=list)  # bad lines, never sent
    # The broker error that stopped publishing, at the line it struck; ``unsent`` good
    # lines were then not sent (or not acknowledged).
    stopped: LineError | None = None
    unsent: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors and self.stopped is None

    @property
    def not_sent(self) -> int:
        return len(self.errors) + self.unsent


# How long publishing waits on the broker before it gives up: to connect and find the
# topic, and for each next acknowledgement (a broker that died mid-file is otherwise
# retried by the producer for ever). Acknowledgements arrive in milliseconds when the
# broker is up, so a wait this long means it is not.
BROKER_WAIT_S = 15.0
# How long closing a producer may take after a failure: it tries to flush what it holds.
CLOSE_WAIT_S = 5.0


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
    open_publisher: Callable[[str, Settings], Awaitable[Publisher]] | None = None,
    broker_wait_s: float = BROKER_WAIT_S,
) -> PublishReport:
    """Publish in the file's order, as far as Kafka allows, until a broker error.

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
    good = sum(len(prepared) for _, prepared in runs)
    opener = open_publisher or _open
    publishers: dict[str, Publisher] = {}
    try:
        for agency, prepared in runs:
            try:
                if agency not in publishers:
                    async with asyncio.timeout(broker_wait_s):
                        publishers[agency] = await opener(agency, settings)
            except TimeoutError:
                failure: LineError | None = LineError(
                    prepared[0].line, f"no answer from Kafka at {settings.bootstrap}"
                )
            except PublishError as exc:
                failure = LineError(prepared[0].line, str(exc))
            else:
                failure = await _publish_run(publishers[agency], prepared, report, broker_wait_s)
            if failure is not None:
                report.stopped = failure
                report.unsent = good - report.sent
                break
    finally:
        for publisher in publishers.values():
            await _close(publisher, bounded=report.stopped is not None)
    report.errors.sort(key=lambda e: e.line)
    return report


async def _open(agency: str, settings: Settings) -> AgencyPublisher:
    """A started publisher for ``agency``, or :class:`PublishError` saying why not."""
    publisher = AgencyPublisher(
        settings.bootstrap,
        agency,
        topic_prefix=settings.topic_prefix,
        **agency_options(settings),
        request_timeout_ms=int(BROKER_WAIT_S * 1000),
    )
    try:
        try:
            await publisher.start()
        except PublishError as exc:
            raise PublishError(
                f"cannot reach Kafka at {settings.bootstrap} (is the broker running, and "
                "HUB_KAFKA_BOOTSTRAP right?)"
            ) from exc
        if not await publisher.topic_exists():
            raise PublishError(
                f"topic {publisher.topic} does not exist (start a hub worker, or `hub topics`)"
            )
    except (PublishError, asyncio.CancelledError):
        await _close(publisher, bounded=True)
        raise
    return publisher


async def _close(publisher: Publisher, *, bounded: bool) -> None:
    """Stop a publisher; after a failure, without waiting long for a flush that cannot
    happen (what it still holds was counted as not sent)."""
    if not bounded:
        await publisher.stop()
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(CLOSE_WAIT_S):
            await publisher.stop()


async def _publish_run(
    publisher: Publisher, prepared: list[Prepared], report: PublishReport, wait_s: float
) -> LineError | None:
    """Send one agency's consecutive lines and wait until the broker has them all; the
    first broker error, if any, after waiting for the rest of the run's answers."""
    failure: LineError | None = None
    pending: list[tuple[Prepared, asyncio.Future[Any]]] = []
    for item in prepared:
        try:
            async with asyncio.timeout(wait_s):
                pending.append((item, await publisher.send_encoded(item.value, item.key)))
        except TimeoutError:
            failure = LineError(item.line, f"the broker took no more records in {wait_s:g} s")
            break
        except PublishError as exc:
            failure = LineError(item.line, str(exc))
            break
    for item, future in pending:
        try:
            # Shielded: on a timeout the producer's own future is left alone.
            await asyncio.wait_for(asyncio.shield(future), wait_s)
            report.sent += 1
        except TimeoutError:
            failure = failure or LineError(
                item.line, f"the broker did not acknowledge it within {wait_s:g} s"
            )
            for _, left in pending:
                # Their outcome no longer matters; taking it keeps asyncio from logging
                # "exception was never retrieved" for each when the producer gives up.
                left.add_done_callback(_ignore_outcome)
            break
        except Exception as exc:  # aiokafka raises several types for a failed send
            failure = failure or LineError(
                item.line, f"the broker refused it ({type(exc).__name__}: {exc})"
            )
    return failure


def _ignore_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def prepare_file(
    path: Path, registry: SchemaRegistry, agencies: tuple[str, ...]
) -> list[Prepared | LineError]:
    """Check and encode every line of a JSON Lines file."""
    # Lines are decoded one by one, so one line that is not UTF-8 is one bad line.
    lines = [_text(raw) for raw in path.read_bytes().split(b"\n")]
    return list(prepare_lines(lines, registry, agencies))
