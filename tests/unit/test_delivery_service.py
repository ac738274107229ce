"""Delivery of one message from ``hub.alerts`` (delivery/service.handle), without Kafka or SMTP.

The stores are dicts, the mailer is the in-memory twin (told to fail where a test needs it),
the clock is advanced by hand and the jitter is pinned (``rand`` = 0.5: no jitter), so every
time and every outbox entry is known exactly. Synthetic practitioners at ``.example`` only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
from dataclasses import replace
from email.message import EmailMessage

import pytest
from involvement_hub.core import outbox as ob
from involvement_hub.core.alerts import Alert
from involvement_hub.core.delivery_plan import (
    Contact,
    DeliveryPlan,
    Mode,
    Preference,
    WorkingHours,
    derived_id,
)
from involvement_hub.core.digest import DigestBox
from involvement_hub.core.messages import DigestDue, RetryNudge
from involvement_hub.core.model import Urgency
from involvement_hub.core.schedule import Due
from involvement_hub.delivery.mailer import MemoryMailer
from involvement_hub.delivery.service import Deliverer, Result, Stores, handle
from involvement_hub.errors import (
    InsecureTransportError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from involvement_hub.observability.metrics import HubMetrics, create_metrics
from support.alerts import an_alert

SOCIAL_CARE = "northshire-social-care"
RECIPIENT = f"{SOCIAL_CARE}/SW-301"
MAIL_FROM = "involvement-hub@hub.northshire.example"
TEAM = "Children in Need North"
# Wednesday 25 November 2026: London is on GMT, so local time is UTC.
IN_HOURS = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)
OUT_OF_HOURS = dt.datetime(2026, 11, 25, 20, 0, tzinfo=dt.UTC)
BACKOFF = ob.Backoff(
    base=dt.timedelta(seconds=30), cap=dt.timedelta(minutes=30), horizon=dt.timedelta(hours=24)
)
PLAN = DeliveryPlan(
    working_hours=WorkingHours(),
    contacts=(
        Contact(
            SOCIAL_CARE,
            None,
            "duty-desk@social-care.northshire.example",
            "emergency-duty-team@social-care.northshire.example",
        ),
        Contact(SOCIAL_CARE, TEAM, "cin-north-managers@social-care.northshire.example", None),
    ),
)


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


class Setup:
    """Everything ``handle`` needs, with dict stores the tests can read and write."""

    def __init__(
        self, now: dt.datetime = IN_HOURS, plan: DeliveryPlan = PLAN, backoff: ob.Backoff = BACKOFF
    ) -> None:
        self.clock = Clock(now)
        self.mailer = MemoryMailer()
        self.metrics: HubMetrics = create_metrics()
        self.stores = Stores(outbox={}, due={}, digests={})
        self.plan = plan
        self.deliverer = Deliverer(
            mailer=self.mailer,
            plan=lambda: self.plan,
            mail_from=MAIL_FROM,
            backoff=backoff,
            metrics=self.metrics,
            clock=self.clock,
            rand=lambda: 0.5,
        )

    async def handle(self, message: object) -> Result:
        return await handle(message, self.stores, self.deliverer)  # type: ignore[arg-type]

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0

    def entry(self, key: str) -> ob.OutboxEntry:
        return self.stores.outbox[key]


def alert(
    n: int = 1,
    *,
    urgency: Urgency = Urgency.PRIORITY,
    recipient: str = RECIPIENT,
    team: str | None = TEAM,
    at: dt.datetime = IN_HOURS,
) -> Alert:
    return an_alert(
        at=at,
        alert_id=f"{n:032x}",
        event_key=f"northshire-police/evt-{n}",
        recipient_id=recipient,
        case_ref=f"CIN-{300 + n}",
        kind="POLICE_CUSTODY",
        urgency=urgency,
        source_agency="northshire-police",
        recipient_team=team,
    )


def statuses(result: Result) -> list[str]:
    return [o.status for o in result.outcomes]


def message_id(key: str) -> str:
    return f"<{key}@hub.northshire.example>"


# -- a new alert ---------------------------------------------------------------------


async def test_a_new_alert_is_recorded_once_sent_and_its_payload_dropped() -> None:
    s = Setup()
    seen_during_send: list[ob.OutboxEntry | None] = []

    class Inspecting(MemoryMailer):
        async def send(self, message: EmailMessage) -> None:
            seen_during_send.append(s.stores.outbox.get(alert().alert_id))
            await super().send(message)

    s.deliverer.mailer = s.mailer = Inspecting()

    result = await s.handle(alert())

    # A first attempt writes nothing before it: the alert on hub.alerts is what is read
    # again should the worker stop mid-send ...
    assert seen_during_send == [None]
    # ... and it is marked after the 250, keeping only the facts (IG-6).
    after = s.entry(alert().alert_id)
    assert after.status is ob.Status.SENT
    assert after.sent_at == IN_HOURS
    assert after.alert is None
    assert statuses(result) == ["SENT"]
    assert result.outcomes[0].attempts == 1
    assert result.queue == []
    (sent,) = s.mailer.sent
    assert sent["Message-ID"] == message_id(alert().alert_id)
    assert s.stores.due == {}
    assert s.metric("hub_emails_sent_total", urgency=Urgency.PRIORITY) == 1
    assert s.metric("hub_delivery_queued_total", how="immediate") == 1


async def test_a_replayed_alert_that_was_sent_is_a_duplicate_and_not_sent_again() -> None:
    s = Setup()
    await s.handle(alert())
    s.clock.advance(minutes=5)

    result = await s.handle(alert())

    assert statuses(result) == ["DUPLICATE"]
    assert result.outcomes[0].detail == "SENT"
    assert len(s.mailer.sent) == 1
    assert s.metric("hub_emails_duplicate_skipped_total") == 1


async def test_a_replayed_alert_whose_first_attempt_was_interrupted_is_sent() -> None:
    """A worker stopped mid-send leaves the entry PENDING (written before the send) with no
    retry scheduled; the replayed alert is then the only thing that can still deliver it."""
    s = Setup()
    interrupted = ob.attempted(ob.pending(alert(), IN_HOURS), IN_HOURS)
    s.stores.outbox[alert().alert_id] = interrupted
    s.clock.advance(minutes=1)

    result = await s.handle(alert())

    assert statuses(result) == ["SENT"]
    assert len(s.mailer.sent) == 1
    assert s.entry(alert().alert_id).status is ob.Status.SENT


async def test_a_first_attempt_cut_off_leaves_nothing_and_the_alert_read_again_is_sent() -> None:
    """Stopping a worker cancels a send in flight. The alert is not acknowledged on
    hub.alerts (delivery acknowledges each alert once handled), so the restarted worker
    reads it again; nothing recorded stands in its way."""
    s = Setup()

    class Cancelled(MemoryMailer):
        async def send(self, message: EmailMessage) -> None:
            raise asyncio.CancelledError

    s.deliverer.mailer = Cancelled()
    with pytest.raises(asyncio.CancelledError):
        await s.handle(alert())
    assert s.stores.outbox == {}
    assert s.stores.due == {}

    s.deliverer.mailer = s.mailer
    result = await s.handle(alert())

    assert statuses(result) == ["SENT"]
    assert result.outcomes[0].attempts == 1
    assert len(s.mailer.sent) == 1


async def test_a_first_attempt_that_fails_unexpectedly_is_left_for_the_ticker() -> None:
    """A failure the mailer does not know (a defect) is the stage's to quarantine, and the
    quarantined alert is acknowledged: the attempt is recorded, with a due time, so the
    ticker retries it."""
    s = Setup()

    class Broken(MemoryMailer):
        async def send(self, message: EmailMessage) -> None:
            raise RuntimeError("a defect")

    s.deliverer.mailer = Broken()
    with pytest.raises(RuntimeError):
        await s.handle(alert())

    entry = s.entry(alert().alert_id)
    assert (entry.status, entry.attempts) == (ob.Status.PENDING, 1)
    retry_at = IN_HOURS + dt.timedelta(seconds=30)
    assert s.stores.due == {
        alert().alert_id: Due(RECIPIENT, retry_at, IN_HOURS, urgency=Urgency.PRIORITY)
    }

    s.deliverer.mailer = s.mailer
    s.clock.now = retry_at
    result = await s.handle(RetryNudge(RECIPIENT, alert().alert_id))

    assert statuses(result) == ["SENT"]
    assert result.outcomes[0].attempts == 2
    assert s.stores.due == {}


# -- transient failures ----------------------------------------------------------------


async def test_a_transient_failure_is_retried_after_the_backoff() -> None:
    s = Setup()
    s.mailer.failures.append(TransientDeliveryError("server said 421"))

    result = await s.handle(alert())

    assert statuses(result) == ["RETRY"]
    assert result.outcomes[0].detail == "server said 421"
    entry = s.entry(alert().alert_id)
    assert entry.status is ob.Status.PENDING
    assert entry.attempts == 1
    assert entry.alert == alert()  # kept: it still has to be sent
    retry_at = IN_HOURS + BACKOFF.delay(1, 0.5)
    assert retry_at == IN_HOURS + dt.timedelta(seconds=30)
    assert entry.next_attempt_at == retry_at
    assert s.stores.due == {
        alert().alert_id: Due(RECIPIENT, retry_at, IN_HOURS, urgency=Urgency.PRIORITY)
    }
    assert s.mailer.sent == []
    assert s.metric("hub_emails_failed_total", failure="transient") == 1


async def test_a_retry_nudge_before_the_alert_is_due_does_nothing() -> None:
    s = Setup()
    s.mailer.failures.append(TransientDeliveryError("server said 451"))
    await s.handle(alert())
    s.clock.advance(seconds=29)

    result = await s.handle(RetryNudge(RECIPIENT, alert().alert_id))

    assert result.outcomes == []
    assert s.mailer.sent == []
    assert alert().alert_id in s.stores.due
    assert s.entry(alert().alert_id).attempts == 1


async def test_a_retry_nudge_when_due_sends_the_alert() -> None:
    s = Setup()
    s.mailer.failures.append(TransientDeliveryError("server said 451"))
    await s.handle(alert())
    s.clock.advance(seconds=30)

    result = await s.handle(RetryNudge(RECIPIENT, alert().alert_id))

    assert statuses(result) == ["SENT"]
    assert result.outcomes[0].attempts == 2
    assert len(s.mailer.sent) == 1
    assert s.stores.due == {}
    entry = s.entry(alert().alert_id)
    assert (entry.status, entry.alert, entry.first_attempt_at) == (ob.Status.SENT, None, IN_HOURS)
    assert s.metric("hub_delivery_retries_total") == 1
    # A late duplicate nudge finds nothing to do.
    assert (await s.handle(RetryNudge(RECIPIENT, alert().alert_id))).outcomes == []
    assert len(s.mailer.sent) == 1


async def test_transient_failures_past_the_horizon_fail_and_escalate() -> None:
    s = Setup(backoff=ob.Backoff(horizon=dt.timedelta(hours=1)))
    s.mailer.failures.extend(TransientDeliveryError("connection refused") for _ in range(2))
    await s.handle(alert())
    s.clock.advance(hours=1)

    result = await s.handle(RetryNudge(RECIPIENT, alert().alert_id))

    assert statuses(result) == ["FAILED", "ESCALATED"]
    assert result.outcomes[1].detail == "retry_horizon"
    entry = s.entry(alert().alert_id)
    assert (entry.status, entry.escalated, entry.attempts) == (ob.Status.FAILED, True, 2)
    assert entry.alert is None  # given up: only the facts remain (IG-6)
    assert s.stores.due == {}
    (escalation,) = result.queue
    assert escalation.copy_kind == "escalation"
    assert s.metric("hub_delivery_escalations_total", reason="retry_horizon") == 1


# -- permanent and insecure failures ---------------------------------------------------------


async def test_a_permanent_failure_is_not_retried_and_goes_to_the_teams_escalation_contact() -> (
    None
):
    s = Setup()
    s.mailer.failures.append(PermanentDeliveryError("recipient refused (550)"))

    result = await s.handle(alert())

    assert statuses(result) == ["FAILED", "ESCALATED"]
    assert [o.alert_id for o in result.outcomes] == [alert().alert_id] * 2
    entry = s.entry(alert().alert_id)
    assert (entry.status, entry.escalated, entry.alert) == (ob.Status.FAILED, True, None)
    assert s.stores.due == {}
    (escalation,) = result.queue
    assert escalation.alert_id == derived_id(alert().alert_id, "escalation")
    assert result.outcomes[1].via == escalation.alert_id
    assert escalation.recipient_email == "cin-north-managers@social-care.northshire.example"
    assert escalation.recipient_id == f"{SOCIAL_CARE}/escalation"
    assert (escalation.copy_kind, escalation.copy_of) == ("escalation", alert().alert_id)
    assert escalation.note is not None
    assert "Alex Morgan" in escalation.note
    assert "refused" in escalation.note
    assert escalation.case_ref == alert().case_ref
    (record,) = result.audit  # IG-5: the escalation is a disclosure of its own
    assert (record.recipient_id, record.alert_id, record.copy_of) == (
        escalation.recipient_id,
        escalation.alert_id,
        alert().alert_id,
    )
    assert (record.role, record.rule_id, record.outcome) == (
        "ESCALATION_CONTACT",
        "delivery:escalation",
        "SEND",
    )
    assert record.lawful_basis == alert().lawful_basis
    assert "escalation contact" in record.why
    assert s.metric("hub_delivery_escalations_total", reason="permanent") == 1
    assert s.metric("hub_emails_failed_total", failure="permanent") == 1


async def test_without_a_team_contact_the_agency_escalation_contact_is_used() -> None:
    s = Setup()
    s.mailer.failures.append(PermanentDeliveryError("server said 550"))

    result = await s.handle(alert(team="Some Other Team"))

    (escalation,) = result.queue
    assert escalation.recipient_email == "duty-desk@social-care.northshire.example"


async def test_without_any_escalation_contact_the_failure_is_recorded() -> None:
    s = Setup(plan=DeliveryPlan())
    s.mailer.failures.append(PermanentDeliveryError("server said 550"))

    result = await s.handle(alert())

    assert statuses(result) == ["FAILED", "ESCALATED"]
    assert "no escalation contact configured" in result.outcomes[1].detail
    assert result.queue == []


async def test_the_escalation_is_sent_like_any_alert() -> None:
    s = Setup()
    s.mailer.failures.append(PermanentDeliveryError("server said 550"))
    (escalation,) = (await s.handle(alert())).queue

    result = await s.handle(escalation)

    assert statuses(result) == ["SENT"]
    assert result.outcomes[0].via == alert().alert_id
    assert result.queue == []  # an escalation is never copied out of hours
    (sent,) = s.mailer.sent
    assert sent["To"] == "cin-north-managers@social-care.northshire.example"
    assert sent["Message-ID"] == message_id(escalation.alert_id)
    assert sent["Subject"].startswith("[ESCALATED")


async def test_an_escalations_own_failure_is_recorded_and_not_escalated_again() -> None:
    s = Setup()
    s.mailer.failures.append(PermanentDeliveryError("server said 550"))
    (escalation,) = (await s.handle(alert())).queue
    s.mailer.failures.append(PermanentDeliveryError("server said 550"))

    result = await s.handle(escalation)

    assert statuses(result) == ["FAILED"]
    assert result.outcomes[0].alert_id == escalation.alert_id
    assert result.queue == []
    assert s.entry(escalation.alert_id).status is ob.Status.FAILED
    assert s.metric("hub_delivery_escalations_total", reason="permanent") == 1


async def test_an_insecure_server_escalates_once_and_the_alert_keeps_waiting() -> None:
    s = Setup()
    s.mailer.failures.append(InsecureTransportError("server does not offer STARTTLS"))

    first = await s.handle(alert())

    assert statuses(first) == ["RETRY", "ESCALATED"]
    assert first.outcomes[1].detail == "insecure"
    (escalation,) = first.queue
    assert escalation.note is not None
    assert "TLS" in escalation.note
    entry = s.entry(alert().alert_id)
    assert (entry.status, entry.escalated) == (ob.Status.PENDING, True)
    assert entry.alert == alert()
    assert alert().alert_id in s.stores.due

    s.mailer.failures.append(InsecureTransportError("server does not offer STARTTLS"))
    s.clock.advance(minutes=1)
    second = await s.handle(RetryNudge(RECIPIENT, alert().alert_id))

    assert statuses(second) == ["RETRY"]  # escalated once only
    assert second.queue == []
    assert s.entry(alert().alert_id).status is ob.Status.PENDING
    assert s.metric("hub_delivery_escalations_total", reason="insecure") == 1
    assert s.mailer.sent == []

    s.clock.advance(minutes=5)  # the server is fixed
    third = await s.handle(RetryNudge(RECIPIENT, alert().alert_id))
    assert statuses(third) == ["SENT"]


# -- urgency and out of hours -----------------------------------------------------------------


async def test_an_urgent_alert_out_of_hours_is_sent_and_copied_to_the_out_of_hours_contact() -> (
    None
):
    s = Setup(now=OUT_OF_HOURS)
    urgent = alert(urgency=Urgency.URGENT, at=OUT_OF_HOURS)

    result = await s.handle(urgent)

    assert statuses(result) == ["SENT"]
    (copy,) = result.queue
    assert copy.recipient_email == "emergency-duty-team@social-care.northshire.example"
    assert copy.recipient_id == f"{SOCIAL_CARE}/out-of-hours"
    assert (copy.copy_kind, copy.copy_of) == ("out_of_hours", urgent.alert_id)
    assert copy.alert_id == derived_id(urgent.alert_id, "out-of-hours")
    (record,) = result.audit  # IG-5: the copy is a disclosure of its own
    assert (record.recipient_id, record.alert_id, record.copy_of, record.role) == (
        copy.recipient_id,
        copy.alert_id,
        urgent.alert_id,
        "OUT_OF_HOURS_CONTACT",
    )
    assert (record.person_id, record.kind, record.urgency) == (
        urgent.person_id or "",
        urgent.kind,
        Urgency.URGENT,
    )
    # The copy itself is delivered at once and not copied again.
    copied = await s.handle(copy)
    assert statuses(copied) == ["SENT"]
    assert copied.queue == []
    assert [m["To"] for m in s.mailer.sent] == [
        urgent.recipient_email,
        "emergency-duty-team@social-care.northshire.example",
    ]


@pytest.mark.parametrize(
    ("now", "urgency"),
    [(IN_HOURS, Urgency.URGENT), (OUT_OF_HOURS, Urgency.PRIORITY)],
    ids=["urgent-in-hours", "priority-out-of-hours"],
)
async def test_no_out_of_hours_copy_in_hours_or_below_urgent(
    now: dt.datetime, urgency: Urgency
) -> None:
    s = Setup(now=now)

    result = await s.handle(alert(urgency=urgency, at=now))

    assert statuses(result) == ["SENT"]
    assert result.queue == []


# -- digests -----------------------------------------------------------------------------------


def with_preference(mode: Mode, at: dt.time | None = None) -> DeliveryPlan:
    return DeliveryPlan(
        working_hours=PLAN.working_hours,
        contacts=PLAN.contacts,
        preferences={RECIPIENT: Preference(mode, at)},
    )


@pytest.mark.parametrize(
    ("mode", "now", "window", "due"),
    [
        (
            Mode.HOURLY,
            IN_HOURS + dt.timedelta(minutes=20),
            "hourly:2026-11-25T10:00:00+00:00",
            IN_HOURS + dt.timedelta(hours=1),
        ),
        (
            Mode.DAILY,
            IN_HOURS,
            "daily:2026-11-26T08:00:00+00:00",
            dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.UTC),
        ),
        (
            Mode.WORKING_HOURS,
            OUT_OF_HOURS,
            "working:2026-11-26T09:00:00+00:00",
            dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC),
        ),
    ],
    ids=["hourly", "daily", "working-hours"],
)
async def test_a_routine_alert_is_held_for_the_recipients_digest(
    mode: Mode, now: dt.datetime, window: str, due: dt.datetime
) -> None:
    s = Setup(now=now, plan=with_preference(mode, dt.time(8, 0)))
    routine = alert(urgency=Urgency.ROUTINE, at=now)

    result = await s.handle(routine)

    assert statuses(result) == ["HELD"]
    assert result.outcomes[0].detail == window
    assert s.mailer.sent == []
    entry = s.entry(routine.alert_id)
    assert (entry.status, entry.via, entry.next_attempt_at) == (ob.Status.HELD, window, due)
    box = s.stores.digests[RECIPIENT]
    assert [(w.window, w.due, w.alerts) for w in box.windows] == [(window, due, (routine,))]
    assert s.metric("hub_delivery_queued_total", how="held") == 1


async def test_urgent_and_priority_alerts_are_never_held() -> None:
    s = Setup(plan=with_preference(Mode.DAILY, dt.time(8, 0)))

    urgent = await s.handle(alert(1, urgency=Urgency.URGENT))
    priority = await s.handle(alert(2, urgency=Urgency.PRIORITY))

    assert statuses(urgent) == statuses(priority) == ["SENT"]
    assert s.stores.digests == {}


async def test_a_routine_alert_for_a_working_hours_practitioner_in_hours_goes_at_once() -> None:
    s = Setup(plan=with_preference(Mode.WORKING_HOURS))

    result = await s.handle(alert(urgency=Urgency.ROUTINE))

    assert statuses(result) == ["SENT"]


async def hold_three(s: Setup) -> tuple[list[Alert], str]:
    held = [alert(n, urgency=Urgency.ROUTINE) for n in (1, 2, 3)]
    for routine in held:
        await s.handle(routine)
    (window,) = s.stores.digests[RECIPIENT].windows
    return held, window.window


async def test_a_closed_window_sends_one_digest_of_every_held_alert() -> None:
    s = Setup(plan=with_preference(Mode.DAILY, dt.time(8, 0)))
    held, window = await hold_three(s)
    s.clock.now = dt.datetime(2026, 11, 26, 8, 0, 5, tzinfo=dt.UTC)

    result = await s.handle(DigestDue(RECIPIENT, window))

    digest_id = derived_id(RECIPIENT, window)
    (sent,) = s.mailer.sent
    assert sent["Message-ID"] == message_id(digest_id)
    assert sent["To"] == "alex.morgan@social-care.northshire.example"
    assert sent["Subject"] == "[DIGEST] Involvement hub: 3 updates on your cases"
    parsed = email.message_from_bytes(sent.as_bytes(), policy=email.policy.default)
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[attr-defined]
    for routine in held:
        assert routine.alert_id in text
        assert routine.case_ref in text
    assert digest_id in text
    assert [(o.alert_id, o.status, o.via) for o in result.outcomes] == [
        (digest_id, "SENT", None),
        *((a.alert_id, "SENT", digest_id) for a in held),
    ]
    (record,) = result.audit  # the digest email is a disclosure of its own
    assert (record.recipient_id, record.alert_id, record.kind) == (RECIPIENT, digest_id, "DIGEST")
    assert record.includes == tuple(a.alert_id for a in held)
    assert record.outcome == "SEND"
    for routine in held:
        entry = s.entry(routine.alert_id)
        assert (entry.status, entry.via, entry.alert) == (ob.Status.SENT, digest_id, None)
    assert s.entry(digest_id).status is ob.Status.SENT
    assert s.stores.digests == {}  # the window is closed
    assert s.metric("hub_digest_size_alerts_count") == 1
    assert s.metric("hub_digest_size_alerts_sum") == 3
    assert s.metric("hub_emails_sent_total", urgency="ROUTINE") == 3


async def test_a_second_digest_due_for_the_same_window_sends_nothing() -> None:
    s = Setup(plan=with_preference(Mode.DAILY, dt.time(8, 0)))
    _, window = await hold_three(s)
    s.clock.now = dt.datetime(2026, 11, 26, 8, 0, 5, tzinfo=dt.UTC)
    await s.handle(DigestDue(RECIPIENT, window))

    again = await s.handle(DigestDue(RECIPIENT, window))

    assert again.outcomes == []
    assert len(s.mailer.sent) == 1


async def test_a_digest_sent_before_a_restart_could_close_its_window_is_not_sent_again() -> None:
    """The digest's entry says SENT but the window (written later) survived a crash."""
    s = Setup(plan=with_preference(Mode.DAILY, dt.time(8, 0)))
    held, window = await hold_three(s)
    box_before = s.stores.digests[RECIPIENT]
    s.clock.now = dt.datetime(2026, 11, 26, 8, 0, 5, tzinfo=dt.UTC)
    await s.handle(DigestDue(RECIPIENT, window))
    s.stores.digests[RECIPIENT] = box_before  # as if that write had been lost
    for routine in held:
        s.stores.outbox[routine.alert_id] = ob.held(routine, window, s.clock.now)

    result = await s.handle(DigestDue(RECIPIENT, window))

    assert result.outcomes == []
    assert len(s.mailer.sent) == 1
    assert s.stores.digests == {}
    assert all(s.entry(a.alert_id).status is ob.Status.SENT for a in held)


