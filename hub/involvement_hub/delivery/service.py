"""Delivery of one message from ``hub.alerts``: an alert, a retry nudge or a closed digest.

The outbox entry is written after every attempt, and before every retry. A new alert is either held
for its recipient's digest or attempted at once; an URGENT one outside working hours also
queues an out-of-hours copy. A failed attempt is retried later (the ticker nudges it when
due), escalated, or both, as :mod:`involvement_hub.core.outbox` decides. Escalations and
copies are new alerts with ids of their own, queued back onto ``hub.alerts``.

Durable once it is sent (the outbox's promise). Writing a table only queues a changelog
message, so delivery waits on :class:`Durable`: an alert's SENT mark is acknowledged by the
broker right after the 250, before its SMTP connection takes the next alert, so a crash
re-sends at most the alerts in flight -- at most ``in_flight``, the number of SMTP
connections. A first attempt writes nothing before it: the alert is acknowledged on
``hub.alerts`` only once handled, so if the worker stops or dies mid-send the alert itself
is read again. A retry's entry is acknowledged before its SMTP conversation starts (the
retry nudge is the only thing that could bring it back). Derived alerts (out-of-hours
copies, escalations) are acknowledged on ``hub.alerts`` *before* the entry that records
their cause, so a replay that finds the entry can rely on the copy being there too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from involvement_hub.core import outbox as ob
from involvement_hub.core.alerts import Alert
from involvement_hub.core.audit import DisclosureRecord, copy_record, digest_record, expiry_record
from involvement_hub.core.delivery_plan import DeliveryPlan, out_of_hours_copy, schedule
from involvement_hub.core.digest import DigestBox, close, hold
from involvement_hub.core.messages import (
    AlertTopicMessage,
    DeliveryOutcome,
    DeliveryStatus,
    DigestDue,
    RetryNudge,
)
from involvement_hub.core.schedule import Due
from involvement_hub.core.vocabulary import Vocabulary
from involvement_hub.delivery.mailer import Mailer
from involvement_hub.delivery.message import PLAIN, build_digest, build_message
from involvement_hub.errors import (
    InsecureTransportError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from involvement_hub.observability.metrics import HubMetrics


@dataclass
class Stores:
    outbox: MutableMapping[str, ob.OutboxEntry]  # alert or digest id -> entry
    due: MutableMapping[str, Due]  # pending retries, by alert or digest id
    digests: MutableMapping[str, DigestBox]  # by recipient id


class Durable(Protocol):
    """Waits until delivery's bookkeeping is on Kafka, acknowledged by the broker."""

    async def recorded(self, key: str) -> None:
        """The latest outbox (and due) writes for ``key`` are acknowledged."""

    async def queued(self, alerts: Sequence[Alert]) -> None:
        """``alerts`` are on ``hub.alerts``, acknowledged."""


class Immediate:
    """The in-memory twin: a dict store is durable as soon as it is written."""

    async def recorded(self, key: str) -> None:
        return None

    async def queued(self, alerts: Sequence[Alert]) -> None:
        return None


@dataclass
class Deliverer:
    mailer: Mailer
    plan: Callable[[], DeliveryPlan]
    mail_from: str
    backoff: ob.Backoff
    metrics: HubMetrics
    clock: Callable[[], dt.datetime]
    rand: Callable[[], float]
    durable: Durable = field(default_factory=Immediate)
    # At most this many alerts between "SMTP conversation started" and "SENT acknowledged":
    # the most a kill -9 can make the hub send twice. One per SMTP connection.
    in_flight: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(4))
    words: Vocabulary = PLAIN  # the emails' words for the hub's codes


@dataclass
class Result:
    outcomes: list[DeliveryOutcome] = field(default_factory=list)
    queue: list[Alert] = field(default_factory=list)  # copies and escalations to send
    # Disclosures made here: suppressions at send time, copies, escalations, digests.
    audit: list[DisclosureRecord] = field(default_factory=list)


