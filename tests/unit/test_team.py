"""The team around the child (core/team.py): last-writer-wins, merges, retention, IG-2/IG-3."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from involvement_hub.core.model import InvolvementChange, InvolvementEvent, ServiceCategory
from involvement_hub.core.team import Team, apply_involvement, merge_teams, prune
from support.core_builders import CHILD_ID, NOW, involvement, team_of

STARTED, UPDATED, ENDED = InvolvementChange
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)


def test_started_adds_a_current_member() -> None:
    event = involvement("INV-1", is_lead=True, practitioner_id="PR-7")
    team = apply_involvement(Team(CHILD_ID), event)
    (member,) = team.members
    assert member.involvement_key == "northshire-social-care/INV-1"
    assert member.recipient_id == "northshire-social-care/PR-7"
    assert member.record_ref == event.envelope.source.record_ref
    assert member.current
    assert team.leads() == (member,)


def test_ended_sets_ended_at_to_when_it_happened() -> None:
    started = involvement("INV-1", at=NOW - 3 * DAY)
    ended = involvement("INV-1", change=ENDED, at=NOW - DAY)
    (member,) = team_of(started, ended).members
    assert member.ended_at == NOW - DAY
    assert not member.current
    assert team_of(started, ended).current() == ()


def test_a_late_older_event_does_not_undo_a_newer_one() -> None:
    started = involvement("INV-1", at=NOW - 3 * DAY)
    ended = involvement("INV-1", change=ENDED, at=NOW - DAY)
    assert team_of(ended, started) == team_of(started, ended)
    (member,) = team_of(ended, started).members
    assert member.ended_at == NOW - DAY


def test_replaying_an_event_leaves_the_team_unchanged() -> None:
    event = involvement("INV-1")
    team = apply_involvement(Team(CHILD_ID), event)
    assert apply_involvement(team, event) is team


def test_an_update_replaces_the_member() -> None:
    started = involvement("INV-1", at=NOW - 2 * DAY)
    promoted = involvement("INV-1", change=UPDATED, is_lead=True, at=NOW - DAY)
    team = team_of(started, promoted)
    assert [m.is_lead for m in team.members] == [True]


def test_at_the_same_instant_ended_wins_over_started() -> None:
    started = involvement("INV-1", at=NOW - DAY)
    ended = involvement("INV-1", change=ENDED, at=NOW - DAY)
    assert not team_of(ended, started).members[0].current
    assert not team_of(started, ended).members[0].current


def test_leads_come_first() -> None:
    team = team_of(
        involvement("INV-A", agency="oakfield-primary"),
        involvement("INV-Z", is_lead=True),
    )
    assert [m.involvement_key for m in team.members] == [
        "northshire-social-care/INV-Z",
        "oakfield-primary/INV-A",
    ]


def test_the_same_involvement_id_at_two_agencies_is_two_members() -> None:
    team = team_of(involvement("INV-1"), involvement("INV-1", agency="oakfield-primary"))
    assert len(team.members) == 2


INVOLVEMENT_IDS = ("INV-1", "INV-2", "INV-3")
event_specs = st.lists(
    st.tuples(
        st.sampled_from(INVOLVEMENT_IDS),
        st.sampled_from(list(InvolvementChange)),
        st.integers(min_value=0, max_value=6),  # hours before NOW: ties are likely
        st.booleans(),
        st.sampled_from([None, True, False]),
    ),
    min_size=1,
    max_size=10,
)


def events_from(
    specs: list[tuple[str, InvolvementChange, int, bool, bool | None]],
) -> list[InvolvementEvent]:
    return [
        involvement(
            inv,
            change=change,
            at=NOW - hours * HOUR,
            is_lead=lead,
            consent=consent,
            event_id=f"ev-{index:03d}",
        )
        for index, (inv, change, hours, lead, consent) in enumerate(specs)
    ]


@settings(max_examples=200, deadline=None)
@given(specs=event_specs, data=st.data())
def test_any_order_of_the_same_events_gives_the_same_team(
    specs: list[tuple[str, InvolvementChange, int, bool, bool | None]], data: st.DataObject
) -> None:
    events = events_from(specs)
    shuffled = data.draw(st.permutations(events))
    assert team_of(*shuffled) == team_of(*events)
    # And a replay of any prefix changes nothing.
    assert team_of(*events, *shuffled[: len(shuffled) // 2]) == team_of(*events)


# --- merge_teams ---------------------------------------------------------------------


def test_merge_teams_unions_involvements_under_the_surviving_id() -> None:
    a = team_of(involvement("INV-1"), person_id="P-INTO")
    b = team_of(involvement("INV-2", agency="oakfield-primary"), person_id="P-FROM")
    merged = merge_teams(a, b)
    assert merged.person_id == "P-INTO"
    assert {m.involvement_key for m in merged.members} == {
        "northshire-social-care/INV-1",
        "oakfield-primary/INV-2",
    }


@pytest.mark.parametrize("newer_in", ["into", "other"])
def test_merge_teams_keeps_the_newer_version_of_a_shared_involvement(newer_in: str) -> None:
    older = team_of(involvement("INV-1", at=NOW - 2 * DAY), person_id="P-X")
    newer = team_of(involvement("INV-1", change=ENDED, at=NOW - DAY), person_id="P-Y")
    into, other = (newer, older) if newer_in == "into" else (older, newer)
    (member,) = merge_teams(into, other).members
    assert member.ended_at == NOW - DAY


def test_merge_teams_gives_the_same_members_as_applying_all_events_to_one_team() -> None:
    events = events_from(
        [
            ("INV-1", STARTED, 5, True, None),
            ("INV-2", STARTED, 4, False, True),
            ("INV-1", ENDED, 2, True, None),
            ("INV-3", UPDATED, 1, False, None),
        ]
    )
    merged = merge_teams(team_of(*events[::2]), team_of(*events[1::2]))
    assert merged == team_of(*events)


# --- prune (IG-6) and may_receive (IG-2) -------------------------------------------------


def test_prune_drops_members_ended_longer_ago_than_retention() -> None:
    retention = 90 * DAY
    team = team_of(
        involvement("INV-OLD", change=ENDED, at=NOW - retention - HOUR),
        involvement("INV-EDGE", change=ENDED, at=NOW - retention),
        involvement("INV-OPEN", at=NOW - 400 * DAY),
    )
    kept = prune(team, NOW, retention)
    assert {m.involvement_key.split("/")[1] for m in kept.members} == {"INV-EDGE", "INV-OPEN"}


def test_prune_returns_the_same_team_when_nothing_expires() -> None:
    team = team_of(involvement("INV-1"))
    assert prune(team, NOW, 90 * DAY) is team


def test_may_receive_honours_the_grace_period() -> None:
    grace = 14 * DAY
    active = team_of(involvement("INV-1")).members[0]
    at_edge = team_of(involvement("INV-1", change=ENDED, at=NOW - grace)).members[0]
    beyond = team_of(involvement("INV-1", change=ENDED, at=NOW - grace - HOUR)).members[0]
    assert active.may_receive(NOW, grace)
    assert at_edge.may_receive(NOW, grace)
    assert not beyond.may_receive(NOW, grace)


# --- shareable (IG-3) --------------------------------------------------------------------

SENSITIVE = (
    ServiceCategory.MENTAL_HEALTH,
    ServiceCategory.SEXUAL_HEALTH,
    ServiceCategory.SUBSTANCE_MISUSE,
    ServiceCategory.DOMESTIC_ABUSE_SUPPORT,
)


@pytest.mark.parametrize("category", SENSITIVE)
@pytest.mark.parametrize(("consent", "shareable"), [(None, False), (False, False), (True, True)])
def test_sensitive_involvements_need_recorded_consent(
    category: ServiceCategory, consent: bool | None, shareable: bool
) -> None:
    member = team_of(involvement("INV-1", category=category, consent=consent)).members[0]
    assert member.shareable is shareable


@pytest.mark.parametrize("category", sorted(set(ServiceCategory) - set(SENSITIVE)))
def test_other_involvements_are_shareable_without_consent(category: ServiceCategory) -> None:
    member = team_of(involvement("INV-1", category=category, consent=None)).members[0]
    assert member.shareable


def test_a_replay_after_retention_does_not_revive_an_ended_involvement() -> None:
    retention = 90 * DAY
    started = involvement("INV-1", at=NOW - 200 * DAY)
    ended = involvement("INV-1", change=ENDED, at=NOW - 100 * DAY)
    pruned = prune(team_of(started, ended), NOW, retention)
    assert apply_involvement(pruned, started).current() == ()
