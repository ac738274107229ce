"""Catch-up on late links: told now of what the hub would have told you, had it known.

Who hears of an event depends on what the hub had recorded when it routed it. An incident
recorded against a parent before the parent-child link was known reaches no child's team;
a lead who opens a case the day after an incident never hears of it. Yet an incident is
often *why* a case is opened. So when a link forms that would have made someone a
recipient, they are told, in one email per recipient and case, of the events of the last
N days (``catch_up_days`` per kind in the policy; 0: never) that the policy would have
sent them. Each event is routed again, against the team as it is now, so every IG rule
applies as at the time of sending; each decision is audited, naming the catch-up email.

Three kinds of link are caught up on:

- **someone joins the team around a child** (an involvement starts: a lead opening a case,
  a practitioner joining): the child's recent events, for the new members only;
- **a family or household link forms** (a relationship, a household membership, a move to
  a known address): each end's recent events about itself reach the other end's team
  through the new link, if the policy lets them travel it and no link let them before;
- **two records of one person are merged**: each record's recent events, for the members
  of the other record's team.

Each person keeps the life events their team was asked about (``PersonState.recent``),
without anything that identifies anyone, for the policy's longest window. The window is
measured back from the step's own time (the append time of the record being processed),
never the clock, so who is caught up depends on what was recorded, not on when it was
processed. Not caught up on: a link two steps away (a parent's partner's children, a
child's siblings through a parent), and an explicit subscription starting.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import replace

from .alerts import Alert, build_alert, catch_up_alert, catch_up_id
from .audit import DisclosureRecord, disclosure_record
from .family import PersonState, Recent
from .messages import CatchUp
from .model import Event, LifeEvent
from .policy import CLOSEST_FIRST, Link, Policy
from .routing import Decision, Outcome, route
from .subscriptions import SubscriptionRules
from .team import Team

# At most this many recent events per person are kept: a person at the centre of many
# events keeps the newest.
MAX_RECENT = 64
WHY = "catch-up: linked to the child after the event was recorded"


def remember(
    state: PersonState,
    event: Event,
    about_person_id: str,
    link: Link,
    policy: Policy,
    now: dt.datetime,
) -> PersonState:
    """``state`` with ``event`` kept for catch-up (a life event whose kind is caught up
    on), and what fell out of the window dropped."""
    if not isinstance(event, LifeEvent) or policy.catch_up(event.kind) <= dt.timedelta(0):
        if state.recent and state.recent[0].occurred_at < now - policy.longest_catch_up:
            return _pruned(state, state.recent, policy, now)
        return state
    kept = Recent.of(event, about_person_id, link)
    recent = (*(r for r in state.recent if r.key != kept.key), kept)
    return _pruned(state, recent, policy, now)


def remember_all(
    state: PersonState, items: Iterable[Recent], policy: Policy, now: dt.datetime
) -> PersonState:
    recent = {r.key: r for r in state.recent}
    for item in items:
        if policy.catch_up(item.kind) > dt.timedelta(0):
            recent[item.key] = item
    return _pruned(state, tuple(recent.values()), policy, now)


def _pruned(
    state: PersonState, recent: tuple[Recent, ...], policy: Policy, now: dt.datetime
) -> PersonState:
    oldest = now - policy.longest_catch_up
    kept = sorted((r for r in recent if r.occurred_at >= oldest), key=lambda r: r.key)
    kept = kept[-MAX_RECENT:]
    if tuple(kept) == state.recent:
        return state
    return replace(state, recent=tuple(kept))


def joiners(before: Team, after: Team) -> frozenset[str]:
    """Recipients who hold a current involvement with the child now and did not before."""
    had = {m.recipient_id for m in before.current()}
    return frozenset(m.recipient_id for m in after.current() if m.recipient_id not in had)


def tell(
    items: Iterable[Recent],
    *,
    state: PersonState,
    policy: Policy,
    rules: SubscriptionRules,
    now: dt.datetime,
    only: frozenset[str] | None,
    trigger: str,
    ingested_at: dt.datetime | None = None,
) -> tuple[tuple[Decision, ...], tuple[Alert, ...], tuple[DisclosureRecord, ...]]:
    """Route ``items`` again for the team of ``state`` (only the recipients in ``only``,
    unless None): one catch-up alert per recipient and case, and every decision audited."""
    decided: list[tuple[Decision, Recent]] = []
    for item in items:
        window = policy.catch_up(item.kind)
        if window <= dt.timedelta(0) or item.occurred_at < now - window:
            continue
        event = item.event()
        for decision in route(
            event,
            person_id=state.person_id,
            about_person_id=item.about_person_id,
            link=item.link,
            before=state.team,
            after=state.team,
            policy=policy,
            rules=rules,
            now=now,
            subscriptions=state.subscriptions,
        ):
            if only is None or decision.recipient.recipient_id in only:
                decided.append((decision, item))
    groups: dict[tuple[str, str], list[Alert]] = {}
    for decision, item in decided:
        if decision.outcome is not Outcome.SEND:
            continue
        entry = policy.for_kind(decision.kind)
        alert = build_alert(
            decision,
            item.event(),
            state.team,
            now=now,
            ingested_at=ingested_at or item.occurred_at,
            grace=policy.grace_period,
            next_step=entry.next_step if entry is not None else None,
        )
        groups.setdefault((alert.recipient_id, alert.case_ref), []).append(alert)
    alerts = []
    for group in groups.values():
        made = catch_up_alert(group, trigger)
        if ingested_at is not None:
            made = replace(made, ingested_at=ingested_at)
        alerts.append(made)
    audit = tuple(
        replace(
            disclosure_record(d, now),
            alert_id=catch_up_id(trigger, d.recipient.recipient_id, d.recipient.record_ref)
            if d.outcome is Outcome.SEND
            else None,
            why=WHY,
        )
        for d, _ in decided
    )
    return tuple(d for d, _ in decided), tuple(alerts), audit


def offers(
    before: PersonState, after: PersonState, policy: Policy, trigger: str
) -> list[tuple[str, CatchUp]]:
    """For each person newly linked to this one: this person's recent events about
    themselves that now reach that person's team, through the closest link the policy
    lets each travel, and reached it through none before."""
    old = before.links()
    out: list[tuple[str, CatchUp]] = []
    own = [r for r in after.recent if r.link is Link.SELF]
    if not own:
        return out
    for other, links in sorted(after.links().items()):
        items = []
        for item in own:
            entry = policy.for_kind(item.kind)
            if entry is None or not entry.fan_out:
                continue
            was = _closest(old.get(other, frozenset()) & entry.fan_out)
            now = _closest(links & entry.fan_out)
            if was is None and now is not None:
                items.append(replace(item, link=now))
        if items:
            out.append((other, CatchUp(other, after.person_id, tuple(items), trigger)))
    return out


def _closest(links: frozenset[Link]) -> Link | None:
    return min(links, key=CLOSEST_FIRST.index) if links else None
