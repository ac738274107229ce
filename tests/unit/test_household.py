"""Households by UPRN (core/household.py): membership is last-writer-wins per person, ranked
as the person stage ranks it (a stated move over an observed address, then time, then event
key), and each change of presence answers with household-member edges for every member
present, keyed by the household's UPRN and versioned by its own change counter alone, so
that its own order of changes decides between them."""

from __future__ import annotations

import datetime as dt

import pytest
from involvement_hub.core.family import (
    HOUSEHOLD,
    Edge,
    HouseholdVersion,
    PersonState,
    Stamp,
    household_rank,
    set_edge,
)
from involvement_hub.core.household import HouseholdState, Member, on_household_message
from involvement_hub.core.messages import EdgeUpdate, HouseholdChange, HouseholdRename
from involvement_hub.core.policy import Link

UPRN = "999000000042"
VIA = f"{HOUSEHOLD}:{UPRN}"  # the edge key of this household's edges
T = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def at(minutes: int) -> Stamp:
    return (T + dt.timedelta(minutes=minutes), f"northshire-housing/ev-{minutes}")


def rank(minutes: int, *, observed: bool = False) -> HouseholdVersion:
    return household_rank(observed, at(minutes))


def change(person: str, joined: bool, minutes: int, *, observed: bool = False) -> HouseholdChange:
    return HouseholdChange(UPRN, person, joined, rank(minutes, observed=observed))


def present(state: HouseholdState) -> tuple[str, ...]:
    return tuple(m.person_id for m in state.present())


def edge_stamp(change_number: int) -> Stamp:
    """How the household stamps the edges of its ``change_number``-th change of presence:
    by its own counter only, whatever the members' times."""
    return (EPOCH, f"{change_number:012d}")


def apply(
    *messages: HouseholdChange | HouseholdRename, state: HouseholdState | None = None
) -> tuple[HouseholdState, list[EdgeUpdate]]:
    edges: list[EdgeUpdate] = []
    for message in messages:
        state, out = on_household_message(message, state)
        edges.extend(out)
    assert state is not None
    return state, edges


def as_pairs(edges: list[EdgeUpdate]) -> set[tuple[str, str, bool]]:
    for update in edges:
        assert update.edge.link is Link.HOUSEHOLD_MEMBER
        assert update.edge.via == VIA
    return {(u.person_id, u.edge.other_id, u.edge.active) for u in edges}


def test_the_first_member_is_linked_to_nobody() -> None:
    state, edges = apply(change("P-MUM", True, 1))
    assert state.uprn == UPRN
    assert present(state) == ("P-MUM",)
    assert edges == []


def test_joining_links_the_newcomer_and_every_present_member_both_ways() -> None:
    state, _ = apply(change("P-MUM", True, 1), change("P-KID", True, 2))
    state, edges = apply(change("P-PARTNER", True, 3), state=state)
    assert present(state) == ("P-KID", "P-MUM", "P-PARTNER")
    assert as_pairs(edges) == {
        ("P-MUM", "P-PARTNER", True),
        ("P-PARTNER", "P-MUM", True),
        ("P-KID", "P-PARTNER", True),
        ("P-PARTNER", "P-KID", True),
    }
    # The third change at this household.
    assert {u.edge.version for u in edges} == {edge_stamp(3)}


def test_leaving_ends_the_links_with_every_present_member() -> None:
    state, _ = apply(
        change("P-MUM", True, 1), change("P-KID", True, 2), change("P-PARTNER", True, 3)
    )
    state, edges = apply(change("P-PARTNER", False, 4), state=state)
    assert present(state) == ("P-KID", "P-MUM")
    assert Member("P-PARTNER", False, rank(4)) in state.members
    assert as_pairs(edges) == {
        ("P-MUM", "P-PARTNER", False),
        ("P-PARTNER", "P-MUM", False),
        ("P-KID", "P-PARTNER", False),
        ("P-PARTNER", "P-KID", False),
    }


def test_an_older_change_for_a_member_is_ignored() -> None:
    state, _ = apply(change("P-MUM", True, 1), change("P-PARTNER", False, 5))
    again, edges = apply(change("P-PARTNER", True, 3), state=state)
    assert again == state
    assert edges == []
    replay, edges = apply(change("P-PARTNER", False, 5), state=state)
    assert replay == state
    assert edges == []


def test_membership_is_last_writer_wins_in_any_order() -> None:
    joined, left = change("P-PARTNER", True, 1), change("P-PARTNER", False, 2)
    a, _ = apply(change("P-MUM", True, 0), joined, left)
    b, _ = apply(change("P-MUM", True, 0), left, joined)
    # The change counter may differ (a leave of a stranger still counts); membership may not.
    assert a.members == b.members
    assert present(a) == ("P-MUM",)


def test_the_members_edges_give_the_same_links_as_the_membership() -> None:
    # Applying the household's answers to each person's state shows who lives together.
    state, edges = apply(
        change("P-MUM", True, 1),
        change("P-KID", True, 2),
        change("P-LODGER", True, 3),
        change("P-LODGER", False, 4),
    )
    persons = {p: PersonState.empty(p) for p in ("P-MUM", "P-KID", "P-LODGER")}
    for update in edges:
        persons[update.person_id] = set_edge(persons[update.person_id], update.edge)
    assert persons["P-MUM"].links() == {"P-KID": frozenset({Link.HOUSEHOLD_MEMBER})}
    assert persons["P-KID"].links() == {"P-MUM": frozenset({Link.HOUSEHOLD_MEMBER})}
    assert persons["P-LODGER"].links() == {}
    assert present(state) == ("P-KID", "P-MUM")