async def test_a_digest_that_fails_transiently_is_retried_through_its_due_entry() -> None:
    s = Setup(plan=with_preference(Mode.DAILY, dt.time(8, 0)))
    held, window = await hold_three(s)
    closed = dt.datetime(2026, 11, 26, 8, 0, 5, tzinfo=dt.UTC)
    s.clock.now = closed
    s.mailer.failures.append(TransientDeliveryError("server said 421"))

    failed = await s.handle(DigestDue(RECIPIENT, window))

    digest_id = derived_id(RECIPIENT, window)
    assert [(o.alert_id, o.status) for o in failed.outcomes] == [(digest_id, "RETRY")]
    assert s.stores.due[digest_id] == Due(
        RECIPIENT, closed + dt.timedelta(seconds=30), closed, window
    )
    assert all(s.entry(a.alert_id).status is ob.Status.HELD for a in held)
    # The ticker sees the window is due but leaves it to the due entry; an early nudge waits.
    assert (await s.handle(DigestDue(RECIPIENT, window))).outcomes == []
    s.clock.advance(seconds=30)

    retried = await s.handle(RetryNudge(RECIPIENT, digest_id))

    assert [o.status for o in retried.outcomes] == ["SENT"] * 4  # the digest and its three
    (sent,) = s.mailer.sent
    assert sent["Message-ID"] == message_id(digest_id)
    assert s.stores.due == {}
    assert s.stores.digests == {}
    assert s.entry(digest_id).attempts == 2


