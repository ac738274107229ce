"""Households: who lives at one UPRN, kept on the partition of that UPRN.

People join and leave on their own partitions (a move, a new household member); the change
is repartitioned to the household's UPRN, and the household answers with edge updates to
every member's partition. Membership is last-writer-wins per person, ranked as the person
stage ranks it (a stated move outranks an observed address, then time).

The household is the one writer of its members' household edges, and it processes its
changes in order. So each household's edges have a key of their own (``household:<uprn>``)
and are ordered by the household's own change counter: the last change the household made
is the one that stands, and a family moving together from one UPRN to another ends one set
of edges and starts another, whatever the order of the two households' messages.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, replace

from .family import HOUSEHOLD, Edge
from .messages import EdgeUpdate, HouseholdMessage, HouseholdRename
from .policy import Link

Rank = tuple[int, dt.datetime, str]
# Household edges are ordered by the household's change counter alone (see above).
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class Member:
    person_id: str
    present: bool
    version: Rank


@dataclass(frozen=True, slots=True)
class HouseholdState:
    uprn: str
    members: tuple[Member, ...] = ()
    changes: int = 0  # how many membership changes this household has applied

    def present(self) -> tuple[Member, ...]:
        return tuple(m for m in self.members if m.present)


def on_household_message(
    message: HouseholdMessage, state: HouseholdState | None
) -> tuple[HouseholdState, tuple[EdgeUpdate, ...]]:
    current = state or HouseholdState(message.uprn)
    if isinstance(message, HouseholdRename):
        return _rename(current, message)

    existing = next((m for m in current.members if m.person_id == message.person_id), None)
    if existing is not None and existing.version >= message.version:
        return current, ()
    was_present = existing is not None and existing.present
    if was_present == message.joined and existing is not None:
        # Same presence, newer fact: record it, but no edge changes.
        member = Member(message.person_id, message.joined, message.version)
        kept = [m for m in current.members if m.person_id != message.person_id]
        return replace(current, members=_sorted([*kept, member])), ()
    counter = current.changes + 1
    member = Member(message.person_id, message.joined, message.version)
    kept = [m for m in current.members if m.person_id != message.person_id]
    updated = replace(current, members=_sorted([*kept, member]), changes=counter)
    edges: list[EdgeUpdate] = []
    for other in current.present():
        if other.person_id == message.person_id:
            continue
        stamp = (_EPOCH, f"{counter:012d}")
        via = f"{HOUSEHOLD}:{current.uprn}"
        for owner, peer in (
            (other.person_id, message.person_id),
            (message.person_id, other.person_id),
        ):
            edges.append(
                EdgeUpdate(owner, Edge(peer, Link.HOUSEHOLD_MEMBER, message.joined, stamp, via))
            )
    return updated, tuple(edges)


def _sorted(members: Iterable[Member]) -> tuple[Member, ...]:
    return tuple(sorted(members, key=lambda m: m.person_id))


def _rename(
    current: HouseholdState, message: HouseholdRename
) -> tuple[HouseholdState, tuple[EdgeUpdate, ...]]:
    """A member was merged into another person: move the membership to the survivor, end
    every edge to the old id and (re)link the survivor with those present."""
    members = {m.person_id: m for m in current.members}
    moved = members.pop(message.from_id, None)
    if moved is None:
        return current, ()
    mine = members.get(message.into_id)
    if mine is None or moved.version > mine.version:
        members[message.into_id] = replace(moved, person_id=message.into_id)
    counter = current.changes + 1
    updated = replace(current, members=_sorted(members.values()), changes=counter)
    stamp = (_EPOCH, f"{counter:012d}")
    via = f"{HOUSEHOLD}:{current.uprn}"
    survivor_present = members[message.into_id].present
    edges: list[EdgeUpdate] = []
    for other in updated.present():
        if other.person_id == message.into_id:
            continue
        edges.append(
            EdgeUpdate(
                other.person_id, Edge(message.from_id, Link.HOUSEHOLD_MEMBER, False, stamp, via)
            )
        )
        for owner, peer in ((other.person_id, message.into_id), (message.into_id, other.person_id)):
            edges.append(
                EdgeUpdate(owner, Edge(peer, Link.HOUSEHOLD_MEMBER, survivor_present, stamp, via))
            )
    edges.append(
        EdgeUpdate(message.into_id, Edge(message.from_id, Link.HOUSEHOLD_MEMBER, False, stamp, via))
    )
    return updated, tuple(edges)
