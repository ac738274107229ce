"""Each person's own view of their family and household (core/family.py): edges, household,
explicit subscriptions, and how two persons' states merge. Pure values, no pipeline."""

from __future__ import annotations

import datetime as dt

import pytest
from involvement_hub.core.family import (
    HOUSEHOLD,
    RELATIONSHIP,
    Edge,
    Household,
    PersonState,
    Stamp,
    inverse,
    merge_states,
    related_link,
    relationship_link,
    rename_other,
    set_edge,
    set_household,
    set_subscription,
)
from involvement_hub.core.model import (
    Envelope,
    RelationshipKind,
    RelationshipToSubject,
    Source,
    SubscriptionChange,
    SubscriptionEvent,
)
from involvement_hub.core.policy import Link
from involvement_hub.core.team import Team, apply_involvement
from support.core_builders import CHILD, NOW, involvement, practitioner

ME = "P-ME"
T = NOW - dt.timedelta(days=3)


def at(minutes: int, key: str = "ev") -> Stamp:
    return (T + dt.timedelta(minutes=minutes), f"agency/{key}-{minutes}")


def edge(other: str, link: Link, active: bool, minutes: int, via: str = RELATIONSHIP) -> Edge:
    return Edge(other, link, active, at(minutes), via)


def me() -> PersonState:
    return PersonState.empty(ME)


# --- links --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("link", "seen_from_the_other_end"),
    [
        (Link.PARENT, Link.CHILD),
        (Link.CHILD, Link.PARENT),
        (Link.CARER, Link.CARED_FOR),
        (Link.CARED_FOR, Link.CARER),
        (Link.SIBLING, Link.SIBLING),
        (Link.PARTNER, Link.PARTNER),
        (Link.HOUSEHOLD_MEMBER, Link.HOUSEHOLD_MEMBER),
    ],
)
def test_inverse_links(link: Link, seen_from_the_other_end: Link) -> None:
    assert inverse(link) is seen_from_the_other_end
    assert inverse(inverse(link)) is link


def test_relationship_kinds_say_what_the_subject_is_to_the_other() -> None:
    assert relationship_link(RelationshipKind.PARENT_OF) is Link.PARENT
    assert relationship_link(RelationshipKind.CARER_OF) is Link.CARER
    assert relationship_link(RelationshipKind.HOUSEHOLD_MEMBER_WITH) is Link.HOUSEHOLD_MEMBER
    assert {relationship_link(k) for k in RelationshipKind} <= set(Link)


def test_related_persons_say_what_they_are_to_the_subject() -> None:
    assert related_link(RelationshipToSubject.PARENT) is Link.PARENT
    assert related_link(RelationshipToSubject.CHILD) is Link.CHILD
    assert related_link(RelationshipToSubject.OTHER) is None


# --- edges --------------------------------------------------------------------------------


def test_an_edge_is_recorded_and_read_as_a_link() -> None:
    state = set_edge(me(), edge("P-CHILD", Link.PARENT, True, 1))
    assert state.links() == {"P-CHILD": frozenset({Link.PARENT})}


def test_a_newer_edge_fact_wins_in_either_order() -> None:
    started = edge("P-CHILD", Link.PARENT, True, 1)
    ended = edge("P-CHILD", Link.PARENT, False, 2)
    for facts in ((started, ended), (ended, started)):
        state = me()
        for fact in facts:
            state = set_edge(state, fact)
        assert state.edges == (ended,)
        assert state.links() == {}


def test_a_replayed_edge_fact_changes_nothing() -> None:
    state = set_edge(me(), edge("P-CHILD", Link.PARENT, True, 1))
    assert set_edge(state, edge("P-CHILD", Link.PARENT, False, 1)) is state


def test_ties_in_time_are_broken_by_the_event_key() -> None:
    a = Edge("P-X", Link.PARTNER, True, (T, "agency/a"), RELATIONSHIP)
    b = Edge("P-X", Link.PARTNER, False, (T, "agency/b"), RELATIONSHIP)
    assert set_edge(set_edge(me(), a), b).edges == (b,)
    assert set_edge(set_edge(me(), b), a).edges == (b,)


def test_links_and_sources_of_a_link_are_kept_apart() -> None:
    state = me()
    for fact in (
        edge("P-X", Link.PARTNER, True, 1),
        edge("P-X", Link.HOUSEHOLD_MEMBER, True, 2, HOUSEHOLD),
        edge("P-X", Link.HOUSEHOLD_MEMBER, False, 3),  # asserted ended; the UPRN still says so
    ):
        state = set_edge(state, fact)
    assert len(state.edges) == 3
    assert state.links() == {"P-X": frozenset({Link.PARTNER, Link.HOUSEHOLD_MEMBER})}