async def test_a_digest_given_up_at_the_horizon_fails_and_escalates_every_alert() -> None:
    s = Setup(
        plan=with_preference(Mode.DAILY, dt.time(8, 0)),
        backoff=ob.Backoff(horizon=dt.timedelta(hours=1)),
    )
    held, window = await hold_three(s)
    s.clock.now = dt.datetime(2026, 11, 26, 8, 0, 5, tzinfo=dt.UTC)
    s.mailer.failures.extend(TransientDeliveryError("connection refused") for _ in range(2))
    await s.handle(DigestDue(RECIPIENT, window))
    s.clock.advance(hours=1)
    gave_up = await s.handle(RetryNudge(RECIPIENT, derived_id(RECIPIENT, window)))
    again = await s.handle(DigestDue(RECIPIENT, window))  # the ticker sees the window still due

    outcomes = [*gave_up.outcomes, *again.outcomes]
    assert sorted(o.alert_id for o in outcomes if o.status == "ESCALATED") == sorted(
        a.alert_id for a in held
    )
    assert [s.entry(a.alert_id).status for a in held] == [ob.Status.FAILED] * 3
    assert s.mailer.sent == []


async def test_a_digest_refused_permanently_escalates_each_alert_once() -> None:
    s = Setup(plan=with_preference(Mode.DAILY, dt.time(8, 0)))
    held, window = await hold_three(s)
    s.clock.now = dt.datetime(2026, 11, 26, 8, 0, 5, tzinfo=dt.UTC)
    s.mailer.failures.append(PermanentDeliveryError("recipient refused (550)"))

    result = await s.handle(DigestDue(RECIPIENT, window))

    assert sorted(o.alert_id for o in result.outcomes if o.status == "ESCALATED") == sorted(
        a.alert_id for a in held
    )
    assert s.metric("hub_delivery_escalations_total", reason="permanent") == 3


