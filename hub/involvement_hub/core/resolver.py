"""The identity resolver's step: one message on the ordered identity topic, applied to the
resolver's own tables, and what it sends on.

The resolver is the single writer of the identifier index, so it can be simple and
deterministic (see :mod:`.identity`). Each event's persons are resolved in order: subject
first, then related persons. Merges are sent before the event that caused them, so a
person's partition hands its state over before events under the new id arrive there.
Probable matches are raised as candidates for a data steward and never acted on until a
:class:`StewardDecision` confirms one. Two persons with different NHS numbers are never
proposed. A steward's confirmation is applied as given, even where the two sides have
since learnt conflicting identifiers (``hub identity candidates`` shows that as evidence
against): refusing it would make the final persons depend on the order decisions arrive in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import MutableMapping
from dataclasses import dataclass, field

from .identity import InvalidIdentifier, Resolution, resolve, usable_keys
from .matching import (
    MatchCandidate,
    Profile,
    candidate_id,
    conflicting_identifiers,
    evidence,
    merge_profiles,
    profile_of,
)
from .messages import IdentityMessage, Merge, PersonEvent, PersonMessage, StewardDecision, ToResolve
from .model import LifeEvent, PersonRef, RelationshipEvent

# A date of birth shared by more persons than this is not scanned in full for matches: it
# bounds the work one event can cause (a county holds a few hundred persons per birthday).
MAX_SCAN_PER_BIRTHDAY = 500


@dataclass(frozen=True, slots=True)
class MergeRecord:
    from_id: str
    into_id: str
    cause: str  # "shared_identifier" or "steward_confirmed"
    at: dt.datetime
    candidate_id: str | None = None


@dataclass(frozen=True, slots=True)
class CandidateRecord:
    candidate: MatchCandidate
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    candidate_id: str
    confirm: bool
    steward: str
    reason: str
    at: dt.datetime
    outcome: str  # "merged", "rejected", "unknown_candidate", "already_one_person"


IdentityLogRecord = MergeRecord | CandidateRecord | DecisionRecord


@dataclass
class ResolverTables:
    """The resolver's state. Faust tables in production, dicts in tests."""

    person_of: MutableMapping[str, str]  # identifier key -> person id
    keys_of: MutableMapping[str, list[str]]  # person id -> identifier keys
    profiles: MutableMapping[str, Profile]  # person id -> matching evidence
    by_birthday: MutableMapping[str, list[str]]  # ISO date of birth -> person ids
    candidates: MutableMapping[str, MatchCandidate]  # open candidates by id
    decided: MutableMapping[str, bool]  # candidate id -> confirmed?
    # identifier key -> keys of persons a steward said it is not: a rejection holds for the
    # two persons whatever identifiers they gain later
    rejected: MutableMapping[str, list[str]]


@dataclass
class ResolverStep:
    forward: list[tuple[str, PersonMessage]] = field(default_factory=list)
    log: list[IdentityLogRecord] = field(default_factory=list)
    rejected: list[InvalidIdentifier] = field(default_factory=list)


def on_identity_message(
    message: IdentityMessage, tables: ResolverTables, secret: bytes, now: dt.datetime
) -> ResolverStep:
    step = ResolverStep()
    if isinstance(message, StewardDecision):
        _decide(message, tables, secret, step)
        return step
    assert isinstance(message, ToResolve)
    event = message.event
    subject = _person(event.envelope.subject, tables, secret, now, step)
    related: list[tuple[str, str]] = []
    if isinstance(event, LifeEvent):
        related = [
            (_person(r.person, tables, secret, now, step), r.relationship.value)
            for r in event.related
        ]
    elif isinstance(event, RelationshipEvent):
        related = [
            (_person(event.related_person, tables, secret, now, step), event.relationship.value)
        ]
    # A related person's identifiers may have merged the subject into another person since.
    subject = _current(subject, event.envelope.subject, tables)
    related = [(_current(pid, None, tables), rel) for pid, rel in related]
    step.forward.append((subject, PersonEvent(event, subject, tuple(related), message.ingested_at)))
    return step


def _current(person_id: str, ref: PersonRef | None, tables: ResolverTables) -> str:
    if person_id in tables.keys_of:
        return person_id
    if ref is not None:
        keys, _ = usable_keys(ref.identifiers)
        return tables.person_of.get(keys[0], person_id)
    return person_id


def _person(
    ref: PersonRef, tables: ResolverTables, secret: bytes, now: dt.datetime, step: ResolverStep
) -> str:
    keys, rejected = usable_keys(ref.identifiers)
    step.rejected.extend(rejected)
    resolution = resolve(keys, tables.person_of, tables.keys_of, secret)
    _apply(resolution, tables, step, now, cause="shared_identifier")
    pid = resolution.person_id
    profile = merge_profiles(tables.profiles.get(pid, Profile()), profile_of(ref))
    _store_profile(pid, profile, tables)
    _raise_candidates(pid, profile, tables, step, now)
    return pid