def test_an_edge_to_oneself_is_ignored() -> None:
    assert set_edge(me(), edge(ME, Link.PARENT, True, 1)) == me()


def test_edges_are_kept_in_one_order_whatever_order_they_arrive_in() -> None:
    facts = [edge(f"P-{n}", link, True, n) for n, link in enumerate([Link.CHILD, Link.PARTNER])]
    forwards, backwards = me(), me()
    for fact in facts:
        forwards = set_edge(forwards, fact)
    for fact in reversed(facts):
        backwards = set_edge(backwards, fact)
    assert forwards == backwards


# --- household ----------------------------------------------------------------------------


def test_an_observed_address_fills_an_unknown_household() -> None:
    state, changed = set_household(me(), "999000000001", at(1), observed=True)
    assert state.household == Household("999000000001", at(1), observed=True)
    assert changed == (None, "999000000001")


def test_an_older_observed_address_does_not_move_a_known_household() -> None:
    state, _ = set_household(me(), "999000000001", at(5), observed=True)
    again, changed = set_household(state, "999000000002", at(1), observed=True)
    assert again is state
    assert changed is None


def test_observed_addresses_give_one_household_in_either_order() -> None:
    # Two agencies' records at different UPRNs: the newer observed address wins whatever
    # arrives first (stated beats observed, then newer beats older: a commutative max).
    old = ("999000000001", at(1))
    new = ("999000000002", at(5))
    finals = []
    for first, second in ((old, new), (new, old)):
        state, _ = set_household(me(), *first, observed=True)
        state, _ = set_household(state, *second, observed=True)
        finals.append(state.household)
    assert finals[0] == finals[1] == Household("999000000002", at(5), observed=True)


def test_a_stated_move_wins_over_an_observed_address_in_either_order() -> None:
    seen = ("999000000001", at(5), True)
    moved = ("999000000002", at(1), False)
    for first, second in ((seen, moved), (moved, seen)):
        state, _ = set_household(me(), first[0], first[1], observed=first[2])
        state, _ = set_household(state, second[0], second[1], observed=second[2])
        assert state.household == Household("999000000002", at(1), observed=False)


def test_stated_moves_win_by_time() -> None:
    state, changed = set_household(me(), "999000000001", at(1), observed=False)
    state, changed = set_household(state, "999000000002", at(3), observed=False)
    assert changed == ("999000000001", "999000000002")
    late, changed = set_household(state, "999000000001", at(2), observed=False)
    assert late is state
    assert changed is None
    left, changed = set_household(state, None, at(4), observed=False)
    assert left.household == Household(None, at(4), observed=False)
    assert changed == ("999000000002", None)


def test_a_move_to_the_same_address_changes_no_household() -> None:
    state, _ = set_household(me(), "999000000001", at(1), observed=True)
    again, changed = set_household(state, "999000000001", at(2), observed=False)
    assert again.household == Household("999000000001", at(2), observed=False)
    assert changed is None


# --- explicit subscriptions ---------------------------------------------------------------


def subscription_event(
    minutes: int,
    change: SubscriptionChange = SubscriptionChange.STARTED,
    *,
    agency: str = "oakfield-primary",
    subscription_id: str = "SUB-1",
    kinds: tuple[str, ...] = ("SCHOOL_EXCLUSION",),
) -> SubscriptionEvent:
    when = T + dt.timedelta(minutes=minutes)
    return SubscriptionEvent(
        envelope=Envelope(f"sub-{minutes}", when, when, Source(agency, "mis", "PUP-7"), CHILD),
        subscription_id=subscription_id,
        change=change,
        practitioner=practitioner("DSL-1"),
        kinds=kinds,
        reason="attendance support plan",
    )


def test_a_subscription_is_recorded_with_its_reason_and_kinds() -> None:
    state = set_subscription(me(), subscription_event(1))
    (subscription,) = state.subscriptions
    assert subscription.key == "oakfield-primary/SUB-1"
    assert subscription.recipient_id == "oakfield-primary/DSL-1"
    assert subscription.record_ref == "PUP-7"
    assert subscription.reason == "attendance support plan"
    assert subscription.wants("SCHOOL_EXCLUSION")
    assert not subscription.wants("MISSING_EPISODE")