async def test_a_replayed_alert_already_held_is_not_held_twice() -> None:
    s = Setup(plan=with_preference(Mode.HOURLY))
    routine = alert(urgency=Urgency.ROUTINE)
    await s.handle(routine)

    result = await s.handle(routine)

    assert statuses(result) == ["DUPLICATE"]
    assert result.outcomes[0].detail == "HELD"
    (window,) = s.stores.digests[RECIPIENT].windows
    assert window.alerts == (routine,)
    assert s.metric("hub_delivery_queued_total", how="held") == 1
    assert s.metric("hub_emails_duplicate_skipped_total") == 0  # not sent yet: not a resend


async def test_alerts_held_in_two_windows_go_in_two_digests() -> None:
    s = Setup(plan=with_preference(Mode.HOURLY))
    await s.handle(alert(1, urgency=Urgency.ROUTINE))
    s.clock.advance(hours=1)
    await s.handle(alert(2, urgency=Urgency.ROUTINE))
    box: DigestBox = s.stores.digests[RECIPIENT]
    first, second = box.windows
    s.clock.advance(hours=1)

    await s.handle(DigestDue(RECIPIENT, first.window))
    assert [w.window for w in s.stores.digests[RECIPIENT].windows] == [second.window]
    await s.handle(DigestDue(RECIPIENT, second.window))

    assert [m["Subject"] for m in s.mailer.sent] == [
        "[DIGEST] Involvement hub: 1 update on your cases"
    ] * 2
    assert s.stores.digests == {}


