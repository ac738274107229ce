"""Families and households: each person's own view of who they are linked to.

A person's :class:`PersonState` lives on the partition of their hub id and holds their
team, their family *edges*, their household (by UPRN) and the explicit subscriptions made
about them. A relationship between A and B is two edges, one stored with each of them, so
each partition answers "who is linked to this person, and how" without reading another.

An edge on P reads "P is <link> of other": ``Edge(other_id=C, link=PARENT)`` on P says P is
C's parent, so an event about P reaches C's team as an event "about a parent of the child".
Edges, households and subscriptions are last-writer-wins on the event time (then event key),
so the state does not depend on the order events arrive in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from .model import (
    Envelope,
    LifeEvent,
    LifeEventKind,
    PersonRef,
    Practitioner,
    RelationshipKind,
    RelationshipToSubject,
    Source,
    SubscriptionChange,
    SubscriptionEvent,
    Urgency,
)
from .policy import Link
from .team import Team, merge_teams

Stamp = tuple[dt.datetime, str]  # (occurred_at, event key): the LWW version of a fact
RELATIONSHIP = "relationship"
HOUSEHOLD = "household"

_INVERSE = {
    Link.PARENT: Link.CHILD,
    Link.CHILD: Link.PARENT,
    Link.CARER: Link.CARED_FOR,
    Link.CARED_FOR: Link.CARER,
}
# What the subject is to the related person, for each kind of Relationship event.
_RELATIONSHIP_LINK = {
    RelationshipKind.PARENT_OF: Link.PARENT,
    RelationshipKind.SIBLING_OF: Link.SIBLING,
    RelationshipKind.PARTNER_OF: Link.PARTNER,
    RelationshipKind.CARER_OF: Link.CARER,
    RelationshipKind.HOUSEHOLD_MEMBER_WITH: Link.HOUSEHOLD_MEMBER,
}
# What a life event's related person is to the subject.
_RELATED_LINK = {
    RelationshipToSubject.PARENT: Link.PARENT,
    RelationshipToSubject.CHILD: Link.CHILD,
    RelationshipToSubject.SIBLING: Link.SIBLING,
    RelationshipToSubject.PARTNER: Link.PARTNER,
    RelationshipToSubject.CARER: Link.CARER,
    RelationshipToSubject.HOUSEHOLD_MEMBER: Link.HOUSEHOLD_MEMBER,
}


def inverse(link: Link) -> Link:
    """The same edge seen from the other end (a parent's child, a carer's cared-for)."""
    return _INVERSE.get(link, link)


def relationship_link(kind: RelationshipKind) -> Link:
    return _RELATIONSHIP_LINK[kind]


def related_link(relationship: RelationshipToSubject) -> Link | None:
    return _RELATED_LINK.get(relationship)


@dataclass(frozen=True, slots=True)
class Edge:
    other_id: str
    link: Link  # what this person is to the other
    active: bool
    version: Stamp
    via: str  # RELATIONSHIP (asserted by an event) or HOUSEHOLD (same UPRN)


@dataclass(frozen=True, slots=True)
class Household:
    uprn: str | None  # None: left, new address unknown
    version: Stamp
    observed: bool  # seen on an event's address, not stated by a move


@dataclass(frozen=True, slots=True)
class Subscription:
    key: str  # "<agency_id>/<subscription_id>"
    agency_id: str
    record_ref: str
    practitioner: Practitioner
    kinds: tuple[str, ...]  # empty: every kind the policy allows explicit subscribers
    reason: str
    active: bool
    version: Stamp

    @property
    def recipient_id(self) -> str:
        return f"{self.agency_id}/{self.practitioner.practitioner_id}"

    def wants(self, kind: str) -> bool:
        return self.active and (not self.kinds or kind in self.kinds)


@dataclass(frozen=True, slots=True)
class Recent:
    """A life event this person's team was asked about, kept for catch-up on late links
    (``core.catch_up``): only what routing it again and telling of it need, nothing that
    identifies anyone. Kept flat and small: it is written with the person's state."""

    kind: str  # a LifeEventKind value
    event_id: str
    agency_id: str
    record_ref: str
    occurred_at: dt.datetime
    urgency: Urgency
    details: tuple[tuple[str, str], ...]
    about_person_id: str  # whom the event is about (this person, for SELF)
    link: Link  # what that person is to this one

    @classmethod
    def of(cls, event: LifeEvent, about_person_id: str, link: Link) -> Recent:
        envelope = event.envelope
        return cls(
            event.kind,
            envelope.event_id,
            envelope.source.agency_id,
            envelope.source.record_ref,
            envelope.occurred_at,
            event.urgency,
            event.details,
            about_person_id,
            link,
        )

    def event(self) -> LifeEvent:
        """The event as routing sees it, without a subject."""
        source = Source(self.agency_id, "", self.record_ref)
        envelope = Envelope(
            self.event_id, self.occurred_at, self.occurred_at, source, PersonRef(())
        )
        return LifeEvent(envelope, LifeEventKind(self.kind), self.urgency, details=self.details)

    @property
    def event_key(self) -> str:
        return f"{self.agency_id}/{self.event_id}"

    @property
    def key(self) -> tuple[dt.datetime, str, str, str]:
        return (self.occurred_at, self.event_key, self.about_person_id, self.link.value)


