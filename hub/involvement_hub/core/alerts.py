"""What an alert says: built from a SEND decision, within its content level (IG-4).

An alert never carries the names, date of birth, address or identifiers of the child or
family. It names the case by the recipient's *own* system reference, says what kind of
change happened and when, who else works with the child (only services whose involvement
may be shared) and why the recipient is told. Practitioners' work contact details are the
point of the alert and are included.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .model import Event, InvolvementEvent, LawfulBasis, LifeEvent, RelationshipEvent, Urgency
from .policy import ContentLevel, Link, RecipientRole
from .routing import Decision, Outcome
from .team import Team, TeamMember

_LINK_PHRASE = {
    Link.SELF: "about the child",
    Link.PARENT: "about a parent of the child",
    Link.CHILD: "about a child of this person",
    Link.SIBLING: "about a sibling of the child",
    Link.PARTNER: "about this person's partner",
    Link.PARENTS_PARTNER: "about a parent's partner",
    Link.CARER: "about a carer of the child",
    Link.CARED_FOR: "about someone this person cares for",
    Link.HOUSEHOLD_MEMBER: "about a household member",
}
_ROLE_PHRASE = {
    RecipientRole.LEAD_PRACTITIONER: "you are the lead practitioner for this child",
    RecipientRole.TEAM_MEMBER: "you work with this child",
    RecipientRole.EXPLICIT_SUBSCRIBER: "you asked to be told about this child, and work with them",
}


@dataclass(frozen=True, slots=True)
class Contact:
    """One practitioner in the team around the child, as colleagues may reach them."""

    agency_id: str
    service_name: str
    service_category: str
    practitioner_name: str
    role: str
    is_lead: bool
    email: str
    phone: str | None
    team: str | None
    out_of_hours_phone: str | None


@dataclass(frozen=True, slots=True)
class Alert:
    alert_id: str
    event_key: str
    created_at: dt.datetime
    recipient_id: str
    recipient_email: str
    recipient_name: str
    recipient_out_of_hours_phone: str | None
    case_ref: str  # the recipient's own system reference for the child
    kind: str
    urgency: Urgency
    content_level: ContentLevel
    occurred_at: dt.datetime
    source_agency: str | None  # REFERENCE and above
    link: Link
    why: str  # the "why you received this" line
    rule_id: str
    policy_version: str
    lawful_basis: LawfulBasis
    changes: tuple[tuple[str, str], ...]  # SUMMARY only: what changed, as label/value
    team: tuple[Contact, ...]  # REFERENCE and above: shareable involvements only
    ingested_at: dt.datetime  # when the agency's message reached Kafka (for latency)
    recipient_team: str | None = None
    # For a copy (out-of-hours, escalation): the alert it copies, and a line saying why.
    copy_of: str | None = None
    copy_kind: str | None = None  # "escalation" or "out_of_hours"
    note: str | None = None
    # IG-2 at send time: the recipient may be told until then (the routing time, or the end
    # of their involvement if it had ended, plus the policy's grace period). With whom the
    # decision was about, for the audit record should it expire unsent. None: no limit.
    send_by: dt.datetime | None = None
    person_id: str | None = None
    about_person_id: str | None = None
    role: str | None = None

    def expired(self, now: dt.datetime) -> bool:
        """IG-2, checked again when sending: is the recipient past their grace period?"""
        return self.send_by is not None and now > self.send_by


# How long a routing decision about a recipient whose involvement was active stays good for
# sending, at least, even with a grace period of zero: the delivery agent cannot see the
# team, and an alert routed a moment ago must not be dropped for the time it took to send.
DECISION_FLOOR = dt.timedelta(hours=1)


def send_by(ended_at: dt.datetime | None, now: dt.datetime, grace: dt.timedelta) -> dt.datetime:
    """IG-2 at send time: the latest moment an alert routed at ``now`` may be sent.

    An involvement that had already ended is good until its end plus the grace period; an
    active one until the routing time plus the grace period (at least DECISION_FLOOR).
    """
    if ended_at is not None:
        return ended_at + grace
    return now + max(grace, DECISION_FLOOR)


def build_alert(
    decision: Decision,
    event: Event,
    team: Team,
    *,
    now: dt.datetime,
    ingested_at: dt.datetime,
    grace: dt.timedelta,
) -> Alert:
    """The alert for a SEND decision; ``grace`` is the policy's grace period (IG-2)."""
    if decision.outcome is not Outcome.SEND:
        raise ValueError("only a SEND decision becomes an alert")
    level = decision.content_level
    member = decision.recipient
    reference = level.includes(ContentLevel.REFERENCE)
    return Alert(
        alert_id=decision.alert_id,
        event_key=decision.event_key,
        created_at=now,
        recipient_id=member.recipient_id,
        recipient_email=member.practitioner.email,
        recipient_name=member.practitioner.name,
        recipient_out_of_hours_phone=member.practitioner.out_of_hours_phone,
        case_ref=member.record_ref,
        kind=decision.kind,
        urgency=decision.urgency,
        content_level=level,
        occurred_at=event.envelope.occurred_at,
        source_agency=event.envelope.source.agency_id if reference else None,
        link=decision.link,
        why=f"{_ROLE_PHRASE[decision.role]}; this update is {_LINK_PHRASE[decision.link]} "
        f"(rule {decision.rule_id}, policy {decision.policy_version}, "
        f"lawful basis {decision.lawful_basis.value})",
        rule_id=decision.rule_id,
        policy_version=decision.policy_version,
        lawful_basis=decision.lawful_basis,
        changes=_changes(event) if level.includes(ContentLevel.SUMMARY) else (),
        team=_contacts(team, member) if reference else (),
        ingested_at=ingested_at,
        recipient_team=member.practitioner.team,
        send_by=send_by(member.ended_at, now, grace),
        person_id=decision.person_id,
        about_person_id=decision.about_person_id,
        role=decision.role.value,
    )


def _contacts(team: Team, recipient: TeamMember) -> tuple[Contact, ...]:
    return tuple(
        Contact(
            agency_id=m.agency_id,
            service_name=m.service.name,
            service_category=m.service.category.value,
            practitioner_name=m.practitioner.name,
            role=m.practitioner.role,
            is_lead=m.is_lead,
            email=m.practitioner.email,
            phone=m.practitioner.phone,
            team=m.practitioner.team,
            out_of_hours_phone=m.practitioner.out_of_hours_phone,
        )
        for m in team.current()
        if (m.shareable or _same_service(m, recipient)) and m.recipient_id != recipient.recipient_id
    )


def _same_service(member: TeamMember, recipient: TeamMember) -> bool:
    return (
        member.agency_id == recipient.agency_id
        and member.service.service_id == recipient.service.service_id
    )


def _changes(event: Event) -> tuple[tuple[str, str], ...]:
    if isinstance(event, InvolvementEvent):
        rows = [
            ("Change", f"involvement {event.change.value.lower()}"),
            ("Service", f"{event.service.name} ({event.service.category.value})"),
            ("Service level", event.service.level.value),
            ("Practitioner", f"{event.practitioner.name}, {event.practitioner.role}"),
            ("Lead practitioner", "yes" if event.is_lead else "no"),
        ]
        if event.end_reason:
            rows.append(("End reason", event.end_reason))
        return tuple(rows)
    if isinstance(event, LifeEvent):
        return tuple((k.replace("_", " ").capitalize(), v) for k, v in event.details)
    if isinstance(event, RelationshipEvent):
        change = f"{event.relationship.value.lower()} {event.change.value.lower()}"
        return (("Relationship", change),)
    return ()
