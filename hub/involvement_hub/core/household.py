"""Households: who lives at one UPRN, kept on the partition of that UPRN.

People join and leave on their own partitions (a move, a new household member); the change
is repartitioned to the household's UPRN, and the household answers with edge updates to
every member's partition. Membership is last-writer-wins per person, ranked as the person
stage ranks it (a stated move outranks an observed address, then time).

The household is the one writer of its members' household edges, and it processes its
changes in order, so each edge it derives is stamped with the later of the two members'
times and, to break ties, the household's own change counter: a leave processed after a
later join still ends the edge it should.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, replace

from .family import HOUSEHOLD, Edge
from .messages import EdgeUpdate, HouseholdMessage, HouseholdRename
from .policy import Link

Rank = tuple[int, dt.datetime, str]


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
        members = {m.person_id: m for m in current.members}
        moved = members.pop(message.from_id, None)
        if moved is not None:
            mine = members.get(message.into_id)
            if mine is None or moved.version > mine.version:
                members[message.into_id] = replace(moved, person_id=message.into_id)
        return replace(current, members=_sorted(members.values())), ()
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
        moment = max(other.version[1], message.version[1])
        stamp = (moment, f"{current.uprn}#{counter:012d}")
        for owner, peer in (
            (other.person_id, message.person_id),
            (message.person_id, other.person_id),
        ):
            edges.append(
                EdgeUpdate(
                    owner, Edge(peer, Link.HOUSEHOLD_MEMBER, message.joined, stamp, HOUSEHOLD)
                )
            )
    return updated, tuple(edges)


def _sorted(members: Iterable[Member]) -> tuple[Member, ...]:
    return tuple(sorted(members, key=lambda m: m.person_id))
