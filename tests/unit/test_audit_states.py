"""The audit as an IG officer reads it: every email a disclosure, each with what became of it."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from involvement_hub.cli.reports import audit_report
from involvement_hub.core.audit import (
    DisclosureRecord,
    copy_record,
    delivery_state,
    delivery_states,
    digest_record,
    emailed,
    expiry_record,
)
from involvement_hub.core.messages import DeliveryOutcome, DeliveryStatus
from involvement_hub.core.routing import Outcome
from support.alerts import an_alert

NOW = dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)
LEAD = "northshire-social-care/SW-0001"
DUTY = "northshire-social-care/out-of-hours"


def routed(n: int, **fields: object) -> DisclosureRecord:
    """The SEND record the ordered stage writes for an alert (an alert's own form)."""
    alert = an_alert(at=NOW, alert_id=f"{n:032x}", person_id="p-child", role="LEAD_PRACTITIONER")
    record = copy_record(replace(alert, copy_kind=None), NOW)  # the same fields, for a test
    return replace(record, role="LEAD_PRACTITIONER", rule_id="lead-practitioner", **fields)  # type: ignore[arg-type]


def outcome(
    alert_id: str, status: DeliveryStatus, at: dt.datetime, **kw: object
) -> DeliveryOutcome:
    return DeliveryOutcome(alert_id, LEAD, status, at, **kw)  # type: ignore[arg-type]


def test_the_latest_delivery_word_stands_and_a_duplicate_changes_nothing() -> None:
    a = "0" * 31 + "1"
    states = delivery_states(
        [
            outcome(a, DeliveryStatus.SENT, NOW + 2 * MINUTE),
            outcome(a, DeliveryStatus.RETRY, NOW + MINUTE, attempts=1),
            outcome(a, DeliveryStatus.DUPLICATE, NOW + 3 * MINUTE, detail="SENT"),
        ]
    )

    assert states[a].status is DeliveryStatus.SENT


def test_each_state_reads_as_words() -> None:
    record = routed(1)
    a = record.alert_id
    digest = "d" * 32

    def said(*outcomes: DeliveryOutcome) -> str:
        return delivery_state(record, delivery_states(outcomes))

    assert said() == "routed; no delivery recorded yet"
    assert said(outcome(a, DeliveryStatus.SENT, NOW)) == "sent 2026-11-30T10:00:00+00:00"
    held = outcome(a, DeliveryStatus.HELD, NOW, detail="daily:2026-12-01T08:00:00+00:00")
    assert said(held) == "held for a digest until 2026-12-01T08:00:00+00:00"
    in_digest = outcome(a, DeliveryStatus.SENT, NOW, via=digest)
    assert said(held, in_digest) == f"sent 2026-11-30T10:00:00+00:00 in digest {digest}"
    assert "expired" in said(outcome(a, DeliveryStatus.EXPIRED, NOW))
    escalated = outcome(a, DeliveryStatus.ESCALATED, NOW, via="e" * 32)
    assert said(escalated) == f"not delivered; escalated as alert {'e' * 32}"
    assert said(outcome(a, DeliveryStatus.FAILED, NOW, detail="550")).endswith(": 550")


def test_the_emails_on_the_audit_are_the_alerts_sent_alone_the_copies_and_the_digests() -> None:
    alone, held = routed(1), routed(2)
    alert = an_alert(at=NOW, alert_id=alone.alert_id, person_id="p-child", role="LEAD_PRACTITIONER")
    copy = replace(
        alert,
        alert_id="c" * 32,
        recipient_id=DUTY,
        copy_of=alone.alert_id,
        copy_kind="out_of_hours",
    )
    copied = copy_record(copy, NOW)
    digest = digest_record(LEAD, "d" * 32, [replace(alert, alert_id=held.alert_id)], NOW)
    suppressed = replace(routed(3), outcome=Outcome.SUPPRESS, alert_id=None)
    states = delivery_states(
        [
            outcome(alone.alert_id, DeliveryStatus.SENT, NOW),
            outcome(held.alert_id, DeliveryStatus.HELD, NOW, detail="daily:x"),
            DeliveryOutcome(copy.alert_id, DUTY, DeliveryStatus.SENT, NOW, via=alone.alert_id),
            outcome(digest.alert_id, DeliveryStatus.SENT, NOW + MINUTE),
            outcome(held.alert_id, DeliveryStatus.SENT, NOW + MINUTE, via=digest.alert_id),
        ]
    )

    assert emailed([alone, held, copied, digest, suppressed], states) == {
        (LEAD, alone.alert_id),
        (DUTY, copy.alert_id),
        (LEAD, digest.alert_id),
    }
    assert delivery_state(copied, states) == "sent 2026-11-30T10:00:00+00:00"


def test_the_report_shows_each_decision_once_with_its_alert_id_and_state() -> None:
    record = routed(1)
    expired = expiry_record(
        an_alert(at=NOW, alert_id="f" * 32, person_id="p-child", role="LEAD_PRACTITIONER"), NOW
    )
    states = delivery_states([outcome(record.alert_id, DeliveryStatus.SENT, NOW)])

    text = audit_report([record, record, expired], states)

    assert text.startswith("2 decisions")
    assert f"alert {record.alert_id}: sent 2026-11-30T10:00:00+00:00" in text
    assert "suppressed (ended_before_send)" in text
