"""Routing: from an event and the team around a child to alert decisions.

``route`` is pure. For the child whose team is given, it asks the subscription rules who
wants to hear about this kind of event through this link, then the governance policy
whether each of them may: every candidate becomes a :class:`Decision` to SEND or to
SUPPRESS (with a fixed reason), and both are audited (IG-5).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from enum import StrEnum

from .errors import RejectedEvent
from .family import Subscription
from .model import (
    Event,
    InvolvementEvent,
    LawfulBasis,
    Service,
    ServiceCategory,
    ServiceLevel,
    Urgency,
)
from .policy import ContentLevel, KindPolicy, Link, Policy, RecipientRole
from .reasons import Reason
from .subscriptions import SubscriptionRules
from .team import Team, TeamMember, involvement_key


class Outcome(StrEnum):
    SEND = "SEND"
    SUPPRESS = "SUPPRESS"


class Suppression(StrEnum):
    """Why a wanted alert was not sent. Values are metric label and audit tokens."""

    ROLE_NOT_PERMITTED = "role_not_permitted"
    NO_LEGITIMATE_RELATIONSHIP = "no_legitimate_relationship"
    SERVICE_NOT_PERMITTED = "service_not_permitted"
    INVOLVEMENT_ENDED = "involvement_ended"
    SENSITIVE_WITHOUT_CONSENT = "sensitive_without_consent"
    # At send time (delivery), not routing: still unsent when the recipient's grace ran out.
    ENDED_BEFORE_SEND = "ended_before_send"


@dataclass(frozen=True, slots=True)
class Decision:
    """One recipient's fate for one event and one child, with its lawful reasons."""

    event_key: str
    kind: str
    person_id: str  # the child whose team is told
    about_person_id: str  # the person the event is about (the child, for SELF)
    link: Link
    recipient: TeamMember
    role: RecipientRole
    rule_id: str
    policy_version: str
    lawful_basis: LawfulBasis
    content_level: ContentLevel
    urgency: Urgency
    outcome: Outcome
    suppression: Suppression | None = None

    @property
    def alert_id(self) -> str:
        """Deterministic: event x recipient x the recipient's case x policy version.

        The recipient's own case reference stands in for the child because it survives
        identity merges, and it keeps apart two children with the same lead.
        """
        material = "\x1f".join(
            (
                self.event_key,
                self.recipient.recipient_id,
                self.recipient.record_ref,
                self.policy_version,
            )
        )
        return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


def route(
    event: Event,
    *,
    person_id: str,
    about_person_id: str,
    link: Link,
    before: Team,
    after: Team,
    policy: Policy,
    rules: SubscriptionRules,
    now: dt.datetime,
    subscriptions: tuple[Subscription, ...] = (),
) -> tuple[Decision, ...]:
    """Decide who hears about ``event`` for the child ``person_id``.

    ``before`` and ``after`` are the child's team around the event (the same for events
    that do not change the team): both old and new leads hear of a change of lead.
    ``subscriptions`` are the explicit subscriptions made about the child.
    """
    entry = policy.for_kind(event.kind)
    if entry is None:
        raise RejectedEvent(Reason.NO_POLICY, f"no policy for event kind {event.kind}")
    actor = _actor(event, before, after)
    candidates: dict[str, tuple[TeamMember, RecipientRole, str]] = {}
    unqualified: set[str] = set()
    for rule in rules.matching(event.kind, link):
        if rule.role is RecipientRole.EXPLICIT_SUBSCRIBER:
            for subscription in subscriptions:
                if not subscription.wants(event.kind) or subscription.recipient_id == actor:
                    continue
                member = _membership(subscription, before, after, policy, now)
                if member is None:
                    member = _no_involvement(subscription)
                    unqualified.add(subscription.recipient_id)
                candidates.setdefault(subscription.recipient_id, (member, rule.role, rule.rule_id))
            continue
        for member in _members(rule.role, before, after):
            if member.recipient_id == actor:
                continue
            candidates.setdefault(member.recipient_id, (member, rule.role, rule.rule_id))
    sensitive = _sensitive_source(event, before, after, policy)
    decisions = []
    for member, role, rule_id in candidates.values():
        suppression = (
            Suppression.NO_LEGITIMATE_RELATIONSHIP
            if member.recipient_id in unqualified
            else _check(member, role, entry, policy, now, sensitive)
        )
        decisions.append(
            Decision(
                event_key=event.envelope.key,
                kind=event.kind,
                person_id=person_id,
                about_person_id=about_person_id,
                link=link,
                recipient=member,
                role=role,
                rule_id=rule_id,
                policy_version=policy.version,
                lawful_basis=entry.lawful_basis,
                content_level=entry.content_level,
                urgency=_urgency(event, entry),
                outcome=Outcome.SEND if suppression is None else Outcome.SUPPRESS,
                suppression=suppression,
            )
        )
    return tuple(decisions)


