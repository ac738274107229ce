"""Delivering through the outbox: record, send, mark; duplicates skipped, failures sorted.

The mailer is the in-memory twin and the outbox a plain dict: the Faust table behind it in
the worker is a mapping too. Synthetic people only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from involvement_hub.core.alerts import Alert
from involvement_hub.core.model import Urgency
from involvement_hub.core.policy import ContentLevel, Link
from involvement_hub.delivery import outbox as outbox_module
from involvement_hub.delivery.mailer import MemoryMailer
from involvement_hub.delivery.outbox import PENDING, SENT, deliver
from involvement_hub.errors import PermanentDeliveryError, TransientDeliveryError
from involvement_hub.metrics import HubMetrics, create_metrics

INGESTED = dt.datetime(2026, 11, 3, 14, 5, 0, tzinfo=dt.UTC)
ACCEPTED = INGESTED + dt.timedelta(milliseconds=120)
MAIL_FROM = "involvement-hub@hub.northshire.example"

ALERT = Alert(
    alert_id="0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    event_key="oakfield-primary/oakfield-excl-000173",
    created_at=INGESTED,
    recipient_id="northshire-social-care/SW-0043",
    recipient_email="jo.placeholder@northshire.example",
    recipient_name="Jo Placeholder",
    recipient_out_of_hours_phone=None,
    case_ref="CM-2026-004711",
    kind="SCHOOL_EXCLUSION",
    urgency=Urgency.PRIORITY,
    content_level=ContentLevel.REFERENCE,
    occurred_at=INGESTED,
    source_agency="oakfield-primary",
    link=Link.SELF,
    why="you are the lead practitioner for this child",
    rule_id="rule-07",
    policy_version="2026-11",
    lawful_basis="PUBLIC_TASK",
    changes=(),
    team=(),
    ingested_at=INGESTED,
)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox_module, "INLINE_BACKOFF", (0.0, 0.0))


@pytest.fixture
def metrics() -> HubMetrics:
    return create_metrics()  # a fresh CollectorRegistry each test


@pytest.fixture
def mailer() -> MemoryMailer:
    return MemoryMailer()


@pytest.fixture
def outbox() -> dict[str, Any]:
    return {}


async def send(
    outbox: dict[str, Any], mailer: MemoryMailer, metrics: HubMetrics, alert: Alert = ALERT
) -> Any:
    return await deliver(
        alert,
        outbox=outbox,
        mailer=mailer,
        mail_from=MAIL_FROM,
        metrics=metrics,
        clock=lambda: ACCEPTED,
    )


def sample(metrics: HubMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_first_delivery_is_sent_and_marked(
    outbox: dict[str, Any], mailer: MemoryMailer, metrics: HubMetrics
) -> None:
    outcome = await send(outbox, mailer, metrics)

    assert outcome.status == "SENT"
    assert outcome.alert_id == ALERT.alert_id
    assert outbox[ALERT.alert_id]["status"] == SENT
    assert outbox[ALERT.alert_id]["attempts"] == 1
    assert [m["Message-ID"] for m in mailer.sent] == [f"<{ALERT.alert_id}@hub.northshire.example>"]
    assert sample(metrics, "hub_emails_sent_total", urgency="PRIORITY") == 1


async def test_second_delivery_of_the_same_alert_is_a_duplicate(
    outbox: dict[str, Any], mailer: MemoryMailer, metrics: HubMetrics
) -> None:
    await send(outbox, mailer, metrics)

    outcome = await send(outbox, mailer, metrics)

    assert outcome.status == "DUPLICATE"
    assert len(mailer.sent) == 1
    assert sample(metrics, "hub_emails_duplicate_skipped_total") == 1
    assert sample(metrics, "hub_emails_sent_total", urgency="PRIORITY") == 1


async def test_a_transient_failure_is_retried_inline(
    outbox: dict[str, Any], mailer: MemoryMailer, metrics: HubMetrics
) -> None:
    mailer.failures.append(TransientDeliveryError("server said 421"))

    outcome = await send(outbox, mailer, metrics)

    assert outcome.status == "SENT"
    assert outbox[ALERT.alert_id] == {"status": SENT, "attempts": 2, "at": ACCEPTED.isoformat()}
    assert len(mailer.sent) == 1
    assert sample(metrics, "hub_emails_failed_total", failure="transient") == 1


async def test_three_transient_failures_fail_and_leave_the_alert_pending(
    outbox: dict[str, Any], mailer: MemoryMailer, metrics: HubMetrics
) -> None:
    mailer.failures.extend(TransientDeliveryError("server said 451") for _ in range(3))

    outcome = await send(outbox, mailer, metrics)

    assert outcome.status == "FAILED"
    assert "451" in outcome.detail
    assert outbox[ALERT.alert_id] == {"status": PENDING, "attempts": 3}
    assert mailer.sent == []
    assert sample(metrics, "hub_emails_failed_total", failure="transient") == 3

    replay = await send(outbox, mailer, metrics)  # the durable retry, or a replay from Kafka

    assert replay.status == "SENT"
    assert outbox[ALERT.alert_id]["attempts"] == 4
    assert len(mailer.sent) == 1


async def test_a_permanent_failure_fails_at_once(
    outbox: dict[str, Any], mailer: MemoryMailer, metrics: HubMetrics
) -> None:
    mailer.failures.append(PermanentDeliveryError("recipient refused (550)"))
    mailer.failures.append(TransientDeliveryError("must not be reached"))

    outcome = await send(outbox, mailer, metrics)

    assert outcome.status == "FAILED"
    assert "550" in outcome.detail
    assert len(mailer.failures) == 1  # no second attempt
    assert mailer.sent == []
    assert outbox[ALERT.alert_id]["status"] == PENDING
    assert sample(metrics, "hub_emails_failed_total", failure="permanent") == 1
    assert sample(metrics, "hub_emails_failed_total", failure="transient") == 0


async def test_latency_is_observed_once_per_sent_alert(
    outbox: dict[str, Any], mailer: MemoryMailer, metrics: HubMetrics
) -> None:
    mailer.failures.append(TransientDeliveryError("dropped"))
    await send(outbox, mailer, metrics)
    await send(outbox, mailer, metrics)  # a duplicate: no second observation

    name = "hub_end_to_end_latency_seconds"
    assert sample(metrics, f"{name}_count", urgency="PRIORITY") == 1
    assert sample(metrics, f"{name}_sum", urgency="PRIORITY") == pytest.approx(0.12)
    assert sample(metrics, f"{name}_bucket", urgency="PRIORITY", le="0.1") == 0
    assert sample(metrics, f"{name}_bucket", urgency="PRIORITY", le="0.15") == 1


async def test_failures_observe_no_latency(
    outbox: dict[str, Any], mailer: MemoryMailer, metrics: HubMetrics
) -> None:
    mailer.failures.append(PermanentDeliveryError("server said 554"))

    await send(outbox, mailer, metrics)

    assert sample(metrics, "hub_end_to_end_latency_seconds_count", urgency="PRIORITY") == 0
