"""The hub's ordered step: one message of the identity topic, everything that follows from it.

Who is told of an event must be a function of the event and of the facts the hub recorded
*before it* -- never of when a worker happened to process it. So the whole decision is made
in one place, in one order: the single partition of ``hub.identity`` gives every event its
position, and this step resolves the event's persons, applies its facts to every person and
household it touches, fans it out to linked persons and routes it, before the next event is
looked at. No fact can overtake another on a different partition, because there is none.

The step is pure: it reads and writes the mappings of a :class:`World` (Faust tables behind
an :class:`Overlay` in the worker, dicts in tests) and returns what to send. Inside it, the
same per-person and per-household functions as before run over an in-memory queue; state
messages (edges, households, merges, hand-overs) are drained before each routing message,
so every decision sees every fact that came before it, including the event's own.

Replays are made harmless by :class:`Journal` (see :mod:`involvement_hub.streaming.app`):
the step's writes and outputs are recorded before they are applied, in the same changelog,
so a step is either wholly applied or redone from its record, never recomputed against
state that already holds later facts.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .alerts import Alert, compose
from .audit import DisclosureRecord
from .family import PersonState
from .household import HouseholdState, on_household_message
from .identity import InvalidIdentifier
from .messages import (
    CatchUp,
    FanOut,
    Forwarded,
    HouseholdMessage,
    IdentityMessage,
    PersonEvent,
    PersonMessage,
    StewardDecision,
    ToResolve,
    Watermark,
)
from .person_stage import Context, on_person_message
from .resolver import IdentityLogRecord, ResolverTables, on_identity_message
from .routing import Decision

V = TypeVar("V")
_DELETED: Any = object()


class Overlay(MutableMapping[str, V], Generic[V]):
    """A mapping whose writes are kept aside until the step's end: reads see them first."""

    def __init__(self, base: Mapping[str, V], *, immutable: bool = False) -> None:
        self.base = base
        self.changes: dict[str, V] = {}
        # Values that cannot change in place (frozen records) are read from the base once:
        # decoding them is most of what reading costs.
        self._read: dict[str, V] | None = {} if immutable else None

    def __getitem__(self, key: str) -> V:
        value = self.changes.get(key)
        if value is _DELETED:
            raise KeyError(key)
        if value is not None or key in self.changes:
            return value  # type: ignore[return-value]
        if self._read is None:
            return self.base[key]
        if key not in self._read:
            self._read[key] = self.base[key]
        return self._read[key]

    def __contains__(self, key: object) -> bool:
        if key in self.changes:
            return self.changes[key] is not _DELETED
        return key in self.base

    def get(self, key: str, default: Any = None) -> Any:
        if key in self.changes:
            value = self.changes[key]
            return default if value is _DELETED else value
        return self.base.get(key, default)

    def __setitem__(self, key: str, value: V) -> None:
        self.changes[key] = value

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self.changes[key] = _DELETED

    def __iter__(self) -> Iterator[str]:
        for key in self.base:
            if key not in self.changes:
                yield key
        for key, value in self.changes.items():
            if value is not _DELETED:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def writes(self) -> Iterator[tuple[str, V | None]]:
        """What the step changed: ``(key, value)``, value None for a deletion."""
        for key, value in self.changes.items():
            yield key, (None if value is _DELETED else value)


@dataclass
class World:
    """Everything the ordered step reads and writes."""

    identity: ResolverTables
    persons: MutableMapping[str, PersonState]
    households: MutableMapping[str, HouseholdState]
    # ingest partition -> the highest offset of it already taken in: the ingest stage is
    # at-least-once, and a record it forwarded twice must count once, at its first place.
    sources: MutableMapping[str, int]
    # The reorder buffer (see :func:`release`): per ingest partition, how far its records
    # are known (ISO time), its queue's [head, next] sequence numbers, and the records
    # waiting, by "<partition>/<sequence>".
    frontiers: MutableMapping[str, str]
    queues: MutableMapping[str, list[int]]
    waiting: MutableMapping[str, ToResolve]