async def handle(message: AlertTopicMessage, stores: Stores, d: Deliverer) -> Result:
    result = Result()
    if isinstance(message, RetryNudge):
        await _retry(message, stores, d, result)
    elif isinstance(message, DigestDue):
        await _digest(message, stores, d, result)
    else:
        await _new_alert(message, stores, d, result)
    return result


def _outcome(
    result: Result,
    d: Deliverer,
    alert_id: str,
    recipient: str,
    status: DeliveryStatus,
    **kw: object,
) -> None:
    result.outcomes.append(DeliveryOutcome(alert_id, recipient, status, d.clock(), **kw))  # type: ignore[arg-type]


async def _new_alert(alert: Alert, stores: Stores, d: Deliverer, result: Result) -> None:
    entry = stores.outbox.get(alert.alert_id)
    if (
        entry is not None
        and entry.status is ob.Status.PENDING
        and entry.alert is not None
        and alert.alert_id not in stores.due
    ):
        # Recorded before an attempt whose result never was (the worker stopped mid-send):
        # no retry is scheduled, so this replay is the only chance to deliver it.
        d.metrics.delivery_retries.inc()
        await _attempt(entry.alert, entry, stores, d, result)
        return
    if entry is not None:
        # A replay (Kafka is at-least-once): the entry already says what happens next.
        if entry.status is ob.Status.SENT:
            d.metrics.emails_duplicate.inc()
        _outcome(
            result,
            d,
            alert.alert_id,
            alert.recipient_id,
            DeliveryStatus.DUPLICATE,
            detail=entry.status.value,
        )
        return
    now = d.clock()
    plan = d.plan()
    copy_to = (
        # Decided by the alert's own time (when it was routed), not by when this worker
        # got to it: a restart or a backlog must not change who gets a copy.
        out_of_hours_copy(alert, plan, alert.recipient_team, alert.created_at)
        if alert.copy_of is None
        else None
    )
    if copy_to is not None:
        copy = ob.out_of_hours_alert(alert, copy_to, now)
        result.queue.append(copy)
        result.audit.append(copy_record(copy, now))  # IG-5: a copy is a disclosure too
        # Before the entry: a replay that finds the entry never makes the copy again; one
        # that does not (a first attempt cut off) makes the same copy, with the same id,
        # which the copy's own entry then recognises.
        await d.durable.queued([copy])
    held = schedule(alert, plan, now) if alert.copy_of is None else None
    if held is not None:
        box = stores.digests.get(alert.recipient_id) or DigestBox(alert.recipient_id)
        stores.digests[alert.recipient_id] = hold(box, alert, held.window, held.due)
        stores.outbox[alert.alert_id] = ob.held(alert, held.window, held.due)
        d.metrics.delivery_queued.labels("held").inc()
        _outcome(
            result, d, alert.alert_id, alert.recipient_id, DeliveryStatus.HELD, detail=held.window
        )
        return
    d.metrics.delivery_queued.labels("immediate").inc()
    await _attempt(alert, ob.pending(alert, now), stores, d, result, first=True)


async def _retry(nudge: RetryNudge, stores: Stores, d: Deliverer, result: Result) -> None:
    entry = stores.outbox.get(nudge.alert_id)
    due = stores.due.get(nudge.alert_id)
    if due is not None and due.digest_window is not None:
        await _digest(DigestDue(nudge.recipient_id, due.digest_window), stores, d, result)
        return
    if entry is None or entry.status is not ob.Status.PENDING or entry.alert is None:
        stores.due.pop(nudge.alert_id, None)  # resolved since the nudge was sent
        return
    if entry.next_attempt_at is not None and entry.next_attempt_at > d.clock():
        return  # nudged early (a duplicate nudge, or a clock step): the ticker will be back
    d.metrics.delivery_retries.inc()
    await _attempt(entry.alert, entry, stores, d, result)


