"""Delivering one alert through the outbox: record, send, mark.

The outbox is a table keyed by alert id (``PENDING`` before the send, ``SENT`` after the
mail server's 250). An alert whose entry says ``SENT`` is not sent again, so replays from
Kafka do not reach the inbox twice; the only window for a duplicate is a crash between the
250 and the mark reaching the table's changelog.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, MutableMapping
from typing import Any

from involvement_hub.core.alerts import Alert
from involvement_hub.core.messages import DeliveryOutcome
from involvement_hub.delivery.mailer import Mailer
from involvement_hub.delivery.message import build_message
from involvement_hub.errors import PermanentDeliveryError, TransientDeliveryError
from involvement_hub.metrics import HubMetrics

PENDING = "PENDING"
SENT = "SENT"
# Inline retries only bridge a blip (a dropped connection); longer outages are for the
# durable retry schedule. Seconds before each retry:
INLINE_BACKOFF = (0.5, 2.0)


async def deliver(
    alert: Alert,
    *,
    outbox: MutableMapping[str, Any],
    mailer: Mailer,
    mail_from: str,
    metrics: HubMetrics,
    clock: Callable[[], dt.datetime],
) -> DeliveryOutcome:
    entry = outbox.get(alert.alert_id)
    if entry is not None and entry.get("status") == SENT:
        metrics.emails_duplicate.inc()
        return DeliveryOutcome(alert.alert_id, alert.recipient_id, "DUPLICATE", clock())
    attempts = int(entry.get("attempts", 0)) if entry else 0
    message = build_message(alert, mail_from, clock())
    for delay in (*INLINE_BACKOFF, None):
        attempts += 1
        outbox[alert.alert_id] = {"status": PENDING, "attempts": attempts}
        try:
            await mailer.send(message)
        except TransientDeliveryError as exc:
            metrics.emails_failed.labels("transient").inc()
            if delay is None:
                return DeliveryOutcome(
                    alert.alert_id, alert.recipient_id, "FAILED", clock(), str(exc)
                )
            await asyncio.sleep(delay)
            continue
        except PermanentDeliveryError as exc:
            metrics.emails_failed.labels("permanent").inc()
            return DeliveryOutcome(alert.alert_id, alert.recipient_id, "FAILED", clock(), str(exc))
        accepted = clock()
        outbox[alert.alert_id] = {"status": SENT, "attempts": attempts, "at": accepted.isoformat()}
        metrics.emails_sent.labels(alert.urgency.value).inc()
        latency = (accepted - alert.ingested_at).total_seconds()
        metrics.end_to_end_latency.labels(alert.urgency.value).observe(max(latency, 0.0))
        return DeliveryOutcome(alert.alert_id, alert.recipient_id, "SENT", accepted)
    raise AssertionError("unreachable")  # pragma: no cover