@dataclass(frozen=True, slots=True)
class Settings:
    """What the step needs besides state: policy, rules, retention and the pseudonym key."""

    context: Context  # its ``now`` is replaced by each message's own time
    secret: bytes
    # Every ingest partition ("<topic>/<partition>"): records that name one are taken in the
    # order they reached Kafka across all of them. Empty: in the order they arrive here.
    ingest_partitions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Outputs:
    """What one step sends: alerts, disclosure records and identity log records."""

    alerts: tuple[Alert, ...] = ()
    audit: tuple[DisclosureRecord, ...] = ()
    identity_log: tuple[IdentityLogRecord, ...] = ()
    # More waiting records could go already: the stage asks itself to go on (a watermark
    # for no partition), so a long backlog is decided RELEASE_AT_MOST records a step.
    more: bool = False


@dataclass
class StepResult:
    outputs: Outputs
    decisions: list[Decision] = field(default_factory=list)
    rejected: list[InvalidIdentifier] = field(default_factory=list)


def message_time(message: ToResolve | StewardDecision) -> dt.datetime:
    """The hub's time for a message: when the agency's record reached Kafka, or the
    steward decided. Never the clock of the worker processing it, so a replay next week
    routes with the same grace periods and retention as the first pass."""
    if isinstance(message, StewardDecision):
        return message.decided_at
    return message.ingested_at


def step(message: IdentityMessage, world: World, settings: Settings) -> StepResult:
    """Take one message of the identity topic in; decide every record it lets go.

    A record from an ingest partition waits in the reorder buffer until every ingest
    partition is known past its time; a watermark moves a partition's frontier. Either may
    release records, in the order they reached Kafka (time, partition, offset), and each is
    decided in turn. A steward decision, or a record that names no partition, is decided at
    once.
    """
    result = StepResult(Outputs())
    released: list[ToResolve | StewardDecision]
    if isinstance(message, Watermark):
        for partition in message.partitions:
            _advance(world, partition, message.through)
        released = list(release(world, settings))
    elif isinstance(message, ToResolve | Forwarded):
        records = message.records if isinstance(message, Forwarded) else (message,)
        released = []
        waiting = False
        for record in records:
            if _seen_before(record, world.sources):
                continue
            if record.source is None or record.source[0] not in settings.ingest_partitions:
                released.append(record)  # not a partition the order covers: as it comes
            else:
                _enqueue(world, record)
                waiting = True
        if waiting:
            released.extend(release(world, settings))
    else:
        released = [message]
    alerts: list[Alert] = []
    audit: list[DisclosureRecord] = []
    log: list[IdentityLogRecord] = []
    for chosen in released:
        decided = decide(chosen, world, settings)
        alerts.extend(decided.outputs.alerts)
        audit.extend(decided.outputs.audit)
        log.extend(decided.outputs.identity_log)
        result.decisions.extend(decided.decisions)
        result.rejected.extend(decided.rejected)
    more = bool(release(world, settings, peek=True)) if released else False
    result.outputs = Outputs(tuple(alerts), tuple(audit), tuple(log), more)
    return result


