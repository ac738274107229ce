"""The delivery outbox: what is known about each alert's delivery, and what happens next.

An entry is written before the first attempt and updated after every attempt. It keeps the
alert itself only while the alert may still have to be sent (IG-6); once sent, or given up,
only the facts remain. Transient failures retry with exponential backoff and jitter until
a horizon; permanent ones (a 5xx reply) escalate at once; insecure ones (no STARTTLS, an
untrusted certificate) escalate and keep waiting, because the server may be fixed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from enum import StrEnum

from .alerts import Alert, Contact
from .delivery_plan import DeliveryPlan, derived_id


class Status(StrEnum):
    PENDING = "PENDING"  # to be sent, now or at next_attempt_at
    HELD = "HELD"  # waiting in a digest window
    SENT = "SENT"
    FAILED = "FAILED"  # given up: escalated (or recorded, for an escalation itself)
    EXPIRED = "EXPIRED"  # not sent: the recipient's grace period ran out first (IG-2)


class Failure(StrEnum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    INSECURE = "insecure"


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    status: Status
    recipient_id: str
    attempts: int = 0
    first_attempt_at: dt.datetime | None = None
    next_attempt_at: dt.datetime | None = None
    last_error: str = ""
    escalated: bool = False
    sent_at: dt.datetime | None = None
    via: str | None = None  # the digest that carried it, if any
    alert: Alert | None = None


@dataclass(frozen=True, slots=True)
class Backoff:
    base: dt.timedelta = dt.timedelta(seconds=30)
    cap: dt.timedelta = dt.timedelta(minutes=30)
    horizon: dt.timedelta = dt.timedelta(hours=24)
    jitter: float = 0.2  # +/- this fraction, so retries from one outage do not align

    def delay(self, attempts: int, rand: float) -> dt.timedelta:
        """Before attempt ``attempts + 1``; ``rand`` is uniform in [0, 1)."""
        # In float seconds: a timedelta doubled ~45 times overflows, and a long outage
        # with a short cap reaches that many attempts well inside the horizon.
        doubled = self.base.total_seconds() * 2.0 ** min(max(attempts - 1, 0), 64)
        raw = min(doubled, self.cap.total_seconds())
        return dt.timedelta(seconds=raw * (1 + self.jitter * (2 * rand - 1)))


@dataclass(frozen=True, slots=True)
class AfterFailure:
    entry: OutboxEntry
    escalate: str | None  # the reason, when this failure must be escalated now


def pending(alert: Alert, now: dt.datetime) -> OutboxEntry:
    return OutboxEntry(Status.PENDING, alert.recipient_id, first_attempt_at=now, alert=alert)


def held(alert: Alert, window: str, due: dt.datetime) -> OutboxEntry:
    return OutboxEntry(
        Status.HELD, alert.recipient_id, next_attempt_at=due, via=window, alert=alert
    )


def attempted(entry: OutboxEntry, now: dt.datetime) -> OutboxEntry:
    return replace(
        entry, attempts=entry.attempts + 1, first_attempt_at=entry.first_attempt_at or now
    )


def after_success(entry: OutboxEntry, now: dt.datetime, via: str | None = None) -> OutboxEntry:
    return replace(
        entry, status=Status.SENT, sent_at=now, next_attempt_at=None, via=via, alert=None
    )


def after_failure(
    entry: OutboxEntry,
    failure: Failure,
    error: str,
    now: dt.datetime,
    backoff: Backoff,
    rand: float,
) -> AfterFailure:
    first = entry.first_attempt_at or now
    if failure is Failure.PERMANENT or now - first >= backoff.horizon:
        # Given up: the payload is no longer needed (IG-6); the escalation carries its own.
        done = replace(
            entry,
            status=Status.FAILED,
            last_error=error,
            next_attempt_at=None,
            escalated=True,
            alert=None,
        )
        reason = "permanent" if failure is Failure.PERMANENT else "retry_horizon"
        return AfterFailure(done, None if entry.escalated else reason)
    waiting = replace(
        entry,
        status=Status.PENDING,
        last_error=error,
        next_attempt_at=now + backoff.delay(entry.attempts, rand),
    )
    if failure is Failure.INSECURE and not entry.escalated:
        return AfterFailure(replace(waiting, escalated=True), "insecure")
    return AfterFailure(waiting, None)


def escalation_alert(
    alert: Alert, plan: DeliveryPlan, reason: str, now: dt.datetime
) -> Alert | None:
    """The alert re-addressed to its agency's (or team's) escalation contact, if one is set.

    Escalations of escalations are not made: their failures are only recorded.
    """
    if alert.copy_kind == "escalation":
        return None
    agency = alert.recipient_id.split("/", 1)[0]
    address = plan.contact(agency, alert.recipient_team, "escalation")
    if address is None:
        return None
    return _copy(
        alert,
        "escalation",
        address,
        now,
        note=f"Escalated: this alert could not be delivered to {alert.recipient_name} "
        f"({_REASONS.get(reason, reason)}). Please make sure they, or whoever covers "
        "their cases, see it.",
        why=f"you are the escalation contact for {_whose(alert)}, and the alert could not "
        "reach them",
    )


def _copy(alert: Alert, kind: str, address: str, now: dt.datetime, *, note: str, why: str) -> Alert:
    """``alert`` re-addressed to an agency's ``kind`` contact (escalation, out-of-hours),
    naming whose case it is."""
    agency = alert.recipient_id.split("/", 1)[0]
    contact = kind.replace("_", "-")
    return replace(
        alert,
        alert_id=derived_id(alert.alert_id, contact),
        created_at=now,
        recipient_id=f"{agency}/{contact}",
        recipient_email=address,
        recipient_name=f"{contact} contact",
        copy_of=alert.alert_id,
        copy_kind=kind,
        note=note,
        why=why,
        owner=_owner(alert),
        also_told=(),
    )


def _owner(alert: Alert) -> Contact:
    """Whose case a copy is about: the original recipient, as a colleague reaches them."""
    if alert.recipient_card is not None:
        return alert.recipient_card
    agency = alert.recipient_id.split("/", 1)[0]
    return Contact(
        agency_id=agency,
        service_name=alert.recipient_team or "",
        service_category="",
        practitioner_name=alert.recipient_name,
        role="practitioner",
        is_lead=False,
        email=alert.recipient_email,
        phone=None,
        team=alert.recipient_team,
        out_of_hours_phone=alert.recipient_out_of_hours_phone,
    )


def _whose(alert: Alert) -> str:
    return f"{alert.recipient_name}'s team" if alert.recipient_team else alert.recipient_name


def out_of_hours_alert(alert: Alert, address: str, now: dt.datetime) -> Alert:
    return _copy(
        alert,
        "out_of_hours",
        address,
        now,
        note=f"Out-of-hours copy of an URGENT alert for {alert.recipient_name}.",
        why=f"you are the out-of-hours contact for {_whose(alert)}, and this URGENT alert "
        "arrived outside their working hours",
    )


_REASONS = {
    "permanent": "their mail server refused it",
    "retry_horizon": "delivery kept failing for longer than the retry horizon",
    "insecure": "the mail server could not be reached securely (TLS)",
}
