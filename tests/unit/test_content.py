"""What each content level shows (IG-4): one table, each level including the one before."""

from __future__ import annotations

import itertools

from involvement_hub.core.content import SHOWN, Shown, shows
from involvement_hub.core.policy import ContentLevel


def test_each_level_shows_what_the_one_before_shows_and_more() -> None:
    levels = list(ContentLevel)
    for lower, higher in itertools.pairwise(levels):
        assert SHOWN[lower] < SHOWN[higher], (lower, higher)


def test_the_levels_mean_what_the_policy_file_says() -> None:
    assert SHOWN[ContentLevel.EMPTY] == {Shown.CASE, Shown.URGENCY, Shown.WHY}
    assert SHOWN[ContentLevel.REFERENCE] - SHOWN[ContentLevel.EMPTY] == {
        Shown.WHAT,
        Shown.WHEN,
        Shown.REPORTED_BY,
        Shown.NEXT_STEP,
        Shown.ALSO_TOLD,
        Shown.TEAM,
    }
    assert SHOWN[ContentLevel.SUMMARY] - SHOWN[ContentLevel.REFERENCE] == {Shown.DETAILS}
    assert set().union(*SHOWN.values()) == set(Shown)
    assert not shows(ContentLevel.REFERENCE, Shown.DETAILS)