def _apply(
    resolution: Resolution,
    tables: ResolverTables,
    step: ResolverStep,
    now: dt.datetime,
    *,
    cause: str,
    candidate: str | None = None,
) -> None:
    pid = resolution.person_id
    for key, owner in resolution.assign.items():
        tables.person_of[key] = owner
    # Every write is a changelog message: only write what changed.
    if resolution.assign or resolution.merged or pid not in tables.keys_of:
        tables.keys_of[pid] = list(resolution.keys)
    profile = tables.profiles.get(pid, Profile())
    for from_id, into_id in resolution.merged:
        tables.keys_of.pop(from_id, None)
        old = tables.profiles.pop(from_id, None)
        if old is not None:
            profile = merge_profiles(profile, old)
            for birthday in old.dates_of_birth:
                _unindex(birthday, from_id, tables)
        step.forward.append((from_id, Merge(from_id, into_id)))
        step.log.append(MergeRecord(from_id, into_id, cause, now, candidate))
    if resolution.merged:
        _store_profile(pid, profile, tables)


def _store_profile(pid: str, profile: Profile, tables: ResolverTables) -> None:
    known = tables.profiles.get(pid)
    if known == profile:
        return
    tables.profiles[pid] = profile
    for birthday in profile.dates_of_birth:
        people = tables.by_birthday.get(birthday, [])
        if pid not in people:
            tables.by_birthday[birthday] = [*people, pid]


def _unindex(birthday: str, pid: str, tables: ResolverTables) -> None:
    people = tables.by_birthday.get(birthday, [])
    if pid in people:
        tables.by_birthday[birthday] = [p for p in people if p != pid]


def _raise_candidates(
    pid: str, profile: Profile, tables: ResolverTables, step: ResolverStep, now: dt.datetime
) -> None:
    seen: set[str] = set()
    for birthday in profile.dates_of_birth:
        for other in tables.by_birthday.get(birthday, [])[:MAX_SCAN_PER_BIRTHDAY]:
            if other == pid or other in seen:
                continue
            seen.add(other)
            found = evidence(profile, tables.profiles.get(other, Profile()))
            if found is None:
                continue
            keys_a = tuple(tables.keys_of.get(pid, ()))
            keys_b = tuple(tables.keys_of.get(other, ()))
            if not keys_a or not keys_b or conflicting_identifiers(keys_a, keys_b):
                continue
            cid = candidate_id(keys_a, keys_b)
            if (
                cid in tables.candidates
                or cid in tables.decided
                or _rejected(keys_a, keys_b, tables)
            ):
                continue
            candidate = MatchCandidate(cid, pid, other, keys_a, keys_b, found)
            tables.candidates[cid] = candidate
            step.log.append(CandidateRecord(candidate, now))


def _rejected(keys_a: tuple[str, ...], keys_b: tuple[str, ...], tables: ResolverTables) -> bool:
    others = set(keys_b)
    return any(others.intersection(tables.rejected.get(key, ())) for key in keys_a)


def _decide(
    message: StewardDecision, tables: ResolverTables, secret: bytes, step: ResolverStep
) -> None:
    candidate = tables.candidates.get(message.candidate_id)

    def record(outcome: str) -> None:
        step.log.append(
            DecisionRecord(
                message.candidate_id,
                message.confirm,
                message.steward,
                message.reason,
                message.decided_at,
                outcome,
            )
        )

    if candidate is None:
        record("unknown_candidate")
        return
    del tables.candidates[message.candidate_id]
    tables.decided[message.candidate_id] = message.confirm
    if not message.confirm:
        for mine, theirs in (
            (candidate.keys_a, candidate.keys_b),
            (candidate.keys_b, candidate.keys_a),
        ):
            for key in mine:
                known = tables.rejected.get(key, [])
                tables.rejected[key] = sorted({*known, *theirs})
        record("rejected")
        return
    # The two sides may have been merged or renamed since the candidate was raised: link
    # whatever persons now hold their keys.
    keys = {*candidate.keys_a, *candidate.keys_b}
    owners = {tables.person_of[k] for k in keys if k in tables.person_of}
    if len(owners) <= 1:
        record("already_one_person")
        return
    for owner in owners:
        keys.update(tables.keys_of.get(owner, ()))
    resolution = resolve(keys, tables.person_of, tables.keys_of, secret)
    _apply(
        resolution,
        tables,
        step,
        message.decided_at,
        cause="steward_confirmed",
        candidate=candidate.candidate_id,
    )
    record("merged")