def test_a_subscription_for_no_kinds_in_particular_wants_every_kind() -> None:
    (subscription,) = set_subscription(me(), subscription_event(1, kinds=())).subscriptions
    assert subscription.wants("MISSING_EPISODE")


def test_subscriptions_are_last_writer_wins() -> None:
    started = subscription_event(1)
    ended = subscription_event(2, SubscriptionChange.ENDED)
    for events in ((started, ended), (ended, started)):
        state = me()
        for event in events:
            state = set_subscription(state, event)
        (subscription,) = state.subscriptions
        assert not subscription.active
        assert not subscription.wants("SCHOOL_EXCLUSION")


def test_subscriptions_of_different_agencies_are_kept_apart() -> None:
    state = set_subscription(me(), subscription_event(1))
    state = set_subscription(state, subscription_event(2, agency="northshire-ews"))
    assert [s.key for s in state.subscriptions] == [
        "northshire-ews/SUB-1",
        "oakfield-primary/SUB-1",
    ]


# --- merges and renames -------------------------------------------------------------------


def test_merging_two_states_unions_team_edges_household_and_subscriptions() -> None:
    team_a = apply_involvement(Team(ME), involvement("INV-A", is_lead=True))
    team_b = apply_involvement(Team("P-OTHER"), involvement("INV-B", agency="oakfield-primary"))
    mine = PersonState(ME, team_a, edges=(edge("P-MUM", Link.CHILD, True, 1),))
    mine = set_subscription(mine, subscription_event(1))
    theirs = PersonState(
        "P-OTHER",
        team_b,
        edges=(edge("P-MUM", Link.CHILD, False, 2), edge("P-SIB", Link.SIBLING, True, 1)),
    )
    theirs, _ = set_household(theirs, "999000000001", at(1), observed=True)
    theirs = set_subscription(theirs, subscription_event(3, agency="northshire-ews"))

    merged = merge_states(mine, theirs)

    assert merged.person_id == ME
    assert {m.involvement_key for m in merged.team.members} == {
        "northshire-social-care/INV-A",
        "oakfield-primary/INV-B",
    }
    assert merged.links() == {"P-SIB": frozenset({Link.SIBLING})}  # the newer PARENT fact ended
    assert merged.household is not None
    assert merged.household.uprn == "999000000001"
    assert [s.key for s in merged.subscriptions] == [
        "northshire-ews/SUB-1",
        "oakfield-primary/SUB-1",
    ]


def test_merging_keeps_the_newer_of_one_subscription() -> None:
    mine = set_subscription(me(), subscription_event(5, SubscriptionChange.ENDED))
    theirs = set_subscription(PersonState.empty("P-OTHER"), subscription_event(1))
    assert not merge_states(mine, theirs).subscriptions[0].active
    assert not merge_states(theirs, mine).subscriptions[0].active


def test_renaming_a_neighbour_repoints_edges() -> None:
    state = me()
    for fact in (
        edge("P-OLD", Link.PARENT, True, 1),
        edge("P-OLD", Link.HOUSEHOLD_MEMBER, True, 1, HOUSEHOLD),
        edge("P-OTHER", Link.SIBLING, True, 1),
    ):
        state = set_edge(state, fact)

    renamed = rename_other(state, "P-OLD", "P-NEW")

    assert renamed.links() == {
        "P-NEW": frozenset({Link.PARENT, Link.HOUSEHOLD_MEMBER}),
        "P-OTHER": frozenset({Link.SIBLING}),
    }
    assert rename_other(renamed, "P-OLD", "P-NEW") is renamed


def test_renaming_onto_an_existing_edge_keeps_the_newer_fact() -> None:
    state = set_edge(me(), edge("P-OLD", Link.PARENT, False, 1))
    state = set_edge(state, edge("P-NEW", Link.PARENT, True, 5))
    assert rename_other(state, "P-OLD", "P-NEW").links() == {"P-NEW": frozenset({Link.PARENT})}
    state = set_edge(me(), edge("P-OLD", Link.PARENT, False, 9))
    state = set_edge(state, edge("P-NEW", Link.PARENT, True, 5))
    assert rename_other(state, "P-OLD", "P-NEW").links() == {}


def test_renaming_oneself_drops_the_edge() -> None:
    # Two persons who were linked are found to be one: no edge to oneself remains.
    state = set_edge(me(), edge("P-OLD", Link.SIBLING, True, 1))
    assert rename_other(state, "P-OLD", ME).edges == ()
