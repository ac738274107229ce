"""What an alert says: built from a SEND decision, within its content level (IG-4).

An alert never carries the names, date of birth or address of the child or family, nor a
national identifier (NHS number, UPN). It names the child by the recipient's *own*
references -- their case reference, and the local person reference their own agency sent
(a local authority or police person id) -- says what kind of change happened and when, who
reported it, who else was told, what to do next, who else works with the child (only
services whose involvement may be shared) and why the recipient is told, each part only as
far as the content level shows it (``core.content``). Practitioners' work contact details
are the point of the alert and are included.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from .content import Shown, shows
from .identity import LOCAL_SCHEMES
from .ids import derived_id
from .model import (
    Event,
    Identifier,
    InvolvementChange,
    InvolvementEvent,
    LawfulBasis,
    LifeEvent,
    RelationshipEvent,
    Urgency,
)
from .policy import ContentLevel, Link, RecipientRole
from .routing import Decision, Outcome
from .team import Team, TeamMember, involvement_key

LINK_PHRASE = {
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


@dataclass(frozen=True, slots=True, order=True)
class Told:
    """Another recipient of the same event, as a reader may know of them: a role, not a
    name (their contact details are the team list's to give, at SUMMARY)."""

    role: str
    agency_id: str
    service_name: str


@dataclass(frozen=True, slots=True)
class Detail:
    """One thing an event says: a key (``service_level``, or a life event's own detail
    key), its value, and for an involvement updated what it was before."""

    key: str
    value: str
    before: str | None = None


@dataclass(frozen=True, slots=True)
class ChildRef:
    """One child an alert is about, as the recipient knows them: the local person
    references their own agency sent (none, where it sent only national numbers)."""

    refs: tuple[Identifier, ...]
    link: Link  # how the person the event is about relates to this child


@dataclass(frozen=True, slots=True)
class Earlier:
    """One event a catch-up email tells of: what the alert for it would have said, within
    its own content level (fields its level does not show are None or empty)."""

    alert_id: str  # the alert this event would have been, had the link been known
    event_key: str
    kind: str
    occurred_at: dt.datetime
    urgency: Urgency
    content_level: ContentLevel
    link: Link
    source_agency: str | None = None
    source_ref: str | None = None
    next_step: str | None = None
    details: tuple[Detail, ...] = ()


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
    # Before details (below) existed: labels and values in words. Read from older alerts
    # still on hub.alerts; no longer written.
    changes: tuple[tuple[str, str], ...]
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
    # The children it is about (several: one event, one recipient, one case), by the
    # recipient's own references.
    children: tuple[ChildRef, ...] = ()
    source_ref: str | None = None  # REFERENCE: the reporting agency's own reference
    next_step: str | None = None  # REFERENCE: the policy's suggested next step
    also_told: tuple[Told, ...] = ()  # REFERENCE: the others told of the event
    # The recipient as colleagues reach them (a copy names them as the case's owner), and
    # whether their involvement may be revealed to others (IG-3): if not, no other
    # recipient is told that they were told.
    recipient_card: Contact | None = None
    recipient_shareable: bool = True
    owner: Contact | None = None  # a copy: the practitioner whose alert it copies
    details: tuple[Detail, ...] = ()  # SUMMARY: what the event says, as keys and values
    # A catch-up on a late link: the earlier events this one email tells of, oldest first
    # (the fields above that describe one event are then those of the most urgent).
    earlier: tuple[Earlier, ...] = ()

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
    before: Team | None = None,
    next_step: str | None = None,
) -> Alert:
    """The alert for a SEND decision; ``grace`` is the policy's grace period (IG-2),
    ``before`` the team before the event (for what changed), ``next_step`` the policy's."""
    if decision.outcome is not Outcome.SEND:
        raise ValueError("only a SEND decision becomes an alert")
    level = decision.content_level
    member = decision.recipient
    source = event.envelope.source
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
        source_agency=source.agency_id if shows(level, Shown.WHAT) else None,
        link=decision.link,
        why=f"{_ROLE_PHRASE[decision.role]}; this update is {LINK_PHRASE[decision.link]}",
        rule_id=decision.rule_id,
        policy_version=decision.policy_version,
        lawful_basis=decision.lawful_basis,
        changes=(),
        details=_details(event, before) if shows(level, Shown.DETAILS) else (),
        team=_contacts(team, member) if shows(level, Shown.TEAM) else (),
        ingested_at=ingested_at,
        recipient_team=member.practitioner.team,
        send_by=send_by(member.ended_at, now, grace),
        person_id=decision.person_id,
        about_person_id=decision.about_person_id,
        role=decision.role.value,
        children=(ChildRef(_own_refs(member), decision.link),),
        source_ref=source.record_ref if shows(level, Shown.REPORTED_BY) else None,
        next_step=next_step if shows(level, Shown.NEXT_STEP) else None,
        recipient_card=_contact(member),
        recipient_shareable=member.shareable,
    )


