"""Delivery's schedule: which pending retries and closed digest windows are due now.

The delivery ticker runs every few seconds. It can only read the tables (a write needs an
event), so what is due is sent as a message to the recipient's partition of ``hub.alerts``
(a :class:`RetryNudge` or a :class:`DigestDue`), where the delivery agent does the work.
Deciding what is due is this module's pure function; the adapter sends the nudges and
remembers when (by its own monotonic clock) it sent them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .digest import DigestBox
from .messages import DigestDue, RetryNudge
from .model import Urgency


@dataclass(frozen=True, slots=True)
class Due:
    """A pending alert or digest the ticker must nudge at ``next_at``."""

    recipient_id: str
    next_at: dt.datetime
    since: dt.datetime
    digest_window: str | None = None
    urgency: Urgency = Urgency.ROUTINE  # for the oldest-pending-age gauge, by urgency


@dataclass(frozen=True, slots=True)
class Nudge:
    """One message to send now: ``key`` is the alert or digest id, ``at`` the due time."""

    key: str
    at: dt.datetime
    message: RetryNudge | DigestDue


@dataclass(frozen=True, slots=True)
class Schedule:
    nudges: tuple[Nudge, ...]
    waiting: int  # pending retries and open digest windows
    oldest: Mapping[Urgency, dt.datetime] = field(default_factory=dict)  # oldest pending


def due_now(
    now: dt.datetime,
    due: Iterable[tuple[str, Due]],
    digests: Iterable[tuple[str, DigestBox]],
    nudged: Mapping[str, dt.datetime],
) -> Schedule:
    """What to nudge at ``now``.

    ``nudged`` holds the nudges sent recently and not yet acted on (key -> the due time
    nudged): a retry nudged for its due time is not nudged again for the same time; a digest
    window nudged once is not nudged again; a failed digest is retried through its due entry.
    """
    nudges: list[Nudge] = []
    oldest: dict[Urgency, dt.datetime] = {}
    waiting = 0
    pending: set[str] = set()
    for key, entry in due:
        pending.add(key)
        waiting += 1
        if entry.urgency not in oldest or entry.since < oldest[entry.urgency]:
            oldest[entry.urgency] = entry.since
        if entry.next_at <= now and nudged.get(key) != entry.next_at:
            nudges.append(Nudge(key, entry.next_at, RetryNudge(entry.recipient_id, key)))
    for recipient, box in digests:
        waiting += len(box.windows)
        for window in box.due(now):
            key = window.digest_id(recipient)
            if key in nudged or key in pending:
                continue
            nudges.append(Nudge(key, window.due, DigestDue(recipient, window.window)))
    return Schedule(tuple(nudges), waiting, oldest)