@dataclass(frozen=True, slots=True)
class PersonState:
    person_id: str
    team: Team
    edges: tuple[Edge, ...] = ()
    household: Household | None = None
    subscriptions: tuple[Subscription, ...] = ()
    # Set when this person was merged into another: messages still on their way here are
    # passed on to the survivor instead of bringing a ghost back.
    merged_into: str | None = None
    # Recent events, oldest first, within the policy's longest catch-up window.
    recent: tuple[Recent, ...] = ()

    @classmethod
    def empty(cls, person_id: str) -> PersonState:
        return cls(person_id, Team(person_id))

    def links(self) -> dict[str, frozenset[Link]]:
        """Active links by other person: what this person is to each of them."""
        out: dict[str, set[Link]] = {}
        for edge in self.edges:
            if edge.active:
                out.setdefault(edge.other_id, set()).add(edge.link)
        return {k: frozenset(v) for k, v in out.items()}


def _edge_key(edge: Edge) -> tuple[str, Link, str]:
    return (edge.other_id, edge.link, edge.via)


def set_edge(state: PersonState, edge: Edge) -> PersonState:
    """Record one edge fact, unless a newer fact about the same edge is already known."""
    if edge.other_id == state.person_id:
        return state
    key = _edge_key(edge)
    current = next((e for e in state.edges if _edge_key(e) == key), None)
    if current is not None and current.version >= edge.version:
        return state
    kept = tuple(e for e in state.edges if _edge_key(e) != key)
    return replace(state, edges=_sorted_edges((*kept, edge)))


def _sorted_edges(edges: tuple[Edge, ...]) -> tuple[Edge, ...]:
    return tuple(sorted(edges, key=lambda e: (e.other_id, e.link.value, e.via)))


def set_household(
    state: PersonState, uprn: str | None, version: Stamp, *, observed: bool
) -> tuple[PersonState, tuple[str | None, str | None] | None]:
    """Move the person to ``uprn``. Returns the new state and (old, new) UPRNs if it changed.

    A stated move (ADDRESS_CHANGED, joining or leaving a household) always outranks an
    address merely *observed* on an event; within a rank, the newer fact wins.
    """
    current = state.household
    if current is not None and household_rank(current.observed, current.version) >= household_rank(
        observed, version
    ):
        return state, None
    new = Household(uprn, version, observed)
    old_uprn = current.uprn if current is not None else None
    changed = (old_uprn, uprn) if old_uprn != uprn else None
    return replace(state, household=new), changed


HouseholdVersion = tuple[int, dt.datetime, str]


def household_rank(observed: bool, version: Stamp) -> HouseholdVersion:
    """Orders household facts: stated before observed, then by time, then by event key."""
    return (0 if observed else 1, version[0], version[1])


def set_subscription(state: PersonState, event: SubscriptionEvent) -> PersonState:
    source = event.envelope.source
    key = f"{source.agency_id}/{event.subscription_id}"
    version = (event.envelope.occurred_at, event.envelope.key)
    current = next((s for s in state.subscriptions if s.key == key), None)
    if current is not None and current.version >= version:
        return state
    subscription = Subscription(
        key=key,
        agency_id=source.agency_id,
        record_ref=source.record_ref,
        practitioner=event.practitioner,
        kinds=event.kinds,
        reason=event.reason,
        active=event.change is SubscriptionChange.STARTED,
        version=version,
    )
    kept = tuple(s for s in state.subscriptions if s.key != key)
    return replace(state, subscriptions=tuple(sorted((*kept, subscription), key=lambda s: s.key)))


def rename_other(state: PersonState, from_id: str, into_id: str) -> PersonState:
    """A neighbour was merged into another person: point this person's edges at the survivor."""
    if not any(e.other_id == from_id for e in state.edges):
        return state
    result = replace(state, edges=tuple(e for e in state.edges if e.other_id != from_id))
    for edge in state.edges:
        if edge.other_id == from_id:
            result = set_edge(result, replace(edge, other_id=into_id))
    return result


def merge_states(into: PersonState, other: PersonState) -> PersonState:
    """Two persons found to be one: union of team, edges, household and subscriptions."""
    result = replace(into, team=merge_teams(into.team, other.team))
    for edge in other.edges:
        result = set_edge(result, edge)
    if other.household is not None:
        result, _ = set_household(
            result, other.household.uprn, other.household.version, observed=other.household.observed
        )
    subscriptions = {s.key: s for s in result.subscriptions}
    for subscription in other.subscriptions:
        mine = subscriptions.get(subscription.key)
        if mine is None or subscription.version > mine.version:
            subscriptions[subscription.key] = subscription
    recent = {r.key: r for r in (*result.recent, *other.recent)}
    return replace(
        result,
        subscriptions=tuple(sorted(subscriptions.values(), key=lambda s: s.key)),
        recent=tuple(recent[k] for k in sorted(recent)),
    )