def _own_refs(member: TeamMember) -> tuple[Identifier, ...]:
    return tuple(i for i in member.person_refs if i.scheme in LOCAL_SCHEMES)


_LEVELS = (ContentLevel.EMPTY, ContentLevel.REFERENCE, ContentLevel.SUMMARY)
_URGENCIES = (Urgency.ROUTINE, Urgency.PRIORITY, Urgency.URGENT)


def catch_up_id(trigger: str, recipient_id: str, case_ref: str) -> str:
    return derived_id("catch-up", trigger, recipient_id, case_ref)


def catch_up_alert(items: Sequence[Alert], trigger: str) -> Alert:
    """One email for one recipient and case, telling of the earlier events in ``items``
    (each built by :func:`build_alert` from its own SEND decision, so within its own
    content level). As urgent as the most urgent of them; the parts that are not about one
    event (the team) are shown as far as the most restrictive level allows."""
    ordered = sorted(items, key=lambda a: (a.occurred_at, a.event_key))
    first = ordered[0]
    main = max(ordered, key=lambda a: (_URGENCIES.index(a.urgency), a.occurred_at))
    level = min((a.content_level for a in ordered), key=_LEVELS.index)
    children: dict[tuple[Identifier, ...], ChildRef] = {}
    for a in ordered:
        for child in a.children:
            children.setdefault(child.refs, child)
    limits = [a.send_by for a in ordered if a.send_by is not None]
    role = RecipientRole(first.role) if first.role else RecipientRole.TEAM_MEMBER
    return replace(
        main,
        alert_id=catch_up_id(trigger, first.recipient_id, first.case_ref),
        event_key=f"catch-up/{trigger}",
        content_level=level,
        why=f"{_ROLE_PHRASE[role]}; you were linked to this child after these were recorded",
        details=(),
        next_step=None,
        source_ref=None,
        team=main.team if shows(level, Shown.TEAM) else (),
        children=tuple(children.values()),
        send_by=min(limits) if limits else None,
        also_told=(),
        earlier=tuple(
            Earlier(
                alert_id=a.alert_id,
                event_key=a.event_key,
                kind=a.kind,
                occurred_at=a.occurred_at,
                urgency=a.urgency,
                content_level=a.content_level,
                link=a.link,
                source_agency=a.source_agency,
                source_ref=a.source_ref,
                next_step=a.next_step,
                details=a.details,
            )
            for a in ordered
        ),
    )


