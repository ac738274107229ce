"""The guarded first step: raw bytes from an agency topic to an event, or a quarantine.

Decoding happens here, in plain code, never in a Faust codec: a codec error inside Faust
reaches the agent and can kill it. Every way a message can be unfit ends as a
:class:`Quarantine` with a fixed reason token; nothing raised here escapes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from involvement_hub_producer import DecodeError, SchemaRegistry, decode

from involvement_hub.core.model import Event
from involvement_hub.core.policy import Policy
from involvement_hub.core.reasons import Reason
from involvement_hub.core.records import event_from_record
from involvement_hub.errors import RejectedEvent


@dataclass(frozen=True, slots=True)
class Quarantine:
    reason: str
    detail: str
    kind: str | None = None
    decode_failure: bool = False


@dataclass(frozen=True, slots=True)
class Accepted:
    event: Event


def examine(
    raw: bytes | None,
    *,
    topic_agency: str | None,
    registry: SchemaRegistry,
    policy: Policy,
    max_bytes: int,
) -> Accepted | Quarantine:
    """Decode, check the sender, and check there is a policy for the event's kind."""
    if topic_agency is None:
        return Quarantine(
            Reason.NOT_AN_INGEST_TOPIC, "message arrived on a topic that is not ingest.*"
        )
    if not raw:
        # A null value (a tombstone, or a producer bug) or zero bytes: nothing to decode.
        return Quarantine(Reason.EMPTY_VALUE, "the message has no value", decode_failure=True)
    try:
        decoded = decode(raw, registry, max_bytes)
    except DecodeError as exc:
        return Quarantine(exc.reason, exc.detail, decode_failure=True)
    try:
        event = event_from_record(decoded.name, decoded.record)
    except RejectedEvent as exc:
        return Quarantine(exc.reason, exc.detail)
    except (KeyError, TypeError, ValueError) as exc:
        # The schema guarantees shape; this is a reader-schema/domain mismatch (a bug).
        return Quarantine(Reason.INVALID_RECORD, f"{decoded.name}: {type(exc).__name__}")
    claimed = event.envelope.source.agency_id
    if claimed != topic_agency:
        return Quarantine(
            Reason.AGENCY_MISMATCH,
            f"payload claims {claimed!r}, topic is for {topic_agency!r}",
            event.kind,
        )
    if policy.for_kind(event.kind) is None:
        return Quarantine(
            Reason.NO_POLICY, f"no governance policy for kind {event.kind}", event.kind
        )
    return Accepted(event)


def kafka_time(timestamp: float | None, fallback: dt.datetime) -> dt.datetime:
    """A Kafka record timestamp (seconds) as an aware datetime."""
    if not timestamp:
        return fallback
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
