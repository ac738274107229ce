"""Answers for people, read straight from Kafka: the team around a child, the disclosure
audit, the identity log. Kafka is the hub's only store, so these read the topics and the
tables' changelogs up to their current end; no worker needs to be running.

These print personal data (identifiers, practitioners' contacts) to whoever runs them:
they are for data stewards, information governance officers and on-call engineers, on the
machines that may hold it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from involvement_hub.core.audit import DisclosureRecord
from involvement_hub.core.family import PersonState
from involvement_hub.core.identity import InvalidIdentifier, normalise
from involvement_hub.core.matching import Comparison, Profile, compare
from involvement_hub.core.messages import DeliveryOutcome
from involvement_hub.core.model import Identifier
from involvement_hub.core.ordered import part_key
from involvement_hub.core.resolver import (
    CandidateRecord,
    DecisionRecord,
    IdentityLogRecord,
    MergeRecord,
)
from involvement_hub.errors import QueryError
from involvement_hub.kafka import wire
from involvement_hub.kafka.io import read_all, read_values
from involvement_hub.kafka.topics import TopicNames, state_changelog
from involvement_hub.settings import Settings


async def table_snapshot(settings: Settings, part: str) -> dict[str, bytes]:
    """The latest value of every key of one part of the hub's state (``persons``,
    ``identity-person-of``, ...), from the state table's changelog."""
    return (await table_snapshots(settings, part))[part]


async def table_snapshots(settings: Settings, *parts: str) -> dict[str, dict[str, bytes]]:
    """:func:`table_snapshot` of several parts, reading the changelog once."""
    prefixes = {part: part_key(part, "") for part in parts}
    latest: dict[str, dict[str, bytes]] = {part: {} for part in parts}
    for record in await read_all(settings, state_changelog(settings)):
        if record.key is None:
            continue
        key = json.loads(record.key)
        for part, prefix in prefixes.items():
            if key.startswith(prefix):
                if record.value is None:
                    latest[part].pop(key[len(prefix) :], None)
                else:
                    latest[part][key[len(prefix) :]] = record.value
                break
    return latest


def identifier_key(text: str) -> str:
    """``scheme:value`` from the command line, normalised as the hub links it."""
    scheme, sep, value = text.partition(":")
    if not sep:
        raise QueryError("give the identifier as scheme:value, for example nhs_number:9990000018")
    try:
        return normalise(Identifier(scheme, value)).key
    except InvalidIdentifier as exc:
        raise QueryError(f"not a usable identifier: {exc}") from exc


async def person_for(settings: Settings, identifier: str) -> str:
    key = identifier_key(identifier)
    person_of = await table_snapshot(settings, "identity-person-of")
    if key not in person_of:
        raise QueryError(f"no person is known by {identifier}")
    return person_of[key].decode("utf-8")


@dataclass(frozen=True)
class TeamView:
    person: PersonState
    family: dict[str, PersonState]  # linked persons' states, by person id


async def team_view(settings: Settings, identifier: str) -> TeamView:
    person_id = await person_for(settings, identifier)
    persons = await table_snapshot(settings, "persons")
    if person_id not in persons:
        raise QueryError(
            f"{identifier} is known (person {person_id}) but no service works with them"
        )
    state: PersonState = wire.loads(PersonState, persons[person_id])
    family = {
        other: wire.loads(PersonState, persons[other])
        for other in state.links()
        if other in persons
    }
    return TeamView(state, family)


async def identity_log(settings: Settings) -> list[IdentityLogRecord]:
    topic = TopicNames.from_settings(settings).identity_log
    return [wire.loads(IdentityLogRecord, v) for v in await read_values(settings, topic)]


def former_ids(person_id: str, log: list[IdentityLogRecord]) -> set[str]:
    """Every id a person has had: merges are followed back from the current id."""
    ids = {person_id}
    changed = True
    while changed:
        changed = False
        for record in log:
            if (
                isinstance(record, MergeRecord)
                and record.into_id in ids
                and record.from_id not in ids
            ):
                ids.add(record.from_id)
                changed = True
    return ids


def open_candidates(log: list[IdentityLogRecord]) -> list[CandidateRecord]:
    decided = {
        r.candidate_id
        for r in log
        if isinstance(r, DecisionRecord) and r.outcome != "unknown_candidate"
    }
    seen: set[str] = set()
    found = []
    for record in log:
        if isinstance(record, CandidateRecord):
            cid = record.candidate.candidate_id
            if cid not in decided and cid not in seen:
                seen.add(cid)
                found.append(record)
    return found