# -- backoff --------------------------------------------------------------------------------


def test_backoff_doubles_from_the_base_before_each_retry() -> None:
    backoff = ob.Backoff(base=dt.timedelta(seconds=30), cap=dt.timedelta(hours=1), jitter=0.2)

    delays = [backoff.delay(attempts, 0.5).total_seconds() for attempts in range(6)]

    assert delays == [30, 30, 60, 120, 240, 480]


def test_backoff_is_capped() -> None:
    backoff = ob.Backoff(base=dt.timedelta(seconds=30), cap=dt.timedelta(minutes=30))

    assert backoff.delay(30, 0.5) == dt.timedelta(minutes=30)
    assert backoff.delay(200, 0.5) == dt.timedelta(minutes=30)  # no overflow far out


@pytest.mark.parametrize("attempts", [1, 4, 40])
def test_backoff_jitter_stays_within_its_fraction(attempts: int) -> None:
    backoff = ob.Backoff(base=dt.timedelta(seconds=30), cap=dt.timedelta(minutes=30), jitter=0.2)
    middle = backoff.delay(attempts, 0.5).total_seconds()

    low = backoff.delay(attempts, 0.0).total_seconds()
    high = backoff.delay(attempts, 0.999999).total_seconds()

    assert low == pytest.approx(middle * 0.8)
    assert high == pytest.approx(middle * 1.2, rel=1e-5)
    assert high < middle * 1.2
    assert low < backoff.delay(attempts, 0.3).total_seconds() < middle < high


