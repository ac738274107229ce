"""The per-person stage: one message, one person's state, and what follows from it.

Runs on the partition of the person the message is keyed by. Pure: the adapter reads the
person's state, calls :func:`on_person_message`, writes back ``state`` and sends the rest:
alerts, disclosure records, messages to other persons' partitions (fan-out, edges,
handovers) and household changes (repartitioned by UPRN).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from . import catch_up
from .alerts import Alert, build_alert
from .audit import DisclosureRecord, disclosure_record
from .family import (
    RELATIONSHIP,
    Edge,
    PersonState,
    Recent,
    Stamp,
    household_rank,
    inverse,
    merge_states,
    related_link,
    relationship_link,
    rename_other,
    set_edge,
    set_household,
    set_subscription,
)
from .messages import (
    CatchUp,
    EdgeUpdate,
    FanOut,
    Handover,
    HouseholdChange,
    HouseholdMessage,
    HouseholdRename,
    Merge,
    PersonEvent,
    PersonMessage,
    RenameNeighbour,
    SetHousehold,
)
from .model import (
    Event,
    InvolvementEvent,
    LifeEvent,
    LifeEventKind,
    RelationshipChange,
    RelationshipEvent,
    RelationshipToSubject,
    SubscriptionEvent,
)
from .policy import CLOSEST_FIRST, Link, Policy
from .routing import Decision, Outcome, route
from .subscriptions import SubscriptionRules
from .team import Freshness, Team, apply_involvement, freshness, prune

# Links through which an event continues one more step, to the linked person's children.
_EXPANSIONS = {Link.PARTNER: Link.PARENTS_PARTNER, Link.CHILD: Link.SIBLING}
# Life events whose related persons end an edge rather than assert one.
_ENDING = {
    LifeEventKind.HOUSEHOLD_MEMBER_LEFT: Link.HOUSEHOLD_MEMBER,
    LifeEventKind.PARENTAL_SEPARATION: Link.PARTNER,
}


@dataclass(frozen=True, slots=True)
class PersonStep:
    """The outcome of one message. ``state`` None means: delete this person's state."""

    state: PersonState | None
    decisions: tuple[Decision, ...] = ()
    alerts: tuple[Alert, ...] = ()
    audit: tuple[DisclosureRecord, ...] = ()
    forward: tuple[tuple[str, PersonMessage], ...] = ()  # (key, message) to hub.person
    households: tuple[tuple[str, HouseholdMessage], ...] = ()  # (UPRN, message)


@dataclass(frozen=True, slots=True)
class Context:
    policy: Policy
    rules: SubscriptionRules
    retention: dt.timedelta
    now: dt.datetime


def on_person_message(
    message: PersonMessage, state: PersonState | None, ctx: Context
) -> PersonStep:
    if state is not None and state.merged_into is not None:
        forward: list[tuple[str, PersonMessage]] = []
        redirected = _redirect(message, state.merged_into)
        if redirected is not None:
            forward.append(redirected)
        if isinstance(message, EdgeUpdate):
            # The sender still points at the old id: tell it the new one.
            sender = message.edge.other_id
            forward.append((sender, RenameNeighbour(sender, state.person_id, state.merged_into)))
        return PersonStep(state=state, forward=tuple(forward))

    if isinstance(message, Merge):
        current = state or PersonState.empty(message.from_id)
        # What remains is a redirect: messages still on their way to the old id follow it.
        redirect = replace(PersonState.empty(message.from_id), merged_into=message.into_id)
        handover = Handover(message.from_id, message.into_id, current)
        return PersonStep(state=redirect, forward=((message.into_id, handover),))

    if isinstance(message, Handover):
        return _absorb(message, state, ctx)
    person_id = message.person_id
    current = state or PersonState.empty(person_id)
    if isinstance(message, RenameNeighbour):
        return PersonStep(state=rename_other(current, message.from_id, message.into_id))
    if isinstance(message, EdgeUpdate):
        linked = set_edge(current, message.edge)
        # A link just formed: this person's recent events may now reach the other's team.
        offered = catch_up.offers(current, linked, ctx.policy, message.edge.version[1])
        return PersonStep(state=linked, forward=tuple(offered))
    if isinstance(message, SetHousehold):
        return _move(current, message)
    current = replace(current, team=prune(current.team, ctx.now, ctx.retention))
    if isinstance(message, FanOut):
        return _fan_out_arrives(message, current, ctx)
    if isinstance(message, CatchUp):
        return _catch_up_arrives(message, current, ctx)
    return _event(message, current, ctx)