def decide(message: ToResolve | StewardDecision, world: World, settings: Settings) -> StepResult:
    """Resolve, apply, fan out and route one record; the world's mappings are updated."""
    now = message_time(message)
    ctx = Context(settings.context.policy, settings.context.rules, settings.context.retention, now)
    resolved = on_identity_message(message, world.identity, settings.secret, now)
    alerts: list[Alert] = []
    audit: list[DisclosureRecord] = []
    result = StepResult(Outputs(), rejected=list(resolved.rejected))
    state_queue: deque[tuple[str, Any]] = deque()
    routing_queue: deque[tuple[str, PersonMessage]] = deque()

    def enqueue_person(key: str, forwarded: PersonMessage) -> None:
        if isinstance(forwarded, PersonEvent | FanOut | CatchUp):
            routing_queue.append((key, forwarded))
        else:
            state_queue.append(("person", (key, forwarded)))

    def person(key: str, forwarded: PersonMessage) -> None:
        current = world.persons.get(key)
        outcome = on_person_message(forwarded, current, ctx)
        if outcome.state is None:
            world.persons.pop(key, None)
        elif outcome.state != current and (current is not None or worth_keeping(outcome.state)):
            world.persons[key] = outcome.state
        result.decisions.extend(outcome.decisions)
        alerts.extend(outcome.alerts)
        audit.extend(outcome.audit)
        for onward_key, onward in outcome.forward:
            enqueue_person(onward_key, onward)
        for uprn, household in outcome.households:
            state_queue.append(("household", (uprn, household)))

    def household(uprn: str, change: HouseholdMessage) -> None:
        updated, edges = on_household_message(change, world.households.get(uprn))
        if updated != world.households.get(uprn):
            world.households[uprn] = updated
        for edge in edges:
            enqueue_person(edge.person_id, edge)

    for key, forwarded in resolved.forward:
        enqueue_person(key, forwarded)
    while state_queue or routing_queue:
        # Every fact before a decision: state messages first, then one routing message.
        while state_queue:
            kind, (key, queued) = state_queue.popleft()
            if kind == "person":
                person(key, queued)
            else:
                household(key, queued)
        if routing_queue:
            person(*routing_queue.popleft())
    composed, recorded = compose(alerts, audit)
    result.outputs = Outputs(composed, recorded, tuple(resolved.log))
    return result


# -- the reorder buffer: records in the order they reached Kafka ------------------------


def _order_key(record: ToResolve) -> tuple[str, str, int]:
    assert record.source is not None
    return (_iso(record.ingested_at), record.source[0], record.source[1])


def _iso(at: dt.datetime) -> str:
    # Fixed width, UTC: ISO strings compare as the times they name.
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _advance(world: World, partition: str, through: dt.datetime) -> None:
    known = world.frontiers.get(partition)
    if known is None or _iso(through) > known:
        world.frontiers[partition] = _iso(through)


def _enqueue(world: World, record: ToResolve) -> None:
    assert record.source is not None
    partition = record.source[0]
    head, after = world.queues.get(partition, [0, 0])
    world.waiting[f"{partition}/{after}"] = record
    world.queues[partition] = [head, after + 1]
    # Records of one partition arrive in offset order: none earlier than this one is left.
    _advance(world, partition, record.ingested_at)


# A step records every value it writes and everything it sends in one journal entry (one
# Kafka message, at most 1 MiB): after an outage thousands of records may be waiting, and
# releasing them all in one step would make an entry no producer takes.
RELEASE_AT_MOST = 16


def release(world: World, settings: Settings, *, peek: bool = False) -> list[ToResolve]:
    """The waiting records every partition is known past, in the order they reached Kafka.

    A partition's frontier is the time of the last record taken in from it, or of its last
    watermark, whichever is later. A record is let go once its time is before every
    partition's frontier: no record still to come can then be earlier than it.
    """
    frontiers = [world.frontiers.get(p) for p in settings.ingest_partitions]
    if not frontiers or any(f is None for f in frontiers):
        return []
    horizon = min(f for f in frontiers if f is not None)

    def head_of(partition: str) -> tuple[tuple[str, str, int], ToResolve] | None:
        head, after = world.queues.get(partition, (0, 0))
        if head >= after:
            return None
        record = world.waiting[f"{partition}/{head}"]
        return _order_key(record), record

    # Each partition's first waiting record, read once: a long backlog is let go a record
    # at a time, and reading every partition's head again for each would cost the most.
    heads = {p: h for p in settings.ingest_partitions if (h := head_of(p)) is not None}
    out: list[ToResolve] = []
    while len(out) < (1 if peek else RELEASE_AT_MOST):
        eligible = [(key, p) for p, (key, _) in heads.items() if key[0] < horizon]
        if not eligible:
            return out
        _, partition = min(eligible)
        record = heads[partition][1]
        if peek:
            return [record]
        head, after = world.queues[partition]
        del world.waiting[f"{partition}/{head}"]
        world.queues[partition] = [head + 1, after]
        out.append(record)
        following = head_of(partition)
        if following is None:
            del heads[partition]
        else:
            heads[partition] = following
    return out