# -- IG-2 checked again when sending ----------------------------------------------------


def limited(routine: Alert, send_by: dt.datetime) -> Alert:
    """The alert as routing makes it: sendable until ``send_by``, about a known child."""
    return replace(
        routine,
        send_by=send_by,
        person_id="p-child-301",
        about_person_id="p-child-301",
        role="LEAD_PRACTITIONER",
    )


async def test_an_alert_within_its_grace_period_is_sent() -> None:
    s = Setup()

    result = await s.handle(limited(alert(), IN_HOURS + dt.timedelta(days=14)))

    assert statuses(result) == ["SENT"]
    assert result.audit == []


async def test_a_retry_after_the_recipients_grace_period_is_not_sent_and_is_audited() -> None:
    s = Setup()
    s.mailer.failures.append(TransientDeliveryError("server said 421"))
    pending = limited(alert(), IN_HOURS + dt.timedelta(minutes=1))
    await s.handle(pending)
    s.clock.advance(minutes=2)  # the retry is due, and the grace period is over

    result = await s.handle(RetryNudge(RECIPIENT, pending.alert_id))

    assert s.mailer.sent == []
    assert statuses(result) == ["EXPIRED"]
    entry = s.entry(pending.alert_id)
    assert (entry.status, entry.alert) == (ob.Status.EXPIRED, None)  # payload dropped (IG-6)
    assert s.stores.due == {}  # nothing left to nudge
    (record,) = result.audit
    assert (record.outcome, record.suppression) == ("SUPPRESS", "ended_before_send")
    assert (record.alert_id, record.recipient_id, record.recipient_agency) == (
        pending.alert_id,
        RECIPIENT,
        SOCIAL_CARE,
    )
    assert (record.person_id, record.role, record.case_ref) == (
        "p-child-301",
        "LEAD_PRACTITIONER",
        "CIN-301",
    )
    assert (
        s.metric("hub_routing_decisions_total", outcome="SUPPRESS", reason="ended_before_send") == 1
    )
    # A replay of the alert finds it settled and sends nothing.
    again = await s.handle(pending)
    assert statuses(again) == ["DUPLICATE"]
    assert s.mailer.sent == []