def _redirect(message: PersonMessage, into: str) -> tuple[str, PersonMessage] | None:
    """A message for a merged-away person, re-addressed to the person it became."""
    if isinstance(message, Merge):
        return (into, Merge(into, message.into_id)) if into != message.into_id else None
    if isinstance(message, Handover):
        return into, replace(message, into_id=into)
    redirected: PersonMessage = replace(message, person_id=into)
    return into, redirected


def _absorb(message: Handover, state: PersonState | None, ctx: Context) -> PersonStep:
    into = state or PersonState.empty(message.into_id)
    handed = rename_other(message.state, message.from_id, message.into_id)
    handed = replace(
        handed,
        recent=tuple(
            replace(r, about_person_id=message.into_id)
            if r.about_person_id == message.from_id
            else r
            for r in handed.recent
        ),
    )
    merged = rename_other(merge_states(into, handed), message.from_id, message.into_id)
    forward: list[tuple[str, PersonMessage]] = [
        (other, RenameNeighbour(other, message.from_id, message.into_id))
        for other in sorted({e.other_id for e in message.state.edges})
        if other != message.into_id
    ]
    households: list[tuple[str, HouseholdMessage]] = []
    if message.state.household is not None and message.state.household.uprn:
        uprn = message.state.household.uprn
        households.append((uprn, HouseholdRename(uprn, message.from_id, message.into_id)))
    # Each record's team is caught up on the other record's recent events.
    trigger = f"merge/{message.from_id}/{message.into_id}"
    decisions: list[Decision] = []
    alerts: list[Alert] = []
    audit: list[DisclosureRecord] = []
    for told_of, already in ((handed.recent, handed.team), (into.recent, into.team)):
        newly = catch_up.joiners(already, merged.team)
        if told_of and newly:
            d, a, r = _tell(told_of, merged, ctx, newly, trigger)
            decisions += d
            alerts += a
            audit += r
    return PersonStep(
        state=merged,
        decisions=tuple(decisions),
        alerts=tuple(alerts),
        audit=tuple(audit),
        forward=tuple(forward),
        households=tuple(households),
    )


def _move(state: PersonState, message: SetHousehold) -> PersonStep:
    # A leave from U is recorded unless the person is known to live elsewhere: arriving
    # before the join it undoes, it outranks that join when the join comes.
    known = state.household.uprn if state.household is not None else None
    if message.only_from is not None and known not in (None, message.only_from):
        return PersonStep(state=state)
    moved, changed = set_household(state, message.uprn, message.version, observed=message.observed)
    changes = _household_changes(state.person_id, changed, message.version, message.observed)
    return PersonStep(state=moved, households=changes)


def _household_changes(
    person_id: str, changed: tuple[str | None, str | None] | None, version: Stamp, observed: bool
) -> tuple[tuple[str, HouseholdMessage], ...]:
    if changed is None:
        return ()
    old, new = changed
    rank = household_rank(observed, version)
    out: list[tuple[str, HouseholdMessage]] = []
    if old:
        out.append((old, HouseholdChange(old, person_id, False, rank)))
    if new:
        out.append((new, HouseholdChange(new, person_id, True, rank)))
    return tuple(out)