def _membership(
    subscription: Subscription, before: Team, after: Team, policy: Policy, now: dt.datetime
) -> TeamMember | None:
    """IG-2 for an explicit subscriber: their own involvement with the child, if any."""
    for team in (after, before):
        for member in team.members:
            if member.recipient_id == subscription.recipient_id and member.may_receive(
                now, policy.grace_period
            ):
                return member
    return None


def _no_involvement(subscription: Subscription) -> TeamMember:
    """A stand-in for a subscriber with no involvement, so the suppression can be audited."""
    return TeamMember(
        involvement_key=f"subscription:{subscription.key}",
        agency_id=subscription.agency_id,
        record_ref=subscription.record_ref,
        service=Service("", "(no involvement)", ServiceCategory.OTHER, ServiceLevel.UNIVERSAL),
        practitioner=subscription.practitioner,
        is_lead=False,
        lawful_basis=LawfulBasis.PUBLIC_TASK,
        consent_to_share=None,
        started_on=subscription.version[0].date(),
        ended_on=None,
        end_reason=None,
        ended_at=None,
        version=(subscription.version[0], 0, subscription.version[1]),
    )


def _members(role: RecipientRole, before: Team, after: Team) -> list[TeamMember]:
    """Members in ``role`` now, plus those who held it before this event: an old lead, or
    the practitioner an involvement was just reallocated from."""
    wanted_lead = role is RecipientRole.LEAD_PRACTITIONER
    seen: dict[tuple[str, str], TeamMember] = {}
    for team in (after, before):
        for member in team.members:
            key = (member.involvement_key, member.recipient_id)
            if member.is_lead == wanted_lead and key not in seen:
                seen[key] = member
    return list(seen.values())


def _actor(event: Event, before: Team, after: Team) -> str | None:
    """The practitioner whose own involvement changed: they need no alert about it,
    unless they have just become the lead of a child others already work with (they
    then need to know who else is involved, and the old lead hears too).
    """
    if not isinstance(event, InvolvementEvent):
        return None
    key = involvement_key(event)
    now_member = after.member(key)
    was = before.member(key)
    became_lead = (
        now_member is not None
        and now_member.current
        and now_member.is_lead
        # newly lead, or a lead involvement reallocated to another practitioner
        and (was is None or not was.is_lead or was.recipient_id != now_member.recipient_id)
    )
    reallocated = (
        was is not None and now_member is not None and was.recipient_id != now_member.recipient_id
    )
    others = reallocated or any(m.involvement_key != key and m.current for m in before.members)
    if became_lead and others:
        return None
    return f"{event.envelope.source.agency_id}/{event.practitioner.practitioner_id}"


@dataclass(frozen=True, slots=True)
class _Sensitive:
    """The involvement this event would reveal (IG-3): its agency and, for an involvement
    event, its service. Only practitioners of that service (of that agency) may know."""

    agency_id: str
    service_id: str | None

    def may_know(self, member: TeamMember) -> bool:
        if member.agency_id != self.agency_id:
            return False
        return self.service_id is None or member.service.service_id == self.service_id


def _sensitive_source(event: Event, before: Team, after: Team, policy: Policy) -> _Sensitive | None:
    source = event.envelope.source.agency_id
    if isinstance(event, InvolvementEvent):
        member = after.member(involvement_key(event)) or before.member(involvement_key(event))
        if member is not None and not member.shareable:
            return _Sensitive(source, event.service.service_id)
        return None
    own = [m for m in (*after.members, *before.members) if m.agency_id == source]
    if own and not any(m.shareable for m in own):
        return _Sensitive(source, None)
    if source in policy.sensitive_agencies and not any(m.shareable for m in own):
        return _Sensitive(source, None)
    return None


def _check(
    member: TeamMember,
    role: RecipientRole,
    entry: KindPolicy,
    policy: Policy,
    now: dt.datetime,
    sensitive: _Sensitive | None,
) -> Suppression | None:
    if role not in entry.recipient_roles:
        return Suppression.ROLE_NOT_PERMITTED
    if member.service.category not in entry.service_categories:
        return Suppression.SERVICE_NOT_PERMITTED
    if not member.may_receive(now, policy.grace_period):
        return Suppression.INVOLVEMENT_ENDED
    if sensitive is not None and not sensitive.may_know(member):
        return Suppression.SENSITIVE_WITHOUT_CONSENT
    return None


_URGENCY_ORDER = (Urgency.ROUTINE, Urgency.PRIORITY, Urgency.URGENT)


def _urgency(event: Event, entry: KindPolicy) -> Urgency:
    """The higher of the sender's urgency and the policy's: a kind the policy deems
    urgent is never downgraded by a sender, but a sender may raise a routine kind."""
    own = getattr(event, "urgency", None)
    if not isinstance(own, Urgency):
        return entry.urgency
    return max(own, entry.urgency, key=_URGENCY_ORDER.index)