async def test_a_digest_leaves_out_alerts_whose_grace_period_ran_out_while_held() -> None:
    s = Setup(plan=with_preference(Mode.DAILY, dt.time(8, 0)))
    closes = dt.datetime(2026, 11, 26, 8, 0, 5, tzinfo=dt.UTC)
    kept = limited(alert(1, urgency=Urgency.ROUTINE), closes + dt.timedelta(days=13))
    lapsed = limited(alert(2, urgency=Urgency.ROUTINE), closes - dt.timedelta(hours=1))
    await s.handle(kept)
    await s.handle(lapsed)
    (window,) = s.stores.digests[RECIPIENT].windows
    s.clock.now = closes

    result = await s.handle(DigestDue(RECIPIENT, window.window))

    (sent,) = s.mailer.sent
    parsed = email.message_from_bytes(sent.as_bytes(), policy=email.policy.default)
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[attr-defined]
    assert kept.alert_id in text
    assert lapsed.alert_id not in text
    assert sent["Subject"] == "[DIGEST] Involvement hub: 1 update on your cases"
    digest_id = derived_id(RECIPIENT, window.window)
    assert sorted((o.alert_id, o.status) for o in result.outcomes) == sorted(
        [(kept.alert_id, "SENT"), (lapsed.alert_id, "EXPIRED"), (digest_id, "SENT")]
    )
    assert s.entry(lapsed.alert_id).status is ob.Status.EXPIRED
    assert s.entry(kept.alert_id).status is ob.Status.SENT
    # The lapsed alert's suppression, then the digest (which carries only the kept one).
    assert [r.alert_id for r in result.audit] == [lapsed.alert_id, digest_id]
    assert result.audit[1].includes == (kept.alert_id,)
    assert s.stores.digests == {}


