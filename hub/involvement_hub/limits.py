"""How large a message the hub produces, and how it makes sure it never produces a larger one.

A Kafka producer refuses a record larger than its ``max_request_size`` *inside its send
buffer*: in Faust that is outside every agent's handler, so one oversized output crashes
the worker, and crashes it again on the same input after every restart. So every message
the hub writes to its own topics (and every table write, which becomes a changelog
message) is measured before it is handed over, and a too-large one raises
:class:`~involvement_hub.errors.OversizeMessage` where the agent's handler catches it.

The hub's producers allow ``PRODUCE_LIMIT_BYTES`` and the hub creates its topics with the
same ``max.message.bytes``, so neither the client's default (1,000,000) nor a broker's
default (1,048,588) is what refuses a hub message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from involvement_hub.errors import OversizeMessage

# 1 MiB: room for a quarantined copy of the largest ingest message the hub decodes
# (HUB_MAX_MESSAGE_BYTES, at most MAX_DECODED_BYTES) with its key and headers, and for
# any internal message a bounded event can produce.
PRODUCE_LIMIT_BYTES: Final = 1024 * 1024
# A record batch of one record carries about 70 bytes of framing (batch header, varints);
# 1 KiB covers it with room to spare.
RECORD_OVERHEAD_BYTES: Final = 1024
# What a quarantined copy adds to the original value: its key (kept only up to this size)
# and the hub's own headers (fixed names, a capped detail).
QUARANTINE_KEY_CAP_BYTES: Final = 1024
QUARANTINE_DETAIL_CAP_CHARS: Final = 300
QUARANTINE_OVERHEAD_BYTES: Final = 8 * 1024
# The largest HUB_MAX_MESSAGE_BYTES: an ingest message up to it is quarantined whole, so it
# must fit a produced message with the quarantine's key and headers.
MAX_DECODED_BYTES: Final = PRODUCE_LIMIT_BYTES - QUARANTINE_OVERHEAD_BYTES - RECORD_OVERHEAD_BYTES


def record_size(key: bytes | None, value: bytes | None, headers: Mapping[str, bytes]) -> int:
    """Bytes a record takes in a batch of its own (an upper bound, as the producer counts)."""
    size = len(key or b"") + len(value or b"") + RECORD_OVERHEAD_BYTES
    return size + sum(len(name.encode()) + len(v) for name, v in headers.items())


def check_fits(
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: Mapping[str, bytes] | None = None,
) -> None:
    """Raise :class:`OversizeMessage` before a producer would refuse the record."""
    size = record_size(key, value, headers or {})
    if size > PRODUCE_LIMIT_BYTES:
        raise OversizeMessage(topic, size, PRODUCE_LIMIT_BYTES)
