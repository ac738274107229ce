"""Digests: ROUTINE alerts held for one recipient until a window closes, then sent as one.

A window has a deterministic name (``daily:2026-11-26T08:00:00+00:00``), so the digest's id
and Message-ID are the same however often a restart makes the hub look at it again; the
outbox then keeps it from being sent twice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from .alerts import Alert
from .delivery_plan import derived_id


@dataclass(frozen=True, slots=True)
class DigestWindow:
    window: str
    due: dt.datetime
    alerts: tuple[Alert, ...] = ()

    def digest_id(self, recipient_id: str) -> str:
        return derived_id(recipient_id, self.window)


@dataclass(frozen=True, slots=True)
class DigestBox:
    recipient_id: str
    windows: tuple[DigestWindow, ...] = ()

    def window(self, name: str) -> DigestWindow | None:
        return next((w for w in self.windows if w.window == name), None)

    def due(self, now: dt.datetime) -> tuple[DigestWindow, ...]:
        return tuple(w for w in self.windows if w.due <= now)


def hold(box: DigestBox, alert: Alert, window: str, due: dt.datetime) -> DigestBox:
    """Add an alert to a window (once: a replayed alert is not listed twice)."""
    current = box.window(window) or DigestWindow(window, due)
    if any(a.alert_id == alert.alert_id for a in current.alerts):
        return box
    updated = replace(current, alerts=(*current.alerts, alert))
    others = tuple(w for w in box.windows if w.window != window)
    return replace(box, windows=tuple(sorted((*others, updated), key=lambda w: w.due)))


def close(box: DigestBox, window: str) -> DigestBox:
    return replace(box, windows=tuple(w for w in box.windows if w.window != window))