async def test_a_digest_whose_every_alert_lapsed_sends_nothing_and_closes() -> None:
    s = Setup(plan=with_preference(Mode.DAILY, dt.time(8, 0)))
    lapsed = limited(alert(1, urgency=Urgency.ROUTINE), IN_HOURS + dt.timedelta(hours=1))
    await s.handle(lapsed)
    (window,) = s.stores.digests[RECIPIENT].windows
    s.clock.now = dt.datetime(2026, 11, 26, 8, 0, 5, tzinfo=dt.UTC)

    result = await s.handle(DigestDue(RECIPIENT, window.window))

    assert s.mailer.sent == []
    assert statuses(result) == ["EXPIRED"]
    assert s.stores.digests == {}


# -- durable before it is sent -------------------------------------------------------


class Journal:
    """Records, in order, outbox writes, durability waits and sends."""

    def __init__(self, s: Setup) -> None:
        self.lines: list[str] = []
        journal = self

        class Outbox(dict[str, ob.OutboxEntry]):
            def __setitem__(self, key: str, value: ob.OutboxEntry) -> None:
                journal.lines.append(f"write {key[:4]} {value.status.value}")
                super().__setitem__(key, value)

        class Durable:
            async def recorded(self, key: str) -> None:
                journal.lines.append(f"durable {key[:4]}")

            async def queued(self, alerts: object) -> None:
                kinds = [a.copy_kind for a in alerts]  # type: ignore[attr-defined]
                journal.lines.append(f"queued {kinds}")

        original = s.mailer.send

        async def send(message: EmailMessage) -> None:
            journal.lines.append("send")
            await original(message)

        s.stores.outbox = Outbox()
        s.deliverer.durable = Durable()
        s.mailer.send = send  # type: ignore[method-assign]


async def test_the_mark_is_acknowledged_right_after_the_send() -> None:
    s = Setup()
    journal = Journal(s)
    await s.handle(alert(1))
    key = f"{1:032x}"[:4]
    assert journal.lines == ["send", f"write {key} SENT", f"durable {key}"]


async def test_a_retrys_entry_is_acknowledged_before_the_send_and_the_mark_right_after() -> None:
    s = Setup()
    journal = Journal(s)
    s.mailer.failures.append(TransientDeliveryError("421 try later"))
    await s.handle(alert(1))
    journal.lines.clear()
    s.clock.advance(minutes=5)
    await s.handle(RetryNudge(RECIPIENT, alert(1).alert_id))
    key = f"{1:032x}"[:4]
    assert journal.lines == [
        f"write {key} PENDING",
        f"durable {key}",
        "send",
        f"write {key} SENT",
        f"durable {key}",
    ]


async def test_an_out_of_hours_copy_is_on_kafka_before_the_entry_of_its_alert() -> None:
    s = Setup(now=OUT_OF_HOURS)
    journal = Journal(s)
    await s.handle(alert(2, urgency=Urgency.URGENT, at=OUT_OF_HOURS))
    assert journal.lines[0] == "queued ['out_of_hours']"
    assert journal.lines[2].endswith("SENT")


async def test_an_escalation_is_on_kafka_before_the_entry_that_records_the_failure() -> None:
    s = Setup()
    journal = Journal(s)
    s.mailer.failures.append(PermanentDeliveryError("550 no such mailbox"))
    result = await s.handle(alert(3))
    failed = journal.lines.index(f"write {f'{3:032x}'[:4]} FAILED")
    assert journal.lines.index("queued ['escalation']") < failed
    assert statuses(result) == ["FAILED", "ESCALATED"]


async def test_no_more_alerts_are_mid_send_than_the_in_flight_limit() -> None:
    s = Setup()
    s.deliverer.in_flight = asyncio.Semaphore(2)
    sending = 0
    most = 0
    release = asyncio.Event()

    async def slow_send(message: EmailMessage) -> None:
        nonlocal sending, most
        sending += 1
        most = max(most, sending)
        await release.wait()
        sending -= 1

    s.mailer.send = slow_send  # type: ignore[method-assign]
    tasks = [
        asyncio.create_task(s.handle(alert(10 + n, recipient=f"{SOCIAL_CARE}/SW-{n}")))
        for n in range(5)
    ]
    # Every task gets many turns: the third can only start sending if the limit lets it.
    for _ in range(50):
        await asyncio.sleep(0)
    assert sending == 2
    assert most == 2
    release.set()
    await asyncio.gather(*tasks)
    assert most == 2


async def test_the_out_of_hours_copy_follows_the_alerts_own_time_not_the_workers() -> None:
    """Routed at 20:00, delivered after a restart the next morning: still copied to the
    out-of-hours contact; routed at 10:00 and delivered late at night: not copied."""
    late = Setup(now=IN_HOURS + dt.timedelta(days=1))
    result = await late.handle(alert(41, urgency=Urgency.URGENT, at=OUT_OF_HOURS))
    assert [a.copy_kind for a in result.queue] == ["out_of_hours"]
    early = Setup(now=OUT_OF_HOURS)
    result = await early.handle(alert(42, urgency=Urgency.URGENT, at=IN_HOURS))
    assert result.queue == []
