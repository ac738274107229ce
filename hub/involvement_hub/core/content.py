"""What an alert may show at each content level (IG-4): the one table, used when an alert
is built (``core.alerts``), when it is written out (``delivery.message``) and by the tests.

Each level includes the one before it. ``governance/policy.toml`` and ``docs/operations.md``
describe the levels in words; this is what those words mean, field by field.
"""

from __future__ import annotations

from enum import StrEnum

from .policy import ContentLevel


class Shown(StrEnum):
    """A part of an alert."""

    # EMPTY: that one of the recipient's cases has an update, and who to ask
    CASE = "case"  # the recipient's own case reference, and their own person reference
    URGENCY = "urgency"
    WHY = "why"  # why this recipient is told (and, for a copy, whose case it is)
    # REFERENCE: what kind of change, when, from whom, what to do, who else was told, and
    # who works with the child (the team is not a detail of the event: it is what a
    # practitioner needs to act, and sensitive services stay shielded, IG-3)
    WHAT = "what"  # the kind of event
    WHEN = "when"  # when it happened (local time)
    REPORTED_BY = "reported_by"  # the reporting agency, how to reach it, and its reference
    NEXT_STEP = "next_step"  # the policy's suggested next step for the kind
    ALSO_TOLD = "also_told"  # the roles and agencies of the others told of the event
    TEAM = "team"  # who works with the child, and how to reach them
    # SUMMARY: the details of the event (what changed, for an involvement)
    DETAILS = "details"


_EMPTY = frozenset({Shown.CASE, Shown.URGENCY, Shown.WHY})
_REFERENCE = _EMPTY | {
    Shown.WHAT,
    Shown.WHEN,
    Shown.REPORTED_BY,
    Shown.NEXT_STEP,
    Shown.ALSO_TOLD,
    Shown.TEAM,
}
_SUMMARY = _REFERENCE | {Shown.DETAILS}

SHOWN: dict[ContentLevel, frozenset[Shown]] = {
    ContentLevel.EMPTY: _EMPTY,
    ContentLevel.REFERENCE: _REFERENCE,
    ContentLevel.SUMMARY: _SUMMARY,
}


def shows(level: ContentLevel, part: Shown) -> bool:
    return part in SHOWN[level]
