"""Households: who lives at one UPRN, kept on the partition of that UPRN.

People join and leave on their own partitions (a move, a new household member); the change
is repartitioned to the household's UPRN, and the household answers with edge updates to
every member's partition. Membership is last-writer-wins per person on the event time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from .family import HOUSEHOLD, Edge, Stamp
from .messages import EdgeUpdate, HouseholdMessage, HouseholdRename
from .policy import Link


@dataclass(frozen=True, slots=True)
class Member:
    person_id: str
    present: bool
    version: Stamp


@dataclass(frozen=True, slots=True)
class HouseholdState:
    uprn: str
    members: tuple[Member, ...] = ()

    def present(self) -> tuple[str, ...]:
        return tuple(m.person_id for m in self.members if m.present)


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
    others = [p for p in current.present() if p != message.person_id]
    member = Member(message.person_id, message.joined, message.version)
    kept = [m for m in current.members if m.person_id != message.person_id]
    updated = replace(current, members=_sorted([*kept, member]))
    edges: list[EdgeUpdate] = []
    for other in others:
        for owner, peer in ((other, message.person_id), (message.person_id, other)):
            edge = Edge(peer, Link.HOUSEHOLD_MEMBER, message.joined, message.version, HOUSEHOLD)
            edges.append(EdgeUpdate(owner, edge))
    return updated, tuple(edges)


def _sorted(members: Iterable[Member]) -> tuple[Member, ...]:
    return tuple(sorted(members, key=lambda m: m.person_id))