def _expire(
    alert: Alert, entry: ob.OutboxEntry, stores: Stores, d: Deliverer, result: Result
) -> None:
    """IG-2, checked again when sending: the recipient's grace period ran out first."""
    now = d.clock()
    stores.outbox[alert.alert_id] = replace(entry, status=ob.Status.EXPIRED, alert=None)
    stores.due.pop(alert.alert_id, None)
    d.metrics.decisions.labels("SUPPRESS", "ended_before_send").inc()
    result.audit.append(expiry_record(alert, now))
    _outcome(
        result,
        d,
        alert.alert_id,
        alert.recipient_id,
        DeliveryStatus.EXPIRED,
        detail="not sent: its send-by time (the recipient's grace period, IG-2) had passed",
    )


async def _attempt(
    alert: Alert,
    entry: ob.OutboxEntry,
    stores: Stores,
    d: Deliverer,
    result: Result,
    *,
    first: bool = False,
) -> None:
    """One attempt to send ``alert``. A retry is recorded (and acknowledged) before it; a
    first attempt (``first``) only after it, since its alert on ``hub.alerts`` is not
    acknowledged until it is handled, and is read again if the worker stops mid-send."""
    now = d.clock()
    if alert.expired(now):
        _expire(alert, entry, stores, d, result)
        return
    entry = ob.attempted(entry, now)
    if not first:
        _record_attempt(alert, entry, stores, d, now)
        await d.durable.recorded(alert.alert_id)
    message = build_message(alert, d.mail_from, d.clock(), d.words, d.plan().zone)
    async with d.in_flight:
        try:
            await d.mailer.send(message)
        except (TransientDeliveryError, PermanentDeliveryError, InsecureTransportError) as exc:
            await _failed(alert.alert_id, alert, entry, exc, stores, d, result)
            return
        except Exception:
            if first:
                # A failure the mailer does not know (a defect): the stage quarantines the
                # alert and acknowledges it, so the ticker must be able to retry it.
                _record_attempt(alert, entry, stores, d, now)
                await d.durable.recorded(alert.alert_id)
            raise
        accepted = d.clock()
        stores.outbox[alert.alert_id] = ob.after_success(entry, accepted)
        if alert.alert_id in stores.due:
            del stores.due[alert.alert_id]
        await d.durable.recorded(alert.alert_id)
    _sent(alert, accepted, d)
    _outcome(
        result,
        d,
        alert.alert_id,
        alert.recipient_id,
        DeliveryStatus.SENT,
        attempts=entry.attempts,
        via=alert.copy_of,
    )


def _record_attempt(
    alert: Alert, entry: ob.OutboxEntry, stores: Stores, d: Deliverer, now: dt.datetime
) -> None:
    """The entry of an attempt about to start, and a due time should it never report back:
    a nudge that comes while the send is still going waits behind it, then finds the
    entry SENT, or not yet due again."""
    stores.outbox[alert.alert_id] = entry
    if alert.alert_id not in stores.due:
        retry_at = now + d.backoff.delay(entry.attempts, d.rand())
        stores.due[alert.alert_id] = Due(
            alert.recipient_id, retry_at, entry.first_attempt_at or now, urgency=alert.urgency
        )


def _sent(alert: Alert, accepted: dt.datetime, d: Deliverer) -> None:
    d.metrics.emails_sent.labels(alert.urgency.value).inc()
    if alert.earlier:
        return  # a catch-up tells of events ingested days ago: not the hub's latency
    latency = (accepted - alert.ingested_at).total_seconds()
    d.metrics.end_to_end_latency.labels(alert.urgency.value).observe(max(latency, 0.0))


def _failure(exc: Exception) -> ob.Failure:
    if isinstance(exc, PermanentDeliveryError):
        return ob.Failure.PERMANENT
    if isinstance(exc, InsecureTransportError):
        return ob.Failure.INSECURE
    return ob.Failure.TRANSIENT


