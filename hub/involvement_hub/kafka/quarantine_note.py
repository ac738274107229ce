"""What the hub writes to ``hub.quarantine``: a note saying where a message came from and
why it was set aside, with the original bytes when they are small enough to keep.

The note carries only the hub's own headers. An agency's headers are never copied (they
can be as large as the broker allows, and they are not needed to replay the message), and
neither is a payload larger than the hub decodes (``HUB_MAX_MESSAGE_BYTES``) or a key
larger than ``QUARANTINE_KEY_CAP_BYTES``: such a note says ``hub-payload: dropped`` and
gives the sizes, topic, partition and offset, so the original can be found on its topic.
So every note fits the hub's producer limit, whatever arrived. A note without the message
has an empty value rather than none: a Kafka producer refuses a record with neither key
nor value (aiokafka asserts it in its send buffer, which would crash the worker).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from involvement_hub.core.reasons import Reason
from involvement_hub.limits import QUARANTINE_DETAIL_CAP_CHARS, QUARANTINE_KEY_CAP_BYTES


class Header:
    """The headers of a quarantine note, and of a record replayed from the quarantine.

    Plain strings, not an enum: aiokafka's record builder takes header names of type
    ``str`` exactly (a ``StrEnum`` member made the worker's producer fail)."""

    REASON: Final = "hub-reason"
    DETAIL: Final = "hub-detail"
    SOURCE_TOPIC: Final = "hub-source-topic"
    SOURCE_PARTITION: Final = "hub-source-partition"
    SOURCE_OFFSET: Final = "hub-source-offset"
    SOURCE_LAST_OFFSET: Final = "hub-source-last-offset"
    SOURCE_SIZE: Final = "hub-source-size"
    SOURCE_KEY_SIZE: Final = "hub-source-key-size"
    SOURCE_HEADER_BYTES: Final = "hub-source-header-bytes"
    QUARANTINED_AT: Final = "hub-quarantined-at"
    PAYLOAD: Final = "hub-payload"
    REPLAYED_FROM: Final = "hub-replayed-from"
    REPLAYED_AT: Final = "hub-replayed-at"


# hub-payload: whether the note carries the original key and value.
KEPT = "kept"  # both, byte for byte: the message can be replayed
DROPPED = "dropped"  # too large to copy: the note records sizes and where to find it
NULL = "null"  # the original had no value
NOT_READ = "not-read"  # the hub could not read the message at all (an unreadable batch)


@dataclass(frozen=True, slots=True)
class Source:
    """Where a quarantined message was (or, for an unreadable batch, the first offset)."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Note:
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


def note_for(
    source: Source,
    key: bytes | None,
    value: bytes | None,
    agency_headers: Iterable[tuple[str, bytes | None]] | Mapping[str, bytes | None] | None,
    *,
    reason: str,
    detail: str,
    at: dt.datetime,
    max_payload_bytes: int,
) -> Note:
    """The quarantine note for one message; it never holds more than the caps allow."""
    key_size = len(key or b"")
    value_size = len(value) if value is not None else 0
    if value is None:
        payload = NULL
    elif value_size <= max_payload_bytes and key_size <= QUARANTINE_KEY_CAP_BYTES:
        payload = KEPT
    else:
        payload = DROPPED
    pairs = agency_headers.items() if isinstance(agency_headers, Mapping) else agency_headers
    header_bytes = sum(len(name) + len(v or b"") for name, v in pairs or ())
    headers = _headers(source, reason, detail, at, payload)
    headers[Header.SOURCE_SIZE] = str(value_size).encode()
    headers[Header.SOURCE_KEY_SIZE] = str(key_size).encode()
    headers[Header.SOURCE_HEADER_BYTES] = str(header_bytes).encode()
    if value is None or payload == DROPPED:
        return Note(
            key if payload == NULL and key_size <= QUARANTINE_KEY_CAP_BYTES else None, b"", headers
        )
    return Note(key, value, headers)


def unreadable_note(source: Source, last_offset: int, detail: str, at: dt.datetime) -> Note:
    """A note for records the consumer could not read (offsets ``source.offset`` to
    ``last_offset``): nothing of them can be copied, only where they are."""
    headers = _headers(source, Reason.UNREADABLE_BATCH, detail, at, NOT_READ)
    headers[Header.SOURCE_LAST_OFFSET] = str(last_offset).encode()
    return Note(None, b"", headers)


def _headers(
    source: Source, reason: str, detail: str, at: dt.datetime, payload: str
) -> dict[str, bytes]:
    return {
        Header.REASON: reason.encode(),
        # A detail can quote a value from the payload (an agency id it claims); cap it.
        Header.DETAIL: detail[:QUARANTINE_DETAIL_CAP_CHARS].encode("utf-8", "replace"),
        Header.SOURCE_TOPIC: source.topic.encode(),
        Header.SOURCE_PARTITION: str(source.partition).encode(),
        Header.SOURCE_OFFSET: str(source.offset).encode(),
        Header.QUARANTINED_AT: at.isoformat().encode(),
        Header.PAYLOAD: payload.encode(),
    }