def compose(
    alerts: Sequence[Alert], audit: Sequence[Any]
) -> tuple[tuple[Alert, ...], tuple[Any, ...]]:
    """The alerts of one event, made ready to send: each says who else was told (as far as
    its content level shows it), and one recipient's alerts about several children of one
    case become one alert listing them (with their id: an alert id is the event's, the
    recipient's and the case's, so before this the outbox sent the first child's alert and
    dropped the others' as duplicates); their disclosure records name it."""
    groups: dict[tuple[str, str, str], list[Alert]] = {}
    catch_ups = [a for a in alerts if a.earlier]
    for alert in alerts:
        if alert.earlier:
            continue  # made whole where it was built; tells of other events than this one
        groups.setdefault((alert.event_key, alert.recipient_id, alert.case_ref), []).append(alert)
    merged: list[Alert] = []
    renamed: dict[str, str] = {}
    for group in groups.values():
        # One child reached through two links (a parent's partner who is also a household
        # member) is left as it was: one alert id, which the outbox makes one email.
        per_child: dict[str, Alert] = {}
        for alert in group:
            per_child.setdefault(alert.person_id or alert.alert_id, alert)
        if len(per_child) == 1:
            merged.extend(group)
            continue
        ordered = [per_child[key] for key in sorted(per_child)]
        first = ordered[0]
        ids = sorted({a.alert_id for a in ordered})
        # The id of an alert is the event's, the recipient's and their case's: the same for
        # the children of one case, so the email keeps it.
        alert_id = ids[0] if len(ids) == 1 else derived_id(*ids)
        renamed.update((a.alert_id, alert_id) for a in ordered)
        limits = [a.send_by for a in ordered if a.send_by is not None]
        merged.append(
            replace(
                first,
                alert_id=alert_id,
                children=tuple(c for a in ordered for c in a.children),
                send_by=min(limits) if limits else None,
            )
        )
    told = {
        a.recipient_id: a.recipient_card
        for a in merged
        if a.recipient_card is not None and a.recipient_shareable and a.copy_of is None
    }
    finished = tuple(
        replace(
            a,
            also_told=tuple(
                sorted(
                    {
                        Told(card.role, card.agency_id, card.service_name)
                        for who, card in told.items()
                        if who != a.recipient_id
                    }
                )
            ),
        )
        if shows(a.content_level, Shown.ALSO_TOLD)
        else a
        for a in merged
    ) + tuple(catch_ups)
    records = tuple(
        replace(r, alert_id=renamed.get(r.alert_id, r.alert_id)) if r.alert_id else r for r in audit
    )
    return finished, records


def _contact(m: TeamMember) -> Contact:
    return Contact(
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


def _contacts(team: Team, recipient: TeamMember) -> tuple[Contact, ...]:
    return tuple(
        _contact(m)
        for m in team.current()
        if (m.shareable or _same_service(m, recipient)) and m.recipient_id != recipient.recipient_id
    )


def _same_service(member: TeamMember, recipient: TeamMember) -> bool:
    return (
        member.agency_id == recipient.agency_id
        and member.service.service_id == recipient.service.service_id
    )


def _details(event: Event, before: Team | None) -> tuple[Detail, ...]:
    """What the event says, as keys and values (the words are the message's to choose):
    for an involvement updated, only what changed, with what it was."""
    if isinstance(event, InvolvementEvent):
        now = _involvement_fields(event)
        previous = before.member(involvement_key(event)) if before is not None else None
        if event.change is InvolvementChange.UPDATED and previous is not None:
            was = _member_fields(previous)
            changed = tuple(
                Detail(key, value, was.get(key)) for key, value in now if was.get(key) != value
            )
            return (Detail("change", event.change.value), *changed)
        return (Detail("change", event.change.value), *(Detail(k, v) for k, v in now))
    if isinstance(event, LifeEvent):
        return tuple(Detail(k, v) for k, v in event.details)
    if isinstance(event, RelationshipEvent):
        return (
            Detail("relationship", event.relationship.value),
            Detail("change", event.change.value),
        )
    return ()


def _involvement_fields(event: InvolvementEvent) -> tuple[tuple[str, str], ...]:
    fields = [
        ("service", event.service.name),
        ("service_category", event.service.category.value),
        ("service_level", event.service.level.value),
        ("practitioner", f"{event.practitioner.name}, {event.practitioner.role}"),
        ("lead", "yes" if event.is_lead else "no"),
    ]
    if event.end_reason:
        fields.append(("end_reason", event.end_reason))
    return tuple(fields)


def _member_fields(m: TeamMember) -> dict[str, str]:
    return {
        "service": m.service.name,
        "service_category": m.service.category.value,
        "service_level": m.service.level.value,
        "practitioner": f"{m.practitioner.name}, {m.practitioner.role}",
        "lead": "yes" if m.is_lead else "no",
        **({"end_reason": m.end_reason} if m.end_reason else {}),
    }