async def _failed(
    key: str,
    alert: Alert,
    entry: ob.OutboxEntry,
    exc: Exception,
    stores: Stores,
    d: Deliverer,
    result: Result,
    digest_window: str | None = None,
) -> None:
    failure = _failure(exc)
    d.metrics.emails_failed.labels(failure.value).inc()
    now = d.clock()
    after = ob.after_failure(entry, failure, str(exc), now, d.backoff, d.rand())
    outcomes_before = len(result.outcomes)
    if after.escalate is not None and alert.copy_kind != "escalation":
        # An escalation that cannot be delivered is only recorded (FAILED or RETRY below):
        # there is nobody further to escalate to. The escalation is on Kafka before the
        # entry that says it was made.
        await _escalate(alert, after.escalate, d, result)
    # Its outcome is reported after the failure's, in the order a reader expects.
    escalated = _take_outcomes_after(result, outcomes_before)
    stores.outbox[key] = after.entry
    if after.entry.status is ob.Status.PENDING and after.entry.next_attempt_at is not None:
        since = after.entry.first_attempt_at or now
        stores.due[key] = Due(
            alert.recipient_id,
            after.entry.next_attempt_at,
            since,
            digest_window,
            urgency=alert.urgency,
        )
        status = DeliveryStatus.RETRY
    else:
        stores.due.pop(key, None)
        status = DeliveryStatus.FAILED
    _outcome(
        result, d, key, alert.recipient_id, status, detail=str(exc), attempts=after.entry.attempts
    )
    result.outcomes.extend(escalated)


def _take_outcomes_after(result: Result, start: int) -> list[DeliveryOutcome]:
    taken = result.outcomes[start:]
    del result.outcomes[start:]
    return taken


async def _escalate(alert: Alert, reason: str, d: Deliverer, result: Result) -> None:
    d.metrics.delivery_escalations.labels(reason).inc()
    copy = ob.escalation_alert(alert, d.plan(), reason, d.clock())
    detail = reason if copy is not None else f"{reason}; no escalation contact configured"
    _outcome(
        result,
        d,
        alert.alert_id,
        alert.recipient_id,
        DeliveryStatus.ESCALATED,
        detail=detail,
        via=copy.alert_id if copy is not None else None,
    )
    if copy is not None:
        result.queue.append(copy)
        result.audit.append(copy_record(copy, d.clock()))  # IG-5: so is an escalation
        await d.durable.queued([copy])


async def _digest(due: DigestDue, stores: Stores, d: Deliverer, result: Result) -> None:
    box = stores.digests.get(due.recipient_id)
    window = box.window(due.window) if box is not None else None
    if box is None or window is None:
        return
    digest_id = window.digest_id(due.recipient_id)
    entry = stores.outbox.get(digest_id)
    now = d.clock()
    if (
        entry is not None
        and entry.status is ob.Status.PENDING
        and entry.next_attempt_at
        and entry.next_attempt_at > now
    ):
        return
    alerts = []
    for alert in window.alerts:
        if not _still_held(stores, alert.alert_id):
            continue
        if alert.expired(now):
            _expire(alert, stores.outbox[alert.alert_id], stores, d, result)
        else:
            alerts.append(alert)
    if entry is not None and entry.status is ob.Status.FAILED:
        # Given up before a restart could record it everywhere: finish the bookkeeping.
        _give_up_digest(box, window.window, alerts, stores)
        return
    if (entry is not None and entry.status is ob.Status.SENT) or not alerts:
        _finish_digest(box, window.window, alerts, digest_id, stores, now)
        return
    entry = ob.attempted(
        entry or ob.OutboxEntry(ob.Status.PENDING, due.recipient_id, first_attempt_at=now), now
    )
    stores.outbox[digest_id] = entry
    await d.durable.recorded(digest_id)
    preference = d.plan().preference(due.recipient_id)
    message = build_digest(
        alerts,
        digest_id=digest_id,
        window=window.window,
        preference=preference.mode.value,
        mail_from=d.mail_from,
        now=now,
        words=d.words,
        zone=d.plan().zone,
    )
    async with d.in_flight:
        try:
            await d.mailer.send(message)
        except (TransientDeliveryError, PermanentDeliveryError, InsecureTransportError) as exc:
            await _digest_failed(
                exc, digest_id, entry, window.window, box, alerts, stores, d, result
            )
            return
        accepted = d.clock()
        stores.outbox[digest_id] = ob.after_success(entry, accepted)
        stores.due.pop(digest_id, None)
        await d.durable.recorded(digest_id)
    result.audit.append(digest_record(due.recipient_id, digest_id, alerts, accepted))
    _outcome(result, d, digest_id, due.recipient_id, DeliveryStatus.SENT, attempts=entry.attempts)
    for alert in alerts:
        _sent(alert, accepted, d)
        _outcome(result, d, alert.alert_id, alert.recipient_id, DeliveryStatus.SENT, via=digest_id)
    d.metrics.digest_size.observe(len(alerts))
    _finish_digest(box, window.window, alerts, digest_id, stores, accepted)