def waiting_count(queues: Mapping[str, list[int]], partitions: Sequence[str]) -> int:
    """How many records wait in the reorder buffer."""
    total = 0
    for partition in partitions:
        head, after = queues.get(partition, (0, 0))
        total += after - head
    return total


def _seen_before(message: ToResolve, sources: MutableMapping[str, int]) -> bool:
    if message.source is None:
        return False
    partition, offset = message.source
    last = sources.get(partition)
    if last is not None and offset <= last:
        return True
    sources[partition] = offset
    return False


def worth_keeping(state: PersonState) -> bool:
    """A person first seen in a message that left nothing to remember is not stored."""
    return bool(
        state.team.members
        or state.edges
        or state.household
        or state.subscriptions
        or state.merged_into
        or state.recent
    )


# -- the journal: a step is applied whole, or redone from its record --------------------

APPLIED = "journal/applied"
# Journal entries older than this many positions are deleted. Faust commits offsets every
# few seconds, after flushing: a replay never starts further back than that, so only the
# newest few hundred entries can ever be read again. The margin is for slow commits.
JOURNAL_KEEP = 10_000


def journal_key(position: int) -> str:
    return f"journal/{position:020d}"


@dataclass(frozen=True, slots=True)
class JournalEntry(Generic[V]):
    """Steps recorded before they are applied: the positions ``position`` to ``last`` of the
    identity topic, the values they wrote (None deletes) and what they send."""

    position: int
    writes: tuple[tuple[str, V | None], ...]
    outputs: Outputs
    last: int = -1  # -1: the entry is one position, ``position``

    @property
    def through(self) -> int:
        return self.position if self.last < 0 else self.last


@dataclass(frozen=True, slots=True)
class Handled:
    """What :func:`handle` did with a position, and the outputs to (re-)send."""

    outcome: str  # "computed", "redone", "resent", "skipped"
    outputs: Outputs


def handle_batch(
    items: Sequence[tuple[int, Any]],
    store: MutableMapping[str, Any],
    compute: Callable[[Sequence[tuple[int, Any]]], tuple[JournalEntry[Any], Any]],
    *,
    decode: Any = lambda raw: raw,
    keep: int = JOURNAL_KEEP,
) -> list[Handled]:
    """Apply the steps at ``items``' positions (ascending) to ``store`` exactly once each.

    ``store`` is one flat mapping -- one changelog, so its writes reach Kafka in the order
    they are made: a journal entry first, then its steps' writes, then the ``applied`` mark
    (the last position it covers). An entry covers a run of consecutive positions, so a
    batch costs three writes besides its state, not three per position. After a crash the
    changelog holds a prefix of that sequence, and a replay (Kafka is at-least-once, and
    may group the positions differently) finds, for each position, one of:

    - the mark at or past it, and an entry starting there: the steps are applied; their
      outputs are sent again (they may not have reached Kafka);
    - the mark at or past it, no entry starting there: the position was inside an entry
      handled just before it (whose outputs were sent with it), or inside one committed
      before (offsets are committed between batches, after a flush), or its entry is no
      longer kept: nothing is done;
    - an entry starting there, without the mark: some writes may be missing; all are made
      again from the entry (values, not increments, so this is safe), then the mark;
    - neither: the steps never started; ``compute(rest)`` -- reading the store as it is,
      which holds exactly the steps before -- returns the entry for a prefix of ``rest``
      (at least its first item) and its stored form, to record and apply.

    No step is ever computed against state that already holds later facts.
    """
    results: list[Handled] = []
    i = 0
    while i < len(items):
        position = items[i][0]
        applied = store.get(APPLIED)
        key = journal_key(position)
        raw = store.get(key)
        if applied is not None and int(applied) >= position:
            if raw is None:
                results.append(Handled("skipped", Outputs()))
                i += 1
                continue
            entry: JournalEntry[Any] = decode(raw)
            outcome = "resent"
        else:
            if raw is not None:
                entry = decode(raw)
                outcome = "redone"
            else:
                entry, stored = compute(items[i:])
                store[key] = stored
                outcome = "computed"
            for write_key, value in entry.writes:
                if value is None:
                    store.pop(write_key, None)
                else:
                    store[write_key] = value
            store[APPLIED] = str(entry.through)
            for old in range(entry.position - keep, entry.through - keep + 1):
                store.pop(journal_key(old), None)
        results.append(Handled(outcome, entry.outputs))
        i += 1
    return results