@dataclass(frozen=True)
class CandidateView:
    """An open candidate as a data steward weighs it: both sides as they are now (each may
    have gained identifiers and records since it was raised), field by field."""

    record: CandidateRecord
    person_a: str
    person_b: str
    keys_a: tuple[str, ...]
    keys_b: tuple[str, ...]
    comparisons: tuple[Comparison, ...]

    @property
    def agreeing(self) -> int:
        return sum(1 for c in self.comparisons if c.agrees)

    @property
    def conflicting(self) -> int:
        return sum(1 for c in self.comparisons if c.agrees is False)

    @property
    def one_person(self) -> bool:
        """Linked since by a shared identifier: nothing left to decide."""
        return self.person_a == self.person_b


def candidate_views(
    candidates: list[CandidateRecord],
    person_of: Mapping[str, bytes],
    keys_of: Mapping[str, bytes],
    profiles: Mapping[str, bytes],
) -> list[CandidateView]:
    """Each candidate with its two sides' current identifiers and profiles (the state
    parts ``identity-person-of``, ``identity-keys-of``, ``identity-profiles``)."""

    def side(person: str, keys: tuple[str, ...]) -> tuple[str, tuple[str, ...], Profile]:
        raw = next((person_of[k] for k in keys if k in person_of), None)
        now = raw.decode("utf-8") if raw is not None else person
        held = tuple(json.loads(keys_of[now])) if now in keys_of else keys
        profile = wire.loads(Profile, profiles[now]) if now in profiles else Profile()
        return now, held, profile

    views = []
    for record in candidates:
        c = record.candidate
        a, keys_a, profile_a = side(c.person_a, c.keys_a)
        b, keys_b, profile_b = side(c.person_b, c.keys_b)
        comparisons = compare(profile_a, profile_b, keys_a, keys_b)
        views.append(CandidateView(record, a, b, keys_a, keys_b, comparisons))
    return views


@dataclass(frozen=True)
class CandidateFilter:
    since: dt.date | None = None  # raised on or after
    min_agreeing: int = 0  # fields that agree, of date of birth, names and postcode
    person: str | None = None  # only candidates with this person (an id) on one side
    limit: int = 20
    offset: int = 0


def select_candidates(
    views: list[CandidateView], wanted: CandidateFilter
) -> tuple[list[CandidateView], int]:
    """One page of the candidates that pass the filter, oldest first, and how many pass."""
    passing = [
        v
        for v in views
        if (wanted.since is None or v.record.at.date() >= wanted.since)
        and v.agreeing >= wanted.min_agreeing
        and (wanted.person is None or wanted.person in (v.person_a, v.person_b))
    ]
    passing.sort(key=lambda v: v.record.at)
    return passing[wanted.offset : wanted.offset + wanted.limit], len(passing)


async def open_candidate_views(settings: Settings) -> list[CandidateView]:
    parts = await table_snapshots(
        settings, "identity-person-of", "identity-keys-of", "identity-profiles"
    )
    return candidate_views(
        open_candidates(await identity_log(settings)),
        parts["identity-person-of"],
        parts["identity-keys-of"],
        parts["identity-profiles"],
    )


async def disclosures(settings: Settings) -> Iterator[DisclosureRecord]:
    topic = TopicNames.from_settings(settings).audit
    values = await read_values(settings, topic)
    return (wire.loads(DisclosureRecord, v) for v in values)


async def delivery_outcomes(settings: Settings) -> list[DeliveryOutcome]:
    """Everything hub.delivery holds, in the order it was written."""
    topic = TopicNames.from_settings(settings).delivery
    return [wire.loads(DeliveryOutcome, v) for v in await read_values(settings, topic)]


async def delivery_history(settings: Settings, alert_id: str) -> list[DeliveryOutcome]:
    """Everything hub.delivery recorded about an alert (or a digest), oldest first, plus the
    records of any copy or escalation made of it."""
    outcomes = await delivery_outcomes(settings)
    related = {alert_id} | {o.via for o in outcomes if o.alert_id == alert_id and o.via}
    return sorted((o for o in outcomes if o.alert_id in related), key=lambda o: o.at)