async def _digest_failed(
    exc: Exception,
    digest_id: str,
    entry: ob.OutboxEntry,
    window: str,
    box: DigestBox,
    alerts: list[Alert],
    stores: Stores,
    d: Deliverer,
    result: Result,
) -> None:
    """A digest that failed: retried as a whole; escalated (and given up) alert by alert."""
    failure = _failure(exc)
    d.metrics.emails_failed.labels(failure.value).inc()
    now = d.clock()
    after = ob.after_failure(entry, failure, str(exc), now, d.backoff, d.rand())
    outcomes_before = len(result.outcomes)
    if after.escalate is not None:
        # Each alert in the digest is escalated on its own: its escalation contact may
        # differ. On Kafka before the entry that says so.
        for alert in alerts:
            await _escalate(alert, after.escalate, d, result)
    escalated = _take_outcomes_after(result, outcomes_before)
    stores.outbox[digest_id] = after.entry
    recipient = box.recipient_id
    if after.entry.status is ob.Status.PENDING and after.entry.next_attempt_at is not None:
        since = after.entry.first_attempt_at or now
        stores.due[digest_id] = Due(recipient, after.entry.next_attempt_at, since, window)
        status = DeliveryStatus.RETRY
    else:
        stores.due.pop(digest_id, None)
        status = DeliveryStatus.FAILED
    _outcome(
        result, d, digest_id, recipient, status, detail=str(exc), attempts=after.entry.attempts
    )
    result.outcomes.extend(escalated)
    if after.entry.status is ob.Status.FAILED:
        _give_up_digest(box, window, alerts, stores)


def _give_up_digest(box: DigestBox, window: str, alerts: list[Alert], stores: Stores) -> None:
    for alert in alerts:
        entry = stores.outbox.get(alert.alert_id)
        if entry is not None and entry.status is ob.Status.HELD:
            stores.outbox[alert.alert_id] = replace(
                entry, status=ob.Status.FAILED, alert=None, escalated=True
            )
    remaining = close(box, window)
    if remaining.windows:
        stores.digests[box.recipient_id] = remaining
    else:
        stores.digests.pop(box.recipient_id, None)


def _still_held(stores: Stores, alert_id: str) -> bool:

    entry = stores.outbox.get(alert_id)
    return entry is not None and entry.status is ob.Status.HELD


def _finish_digest(
    box: DigestBox,
    window: str,
    alerts: list[Alert],
    digest_id: str,
    stores: Stores,
    now: dt.datetime,
) -> None:
    for alert in alerts:
        entry = stores.outbox.get(alert.alert_id)
        if entry is not None and entry.status is ob.Status.HELD:
            stores.outbox[alert.alert_id] = ob.after_success(entry, now, via=digest_id)
    remaining = close(box, window)
    if remaining.windows:
        stores.digests[box.recipient_id] = remaining
    else:
        stores.digests.pop(box.recipient_id, None)
