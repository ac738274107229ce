"""The team around the child: which services and practitioners work with a person.

A :class:`Team` is one person's involvement index, keyed by the person's hub id. It is
rebuilt only by applying involvement events, last-writer-wins per involvement on the
event's ``occurred_at`` (ties broken by the change and the event id), so replays and late
arrivals give the same state as the original order.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from enum import StrEnum

from .identity import LOCAL_SCHEMES
from .model import (
    Identifier,
    InvolvementChange,
    InvolvementEvent,
    LawfulBasis,
    Practitioner,
    SafeguardingOverride,
    Service,
)

Version = tuple[dt.datetime, int, str]

_CHANGE_ORDER = {
    InvolvementChange.STARTED: 0,
    InvolvementChange.UPDATED: 1,
    InvolvementChange.ENDED: 2,
}


@dataclass(frozen=True, slots=True)
class TeamMember:
    involvement_key: str  # "<agency_id>/<involvement_id>"
    agency_id: str
    record_ref: str  # the agency's own case reference for this person
    service: Service
    practitioner: Practitioner
    is_lead: bool
    lawful_basis: LawfulBasis
    consent_to_share: bool | None
    started_on: dt.date
    ended_on: dt.date | None
    end_reason: str | None
    ended_at: dt.datetime | None
    version: Version  # (occurred_at, change order, event key)
    safeguarding_override: SafeguardingOverride | None = None
    # The local identifiers of the person (a local authority or police person id) this
    # agency's own record carries: shown to this agency's practitioner, to tell children
    # apart. National numbers are not kept here.
    person_refs: tuple[Identifier, ...] = ()

    @property
    def recipient_id(self) -> str:
        """A practitioner's hub-wide id: practitioner ids are unique per agency only."""
        return f"{self.agency_id}/{self.practitioner.practitioner_id}"

    @property
    def current(self) -> bool:
        return self.ended_at is None

    def may_receive(self, now: dt.datetime, grace: dt.timedelta) -> bool:
        """IG-2 and IG-6: active, or ended less than the grace period ago."""
        return self.ended_at is None or now - self.ended_at <= grace

    @property
    def shareable(self) -> bool:
        """IG-3: may this involvement be revealed to other practitioners? Only if it is not
        of a sensitive service, or consent is recorded, or a safeguarding override is."""
        if not self.service.sensitive:
            return True
        return self.consent_to_share is True or self.safeguarding_override is not None


@dataclass(frozen=True, slots=True)
class Team:
    """``tombstones`` remember the last version of involvements forgotten by :func:`prune`,
    so a replayed or re-sent old event cannot bring an ended involvement back to life."""

    person_id: str
    members: tuple[TeamMember, ...] = ()
    tombstones: tuple[tuple[str, Version], ...] = ()

    def tombstone(self, involvement_key: str) -> Version | None:
        for key, version in self.tombstones:
            if key == involvement_key:
                return version
        return None

    def member(self, involvement_key: str) -> TeamMember | None:
        for member in self.members:
            if member.involvement_key == involvement_key:
                return member
        return None

    def current(self) -> tuple[TeamMember, ...]:
        return tuple(m for m in self.members if m.current)

    def leads(self) -> tuple[TeamMember, ...]:
        return tuple(m for m in self.members if m.current and m.is_lead)


def involvement_key(event: InvolvementEvent) -> str:
    return f"{event.envelope.source.agency_id}/{event.involvement_id}"


def _version(event: InvolvementEvent) -> Version:
    return (event.envelope.occurred_at, _CHANGE_ORDER[event.change], event.envelope.key)


class Freshness(StrEnum):
    NEW = "new"  # newer than anything known for this involvement: it changes the team
    SAME = "same"  # exactly the version already applied: a replay of the same event
    STALE = "stale"  # older than what is known: not news to anyone


def freshness(team: Team, event: InvolvementEvent) -> Freshness:
    key = involvement_key(event)
    existing = team.member(key)
    known = existing.version if existing is not None else team.tombstone(key)
    version = _version(event)
    if known is None or version > known:
        return Freshness.NEW
    return Freshness.SAME if version == known else Freshness.STALE


def apply_involvement(team: Team, event: InvolvementEvent) -> Team:
    """The team after ``event``; unchanged if a newer event for it was already applied."""
    if freshness(team, event) is not Freshness.NEW:
        return team
    key = involvement_key(event)
    version = _version(event)
    ended = event.change is InvolvementChange.ENDED
    member = TeamMember(
        involvement_key=key,
        agency_id=event.envelope.source.agency_id,
        record_ref=event.envelope.source.record_ref,
        service=event.service,
        practitioner=event.practitioner,
        is_lead=event.is_lead,
        lawful_basis=event.lawful_basis,
        consent_to_share=event.consent_to_share,
        started_on=event.started_on,
        ended_on=event.ended_on or (event.envelope.occurred_at.date() if ended else None),
        end_reason=event.end_reason,
        ended_at=event.envelope.occurred_at if ended else None,
        version=version,
        safeguarding_override=event.safeguarding_override,
        person_refs=tuple(
            i for i in event.envelope.subject.identifiers if i.scheme in LOCAL_SCHEMES
        ),
    )
    others = tuple(m for m in team.members if m.involvement_key != key)
    return replace(team, members=tuple(sorted((*others, member), key=_order)))


def _order(member: TeamMember) -> tuple[bool, str]:
    return (not member.is_lead, member.involvement_key)


def merge_teams(into: Team, other: Team) -> Team:
    """Two persons found to be one: the union of their involvements, newest wins."""
    tombs: dict[str, Version] = dict(into.tombstones)
    for key, version in other.tombstones:
        if key not in tombs or version > tombs[key]:
            tombs[key] = version
    merged = {m.involvement_key: m for m in into.members}
    for member in other.members:
        current = merged.get(member.involvement_key)
        if current is None or member.version > current.version:
            merged[member.involvement_key] = member
    live = [
        m
        for m in merged.values()
        if m.involvement_key not in tombs or m.version > tombs[m.involvement_key]
    ]
    return Team(into.person_id, tuple(sorted(live, key=_order)), tuple(sorted(tombs.items())))


def prune(team: Team, now: dt.datetime, retention: dt.timedelta) -> Team:
    """IG-6: forget involvements that ended longer ago than ``retention``, keeping only a
    tombstone of their last version."""
    expired = [m for m in team.members if m.ended_at is not None and now - m.ended_at > retention]
    if not expired:
        return team
    gone = {m.involvement_key for m in expired}
    tombs = dict(team.tombstones)
    tombs.update((m.involvement_key, m.version) for m in expired)
    kept = tuple(m for m in team.members if m.involvement_key not in gone)
    return replace(team, members=kept, tombstones=tuple(sorted(tombs.items())))