def _event(message: PersonEvent, state: PersonState, ctx: Context) -> PersonStep:
    event = message.event
    person_id = message.person_id
    before = state
    if isinstance(event, SubscriptionEvent):
        return PersonStep(state=set_subscription(state, event))
    if isinstance(event, InvolvementEvent):
        if freshness(state.team, event) is Freshness.STALE:
            # Older than what the team already shows: not news to anyone. (A replay of the
            # same event is routed again; its alert ids are the same, so the outbox keeps
            # it from reaching an inbox twice.)
            return PersonStep(state=state)
        state = replace(state, team=apply_involvement(state.team, event))
    stamp: Stamp = (event.envelope.occurred_at, event.envelope.key)
    state, forward, households = _family_facts(message, state, stamp)
    decisions = _route(event, person_id, person_id, Link.SELF, before, state, ctx)
    forward.extend(_fan_out(event, before, state, ctx, message))
    # Catch-up on late links: new members of the team hear of the child's recent events;
    # persons newly linked to this one, of this person's (this event itself travels above).
    newly = catch_up.joiners(before.team, state.team)
    caught: tuple[tuple[Decision, ...], tuple[Alert, ...], tuple[DisclosureRecord, ...]] = (
        (),
        (),
        (),
    )
    if newly and state.recent:
        caught = _tell(state.recent, state, ctx, newly, event.envelope.key, message.ingested_at)
    forward.extend(catch_up.offers(before, state, ctx.policy, event.envelope.key))
    state = catch_up.remember(state, event, person_id, Link.SELF, ctx.policy, ctx.now)
    step = _step(
        state, event, decisions, ctx, message.ingested_at, forward, households, before.team
    )
    return replace(
        step,
        decisions=step.decisions + caught[0],
        alerts=step.alerts + caught[1],
        audit=step.audit + caught[2],
    )


def _family_facts(
    message: PersonEvent, state: PersonState, stamp: Stamp
) -> tuple[PersonState, list[tuple[str, PersonMessage]], list[tuple[str, HouseholdMessage]]]:
    """Edges and household moves that the event states, on both sides of each link."""
    event = message.event
    forward: list[tuple[str, PersonMessage]] = []
    households: list[tuple[str, HouseholdMessage]] = []

    def link(other_id: str, mine: Link, active: bool) -> None:
        nonlocal state
        state = set_edge(state, Edge(other_id, mine, active, stamp, RELATIONSHIP))
        theirs = Edge(state.person_id, inverse(mine), active, stamp, RELATIONSHIP)
        forward.append((other_id, EdgeUpdate(other_id, theirs)))

    address = event.envelope.subject.address
    if address is not None and address.uprn:
        state, changed = set_household(state, address.uprn, stamp, observed=True)
        households.extend(_household_changes(state.person_id, changed, stamp, True))
    # The household an event speaks of is the one on the event, if it says.
    # The household an event speaks of is the one on the event: not the one the subject
    # happens to be known at when the event is processed, which depends on arrival order.
    home = address.uprn if address is not None and address.uprn else None

    if isinstance(event, RelationshipEvent) and message.related:
        other_id = message.related[0][0]
        link(
            other_id,
            relationship_link(event.relationship),
            event.change is RelationshipChange.STARTED,
        )
    elif isinstance(event, LifeEvent):
        ending = _ENDING.get(event.life_event_kind)
        for other_id, relationship in message.related:
            theirs = related_link(RelationshipToSubject(relationship))
            if theirs is not None and theirs is not ending:
                link(other_id, inverse(theirs), True)
            if ending is not None:
                link(other_id, ending, False)
            if event.life_event_kind is LifeEventKind.HOUSEHOLD_MEMBER_JOINED:
                link(other_id, Link.HOUSEHOLD_MEMBER, True)
                if home:
                    forward.append((other_id, SetHousehold(other_id, home, stamp, False)))
            elif event.life_event_kind is LifeEventKind.HOUSEHOLD_MEMBER_LEFT and home:
                leave = SetHousehold(other_id, None, stamp, False, only_from=home)
                forward.append((other_id, leave))
        if event.life_event_kind is LifeEventKind.ADDRESS_CHANGED and event.new_address is not None:
            state, changed = set_household(state, event.new_address.uprn, stamp, observed=False)
            households.extend(_household_changes(state.person_id, changed, stamp, False))
    return state, forward, households


