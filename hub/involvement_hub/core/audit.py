"""The disclosure audit (IG-5): one record for every alert decision, sent or suppressed.

A record says which event, about whom (hub person ids, which are pseudonyms), to whom,
under which rule and policy version, on which lawful basis, with what outcome and when. It
holds no payload content: the kind of event is recorded, never its details.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .alerts import Alert
from .model import LawfulBasis, Urgency
from .policy import ContentLevel, Link
from .routing import Decision, Outcome, Suppression


@dataclass(frozen=True, slots=True)
class DisclosureRecord:
    decided_at: dt.datetime
    event_key: str
    kind: str
    person_id: str
    about_person_id: str
    link: Link
    recipient_id: str
    recipient_agency: str
    case_ref: str
    role: str
    rule_id: str
    policy_version: str
    lawful_basis: LawfulBasis
    content_level: ContentLevel
    urgency: Urgency
    outcome: Outcome
    suppression: Suppression | None
    alert_id: str | None  # set when the outcome is SEND


def disclosure_record(decision: Decision, now: dt.datetime) -> DisclosureRecord:
    sent = decision.suppression is None
    return DisclosureRecord(
        decided_at=now,
        event_key=decision.event_key,
        kind=decision.kind,
        person_id=decision.person_id,
        about_person_id=decision.about_person_id,
        link=decision.link,
        recipient_id=decision.recipient.recipient_id,
        recipient_agency=decision.recipient.agency_id,
        case_ref=decision.recipient.record_ref,
        role=decision.role.value,
        rule_id=decision.rule_id,
        policy_version=decision.policy_version,
        lawful_basis=decision.lawful_basis,
        content_level=decision.content_level,
        urgency=decision.urgency,
        outcome=decision.outcome,
        suppression=None if sent else decision.suppression,
        alert_id=decision.alert_id if sent else None,
    )


def expiry_record(alert: Alert, now: dt.datetime) -> DisclosureRecord:
    """IG-2 checked again when sending: an alert that expired unsent is a suppression."""
    agency, _, _ = alert.recipient_id.partition("/")
    return DisclosureRecord(
        decided_at=now,
        event_key=alert.event_key,
        kind=alert.kind,
        person_id=alert.person_id or "",
        about_person_id=alert.about_person_id or "",
        link=alert.link,
        recipient_id=alert.recipient_id,
        recipient_agency=agency,
        case_ref=alert.case_ref,
        role=alert.role or "",
        rule_id=alert.rule_id,
        policy_version=alert.policy_version,
        lawful_basis=alert.lawful_basis,
        content_level=alert.content_level,
        urgency=alert.urgency,
        outcome=Outcome.SUPPRESS,
        suppression=Suppression.ENDED_BEFORE_SEND,
        alert_id=alert.alert_id,
    )
