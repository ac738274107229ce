"""The per-person stage: one message, one person's state, and what follows from it.

Runs on the partition of the person the message is keyed by. Pure: the adapter reads the
person's team, calls :func:`on_person_message`, writes back ``team`` and emits the rest.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .alerts import Alert, build_alert
from .audit import DisclosureRecord, disclosure_record
from .messages import FanOut, Handover, Merge, PersonEvent, PersonMessage
from .model import InvolvementEvent
from .policy import Link, Policy
from .routing import Decision, Outcome, route
from .subscriptions import SubscriptionRules
from .team import Freshness, Team, apply_involvement, freshness, merge_teams, prune


@dataclass(frozen=True, slots=True)
class PersonStep:
    """The outcome of one message. ``team`` None means: delete this person's state."""

    team: Team | None
    decisions: tuple[Decision, ...] = ()
    alerts: tuple[Alert, ...] = ()
    audit: tuple[DisclosureRecord, ...] = ()
    forward: tuple[tuple[str, PersonMessage], ...] = ()  # (key, message) to hub.person


def on_person_message(
    message: PersonMessage,
    team: Team | None,
    *,
    policy: Policy,
    rules: SubscriptionRules,
    retention: dt.timedelta,
    now: dt.datetime,
) -> PersonStep:
    if isinstance(message, Merge):
        current = team or Team(message.from_id)
        handover = Handover(message.from_id, message.into_id, current)
        return PersonStep(team=None, forward=((message.into_id, handover),))
    if isinstance(message, Handover):
        base = team or Team(message.into_id)
        return PersonStep(team=merge_teams(base, message.team))
    person_id = message.person_id
    before = prune(team or Team(person_id), now, retention)
    if isinstance(message, PersonEvent):
        event = message.event
        after = before
        if isinstance(event, InvolvementEvent):
            if freshness(before, event) is Freshness.STALE:
                # Older than what the team already shows: not news to anyone. (A replay of
                # the same event is routed again; its alert ids are the same, so the outbox
                # keeps it from reaching an inbox twice.)
                return PersonStep(team=before)
            after = apply_involvement(before, event)
        about, link = person_id, Link.SELF
    else:
        assert isinstance(message, FanOut)
        event, after, about, link = message.event, before, message.about_person_id, message.link
    decisions = route(
        event,
        person_id=person_id,
        about_person_id=about,
        link=link,
        before=before,
        after=after,
        policy=policy,
        rules=rules,
        now=now,
    )
    alerts = tuple(
        build_alert(d, event, after, now=now, ingested_at=message.ingested_at)
        for d in decisions
        if d.outcome is Outcome.SEND
    )
    audit = tuple(disclosure_record(d, now) for d in decisions)
    return PersonStep(team=after, decisions=decisions, alerts=alerts, audit=audit)