# -- the world as views of one flat store -----------------------------------------------


@dataclass(frozen=True, slots=True)
class Codec:
    """How one kind of value is kept in the flat store (as itself, in tests)."""

    encode: Any = lambda value: value
    decode: Any = lambda raw: raw


class Prefixed(MutableMapping[str, V], Generic[V]):
    """The keys of ``store`` under ``prefix``, values through ``codec``."""

    def __init__(self, store: MutableMapping[str, Any], prefix: str, codec: Codec) -> None:
        self.store = store
        self.prefix = prefix
        self.codec = codec

    def __getitem__(self, key: str) -> V:
        result: V = self.codec.decode(self.store[self.prefix + key])
        return result

    def get(self, key: str, default: Any = None) -> Any:
        raw = self.store.get(self.prefix + key)
        return default if raw is None else self.codec.decode(raw)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (self.prefix + key) in self.store

    def __setitem__(self, key: str, value: V) -> None:
        self.store[self.prefix + key] = self.codec.encode(value)

    def __delitem__(self, key: str) -> None:
        del self.store[self.prefix + key]

    def __iter__(self) -> Iterator[str]:
        n = len(self.prefix)
        return (k[n:] for k in list(self.store) if k.startswith(self.prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)


# The world's parts, by their prefix in the flat store (and their names in ``hub team``).
IDENTITY_PARTS = (
    "identity-person-of",
    "identity-keys-of",
    "identity-profiles",
    "identity-by-birthday",
    "identity-candidates",
    "identity-decided",
    "identity-rejected",
)
PARTS = (*IDENTITY_PARTS, "persons", "households", "sources", "frontiers", "queues", "waiting")
# Parts whose values are frozen records, read once per entry.
IMMUTABLE_PARTS = frozenset({"waiting"})


def part_key(part: str, key: str) -> str:
    return f"{part}/{key}"


# An entry holds at most this many decided records (besides the messages that only wait):
# its outputs and writes must fit one Kafka message. The adapter halves a batch whose entry
# is still too large.
DECIDED_PER_ENTRY = 64


def compute_entries(
    messages: Sequence[tuple[int, IdentityMessage]],
    store: MutableMapping[str, Any],
    codecs: Mapping[str, Codec],
    settings: Settings,
    *,
    decided_at_most: int = DECIDED_PER_ENTRY,
) -> tuple[JournalEntry[Any], list[StepResult]]:
    """Run :func:`step` for a run of consecutive messages, in order, over one set of
    overlays of ``store``: each step sees the writes of the ones before it, and a key
    written several times is recorded once, with its last value.

    Stops after the step that brings the records decided to ``decided_at_most``; the
    entry covers the positions of the steps run (at least one).
    """
    views: dict[str, Overlay[Any]] = {
        part: Overlay(
            Prefixed(store, f"{part}/", codecs.get(part, Codec())),
            immutable=part in IMMUTABLE_PARTS,
        )
        for part in PARTS
    }
    world = World(
        ResolverTables(*(views[part] for part in IDENTITY_PARTS)),
        views["persons"],
        views["households"],
        views["sources"],
        views["frontiers"],
        views["queues"],
        views["waiting"],
    )
    results: list[StepResult] = []
    alerts: list[Alert] = []
    audit: list[DisclosureRecord] = []
    log: list[IdentityLogRecord] = []
    decided = 0
    last = messages[0][0]

    def take(message: IdentityMessage) -> None:
        nonlocal decided
        result = step(message, world, settings)
        results.append(result)
        alerts.extend(result.outputs.alerts)
        audit.extend(result.outputs.audit)
        log.extend(result.outputs.identity_log)
        decided += len(result.decisions) or 1

    for position, message in messages:
        take(message)
        last = position
        if decided >= decided_at_most:
            break
    else:
        # Records the last step could not let go (at most RELEASE_AT_MOST a step) go in
        # further steps of this entry while it has room, instead of a round trip through
        # the identity topic each.
        while results[-1].outputs.more and decided < decided_at_most:
            take(GO_ON)
    more = results[-1].outputs.more or (
        len(results) > 1 and bool(release(world, settings, peek=True))
    )
    writes: list[tuple[str, Any]] = []
    for part, view in views.items():
        codec = codecs.get(part, Codec())
        for key, value in view.writes():
            if value is None and key not in view.base:
                continue  # made and let go within the entry: nothing to record
            writes.append((part_key(part, key), None if value is None else codec.encode(value)))
    outputs = Outputs(tuple(alerts), tuple(audit), tuple(log), more)
    first = messages[0][0]
    return JournalEntry(first, tuple(writes), outputs, last if last != first else -1), results


def fitting_entry(
    rest: Sequence[tuple[int, IdentityMessage]],
    compute: Callable[
        [Sequence[tuple[int, IdentityMessage]], int], tuple[JournalEntry[Any], list[StepResult]]
    ],
    encode: Callable[[JournalEntry[Any]], Any],
    too_large: type[Exception],
) -> tuple[JournalEntry[Any], list[StepResult], Any]:
    """The entry for a prefix of ``rest`` whose stored form ``encode`` accepts.

    ``compute(messages, decided_at_most)`` runs the steps; ``encode`` raises ``too_large``
    for an entry one Kafka message cannot hold. Each refusal halves both the messages and
    the decisions allowed, down to one message and one step -- which, if still too large,
    raises: that message cannot be recorded, and is the adapter's to quarantine.
    """
    limit, budget = len(rest), DECIDED_PER_ENTRY
    while True:
        entry, results = compute(rest[:limit], budget)
        try:
            return entry, results, encode(entry)
        except too_large:
            consumed = sum(1 for position, _ in rest[:limit] if position <= entry.through)
            if consumed == 1 and budget == 1:
                raise
            limit, budget = max(1, consumed // 2), max(1, budget // 2)


class _NeverTooLarge(Exception):
    """For stores that hold any entry (the in-memory simulation's)."""


def run_batch(
    items: Sequence[tuple[int, IdentityMessage]],
    store: MutableMapping[str, Any],
    codecs: Mapping[str, Codec],
    settings: Settings,
    *,
    encode: Callable[[JournalEntry[Any]], Any] = lambda entry: entry,
    decode: Callable[[Any], JournalEntry[Any]] = lambda raw: raw,
    too_large: type[Exception] = _NeverTooLarge,
    on_entry: Callable[[JournalEntry[Any], list[StepResult]], None] = lambda e, r: None,
) -> list[Handled]:
    """The ordered stage's whole step for a batch of identity messages, as the worker and
    the simulation both run it: :func:`handle_batch` over :func:`compute_entries`, each
    entry cut down by :func:`fitting_entry` until ``encode`` (the journal's stored form)
    accepts it. ``on_entry`` sees each computed entry and its steps' results."""

    def run(
        messages: Sequence[tuple[int, IdentityMessage]], budget: int
    ) -> tuple[JournalEntry[Any], list[StepResult]]:
        return compute_entries(messages, store, codecs, settings, decided_at_most=budget)

    def compute(rest: Sequence[tuple[int, IdentityMessage]]) -> tuple[JournalEntry[Any], Any]:
        entry, results, raw = fitting_entry(rest, run, encode, too_large)
        on_entry(entry, results)
        return entry, raw

    return handle_batch(items, store, compute, decode=decode)


# The watermark the stage sends itself to go on releasing (``Outputs.more``): it names no
# partition, so it moves no frontier; it only gives the stage another step.
GO_ON = Watermark((), dt.datetime(1970, 1, 1, tzinfo=dt.UTC))