def _fan_out(
    event: Event, before: PersonState, after: PersonState, ctx: Context, message: PersonEvent
) -> list[tuple[str, PersonMessage]]:
    """One FanOut per linked person the policy lets this kind of event reach."""
    entry = ctx.policy.for_kind(event.kind)
    if entry is None or not entry.fan_out:
        return []
    links: dict[str, set[Link]] = {}
    for state in (before, after):
        for other, kinds in state.links().items():
            links.setdefault(other, set()).update(kinds)
    out: list[tuple[str, PersonMessage]] = []
    for other in sorted(links):
        ordered = sorted(links[other], key=CLOSEST_FIRST.index)
        # The closest link the policy lets this kind travel decides how this person's team
        # is told; separately, any link with a further step the policy wants carries on.
        told = next((link for link in ordered if link in entry.fan_out), None)
        onward = next((link for link in ordered if _EXPANSIONS.get(link) in entry.fan_out), None)
        if told is None and onward is None:
            continue
        expand = _EXPANSIONS[onward] if onward is not None else None
        link = told if told is not None else onward
        assert link is not None
        out.append(
            (
                other,
                FanOut(
                    event,
                    other,
                    after.person_id,
                    link,
                    told is not None,
                    expand,
                    message.ingested_at,
                ),
            )
        )
    return out


def _fan_out_arrives(message: FanOut, state: PersonState, ctx: Context) -> PersonStep:
    decisions: tuple[Decision, ...] = ()
    if message.route:
        decisions = _route(
            message.event, state.person_id, message.about_person_id, message.link, state, state, ctx
        )
    forward: list[tuple[str, PersonMessage]] = []
    if message.expand is not None:
        for child, links in sorted(state.links().items()):
            if child == message.about_person_id or not links & {Link.PARENT, Link.CARER}:
                continue
            onward = FanOut(
                message.event,
                child,
                message.about_person_id,
                message.expand,
                True,
                None,
                message.ingested_at,
            )
            forward.append((child, onward))
    if message.route:
        state = catch_up.remember(
            state, message.event, message.about_person_id, message.link, ctx.policy, ctx.now
        )
    return _step(state, message.event, decisions, ctx, message.ingested_at, forward, [])


def _catch_up_arrives(message: CatchUp, state: PersonState, ctx: Context) -> PersonStep:
    """Recent events about a person newly linked to this one: this team is told of them."""
    trigger = f"link/{message.trigger}/{message.from_id}"
    decisions, alerts, audit = _tell(message.items, state, ctx, None, trigger)
    state = catch_up.remember_all(state, message.items, ctx.policy, ctx.now)
    return PersonStep(state=state, decisions=decisions, alerts=alerts, audit=audit)


def _tell(
    items: tuple[Recent, ...],
    state: PersonState,
    ctx: Context,
    only: frozenset[str] | None,
    trigger: str,
    ingested_at: dt.datetime | None = None,
) -> tuple[tuple[Decision, ...], tuple[Alert, ...], tuple[DisclosureRecord, ...]]:
    return catch_up.tell(
        items,
        state=state,
        policy=ctx.policy,
        rules=ctx.rules,
        now=ctx.now,
        only=only,
        trigger=trigger,
        ingested_at=ingested_at,
    )


def _route(
    event: Event,
    person_id: str,
    about: str,
    link: Link,
    before: PersonState,
    after: PersonState,
    ctx: Context,
) -> tuple[Decision, ...]:
    if isinstance(event, SubscriptionEvent):
        return ()
    return route(
        event,
        person_id=person_id,
        about_person_id=about,
        link=link,
        before=before.team,
        after=after.team,
        policy=ctx.policy,
        rules=ctx.rules,
        now=ctx.now,
        subscriptions=after.subscriptions,
    )


def _step(
    state: PersonState,
    event: Event,
    decisions: tuple[Decision, ...],
    ctx: Context,
    ingested_at: dt.datetime,
    forward: list[tuple[str, PersonMessage]],
    households: list[tuple[str, HouseholdMessage]],
    before: Team | None = None,
) -> PersonStep:
    entry = ctx.policy.for_kind(event.kind)
    alerts = tuple(
        build_alert(
            d,
            event,
            state.team,
            now=ctx.now,
            ingested_at=ingested_at,
            grace=ctx.policy.grace_period,
            before=before,
            next_step=entry.next_step if entry is not None else None,
        )
        for d in decisions
        if d.outcome is Outcome.SEND
    )
    return PersonStep(
        state=state,
        decisions=decisions,
        alerts=alerts,
        audit=tuple(disclosure_record(d, ctx.now) for d in decisions),
        forward=tuple(forward),
        households=tuple(households),
    )
