"""The disclosure audit (IG-5): one record for every alert decision, sent or suppressed,
and for every email the hub sends -- routed alerts, out-of-hours copies, escalations and
digests.

A record says which event, about whom (hub person ids, which are pseudonyms), to whom,
under which rule and policy version, on which lawful basis, with what outcome and when, and
the alert id that names the email (its ``Message-ID`` is derived from it), so an
information governance officer can follow it to ``hub delivery``. It holds no payload
content: the kind of event is recorded, never its details. What then became of each alert
is ``hub.delivery``'s to say: :func:`delivery_states` reads it for ``hub audit``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .alerts import Alert
from .messages import DeliveryOutcome, DeliveryStatus
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
    # A copy (out-of-hours, escalation): the alert it copies. A digest: the alerts it carries.
    copy_of: str | None = None
    includes: tuple[str, ...] = ()
    why: str = ""  # for a copy or a digest: why this recipient receives it


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


def _of_alert(alert: Alert, now: dt.datetime, **changes: Any) -> DisclosureRecord:
    """A record of what delivery does with an alert, from the alert's own fields."""
    agency, _, _ = alert.recipient_id.partition("/")
    record = DisclosureRecord(
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
        outcome=Outcome.SEND,
        suppression=None,
        alert_id=alert.alert_id,
    )
    return replace(record, **changes)


def expiry_record(alert: Alert, now: dt.datetime) -> DisclosureRecord:
    """IG-2 checked again when sending: an alert that expired unsent is a suppression."""
    return _of_alert(
        alert, now, outcome=Outcome.SUPPRESS, suppression=Suppression.ENDED_BEFORE_SEND
    )


# The role and rule of a copy the delivery stage makes (delivery.toml decides who gets one).
COPY_ROLES = {"out_of_hours": "OUT_OF_HOURS_CONTACT", "escalation": "ESCALATION_CONTACT"}
DIGEST_KIND = "DIGEST"


def copy_record(copy: Alert, now: dt.datetime) -> DisclosureRecord:
    """An out-of-hours copy or an escalation, made by delivery: a disclosure of its own."""
    kind = copy.copy_kind or "copy"
    return _of_alert(
        copy,
        now,
        role=COPY_ROLES.get(kind, kind.upper()),
        rule_id=f"delivery:{kind}",
        copy_of=copy.copy_of,
        why=copy.why,
    )


def digest_record(
    recipient_id: str, digest_id: str, alerts: Sequence[Alert], now: dt.datetime
) -> DisclosureRecord:
    """A digest email: it discloses again, in one email, the alerts it carries (each of
    which has its own record, with its own rule and lawful basis)."""
    first = alerts[0]
    return _of_alert(
        replace(first, recipient_id=recipient_id),
        now,
        event_key=f"digest/{digest_id}",
        kind=DIGEST_KIND,
        rule_id="delivery:digest",
        content_level=max((a.content_level for a in alerts), key=_LEVEL_ORDER.index),
        alert_id=digest_id,
        includes=tuple(a.alert_id for a in alerts),
        why=f"the recipient's digest of {len(alerts)} ROUTINE alert(s), each audited on its own",
    )


_LEVEL_ORDER = list(ContentLevel)


def delivery_states(outcomes: Iterable[DeliveryOutcome]) -> dict[str, DeliveryOutcome]:
    """The latest thing ``hub.delivery`` says of each alert or digest (a ``DUPLICATE`` --
    the same alert read again -- changes nothing)."""
    latest: dict[str, DeliveryOutcome] = {}
    for outcome in sorted(outcomes, key=lambda o: o.at):
        if outcome.status is not DeliveryStatus.DUPLICATE:
            latest[outcome.alert_id] = outcome
    return latest


def delivery_state(record: DisclosureRecord, states: Mapping[str, DeliveryOutcome]) -> str:
    """What became of a decision, in words, for ``hub audit``."""
    if record.outcome is Outcome.SUPPRESS:
        return f"suppressed ({record.suppression})"
    state = states.get(record.alert_id or "")
    if state is None:
        return "routed; no delivery recorded yet"
    at = state.at.isoformat(timespec="seconds")
    match state.status:
        case DeliveryStatus.SENT if state.via and state.via != record.copy_of:
            return f"sent {at} in digest {state.via}"
        case DeliveryStatus.SENT:
            return f"sent {at}"
        case DeliveryStatus.HELD:
            _, _, until = state.detail.partition(":")
            return f"held for a digest until {until or state.detail}"
        case DeliveryStatus.RETRY:
            return f"not yet delivered: retrying after {state.attempts} attempt(s)"
        case DeliveryStatus.ESCALATED:
            return (
                f"not delivered; escalated as alert {state.via}"
                if state.via
                else ("not delivered; no escalation contact configured")
            )
        case DeliveryStatus.FAILED:
            return f"failed {at}: {state.detail}"
        case DeliveryStatus.EXPIRED:
            return f"not sent: expired {at} (the recipient's grace period had passed)"
    return state.status.value


def emailed(
    records: Iterable[DisclosureRecord], states: Mapping[str, DeliveryOutcome]
) -> set[tuple[str, str]]:
    """(recipient, alert id) of every email the audit says went out: each SEND record whose
    alert was sent by itself (an alert sent within a digest went out as the digest)."""
    found = set()
    for record in records:
        if record.outcome is not Outcome.SEND or record.alert_id is None:
            continue
        state = states.get(record.alert_id)
        if state is None or state.status is not DeliveryStatus.SENT:
            continue
        if state.via and state.via != record.copy_of:
            continue  # in a digest: the digest's own record stands for the email
        found.add((record.recipient_id, record.alert_id))
    return found