def test_a_late_leave_ends_the_link_with_a_member_who_joined_after_it() -> None:
    # A member's leave (t=3) processed after a later joiner (t=5) still ends their link:
    # the household versions each edge by its own change counter, so the inactive edge
    # outranks the active one the join sent.
    finals = []
    for order in (
        [change("P-LODGER", True, 1), change("P-LODGER", False, 3), change("P-KID", True, 5)],
        [change("P-LODGER", True, 1), change("P-KID", True, 5), change("P-LODGER", False, 3)],
    ):
        _, edges = apply(*order)
        kid = PersonState.empty("P-KID")
        for update in edges:
            if update.person_id == "P-KID":
                kid = set_edge(kid, update.edge)
        finals.append(kid.links())
    assert finals == [{}, {}]


def test_a_stated_move_outranks_a_newer_observed_address() -> None:
    # A record at t=5 still showing the old address does not undo a move stated at t=3.
    left = change("P-MUM", False, 3)
    seen = change("P-MUM", True, 5, observed=True)
    for order in ((left, seen), (seen, left)):
        state, _ = apply(change("P-KID", True, 1), *order)
        assert present(state) == ("P-KID",)
        assert Member("P-MUM", False, rank(3)) in state.members


def test_a_newer_fact_that_keeps_presence_sends_no_edges() -> None:
    state, _ = apply(change("P-MUM", True, 1), change("P-KID", True, 2))
    again, edges = apply(change("P-KID", True, 4), state=state)
    assert edges == []
    assert again.changes == state.changes
    assert Member("P-KID", True, rank(4)) in again.members


def test_a_stated_leave_ends_the_link_made_by_a_newer_observed_join() -> None:
    # An observed join (t=25) then an older stated leave (t=22): the leave wins the
    # membership, and its inactive edge (change 3) outranks the join's active one (change 2)
    # because the household's edges are ordered by its counter, not by the members' times.
    _, edges = apply(
        change("P-MUM", True, 10, observed=True),
        change("P-KID", True, 25, observed=True),
        change("P-KID", False, 22),
    )
    kid = PersonState.empty("P-KID")
    for update in edges:
        if update.person_id == "P-KID":
            kid = set_edge(kid, update.edge)
    assert kid.links() == {}


@pytest.mark.parametrize(
    ("old", "new"), [("999000000777", "999000000999"), ("999000000999", "999000000777")]
)
def test_a_family_moving_together_stays_linked_at_the_new_address(old: str, new: str) -> None:
    # Moving together at t=10, in either direction: each household's edges have a key of
    # their own (household:<uprn>), so the old household's inactive edges never outrank the
    # new one's active edges, whichever UPRN sorts first.
    def moved(uprn: str, person: str, joined: bool, minutes: int) -> HouseholdChange:
        return HouseholdChange(uprn, person, joined, rank(minutes))

    left, from_old = apply(
        moved(old, "P-MUM", True, 1),
        moved(old, "P-KID", True, 1),
        moved(old, "P-MUM", False, 10),
        moved(old, "P-KID", False, 10),
    )
    arrived, from_new = apply(moved(new, "P-MUM", True, 10), moved(new, "P-KID", True, 10))
    assert present(left) == ()
    assert present(arrived) == ("P-KID", "P-MUM")
    kid = PersonState.empty("P-KID")
    for update in [*from_old, *from_new]:
        if update.person_id == "P-KID":
            kid = set_edge(kid, update.edge)
    assert kid.links() == {"P-MUM": frozenset({Link.HOUSEHOLD_MEMBER})}


def test_a_rename_moves_the_membership_to_the_survivor() -> None:
    state, _ = apply(change("P-MUM", True, 1), change("P-OLD", True, 2))
    renamed, edges = apply(HouseholdRename(UPRN, "P-OLD", "P-NEW"), state=state)
    assert present(renamed) == ("P-MUM", "P-NEW")
    assert Member("P-NEW", True, rank(2)) in renamed.members
    # Every edge to the old id ends, and the survivor is linked with those present.
    got = {(e.person_id, e.edge.other_id, e.edge.active) for e in edges}
    assert got == {
        ("P-MUM", "P-OLD", False),
        ("P-MUM", "P-NEW", True),
        ("P-NEW", "P-MUM", True),
        ("P-NEW", "P-OLD", False),
    }
    assert all(e.edge.via == f"household:{UPRN}" for e in edges)


def test_a_rename_keeps_the_survivors_newer_membership() -> None:
    state, _ = apply(change("P-OLD", True, 1), change("P-NEW", False, 4))
    renamed, _ = apply(HouseholdRename(UPRN, "P-OLD", "P-NEW"), state=state)
    assert renamed.members == (Member("P-NEW", False, rank(4)),)
    older, _ = apply(change("P-OLD", True, 6), change("P-NEW", False, 4))
    renamed, _ = apply(HouseholdRename(UPRN, "P-OLD", "P-NEW"), state=older)
    assert renamed.members == (Member("P-NEW", True, rank(6)),)


def test_a_rename_of_a_stranger_changes_nothing() -> None:
    state, _ = apply(change("P-MUM", True, 1))
    renamed, edges = apply(HouseholdRename(UPRN, "P-GHOST", "P-NEW"), state=state)
    assert renamed == state
    assert edges == []


def test_an_edge_update_is_addressed_to_its_owner() -> None:
    _, edges = apply(change("P-MUM", True, 1), change("P-KID", True, 2))
    edge = Edge("P-KID", Link.HOUSEHOLD_MEMBER, True, edge_stamp(2), VIA)
    assert EdgeUpdate("P-MUM", edge) in edges
