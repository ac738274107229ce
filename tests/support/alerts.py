"""One synthetic Alert, as routing would make it, for tests of delivery and messages.

Every field has a plain default; a test names only what matters to it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from involvement_hub.core.alerts import Alert
from involvement_hub.core.model import LawfulBasis, Urgency
from involvement_hub.core.policy import ContentLevel, Link


def an_alert(*, at: dt.datetime, **fields: Any) -> Alert:
    """An alert created, about an event that occurred, and ingested at ``at``."""
    values: dict[str, Any] = {
        "alert_id": "0" * 32,
        "event_key": "oakfield-primary/evt-0",
        "created_at": at,
        "recipient_id": "northshire-social-care/SW-0001",
        "recipient_email": "alex.morgan@social-care.northshire.example",
        "recipient_name": "Alex Morgan",
        "recipient_out_of_hours_phone": None,
        "case_ref": "CIN-0001",
        "kind": "SCHOOL_EXCLUSION",
        "urgency": Urgency.PRIORITY,
        "content_level": ContentLevel.REFERENCE,
        "occurred_at": at,
        "source_agency": "oakfield-primary",
        "link": Link.SELF,
        "why": "you are the lead practitioner for this child",
        "rule_id": "lead-practitioner",
        "policy_version": "2026-11-25.2",
        "lawful_basis": LawfulBasis.PUBLIC_TASK,
        "changes": (),
        "team": (),
        "ingested_at": at,
    }
    values.update(fields)
    return Alert(**values)
