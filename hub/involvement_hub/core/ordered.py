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

from .alerts import Alert
from .audit import DisclosureRecord
from .family import PersonState
from .household import HouseholdState, on_household_message
from .identity import InvalidIdentifier
from .messages import (
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

    def __init__(self, base: Mapping[str, V]) -> None:
        self.base = base
        self.changes: dict[str, V] = {}

    def __getitem__(self, key: str) -> V:
        value = self.changes.get(key)
        if value is _DELETED:
            raise KeyError(key)
        if value is not None or key in self.changes:
            return value  # type: ignore[return-value]
        return self.base[key]

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


Held = tuple[int, ToResolve]  # (position of the identity message that brought it, record)


class Buffer:
    """The reorder buffer: per ingest partition, the records taken in and not yet decided,
    in offset order, each with the position of the identity-topic message that brought it.

    It is kept in memory only, never in the state table: its records are on the identity
    topic already, and the stage acknowledges a message only once every record it brought
    has been decided (:meth:`lowest_position`), so the committed offset never passes a
    waiting record. After a crash or a rebalance the consumer resumes at or before the
    first of them; the replayed messages, whose entries are applied already, fill the
    buffer again (:func:`take_in_again`) before anything new is decided.
    """

    def __init__(self) -> None:
        self.queues: dict[str, deque[Held]] = {}

    def __len__(self) -> int:
        return sum(len(queue) for queue in self.queues.values())

    def lowest_position(self) -> int | None:
        """The first identity-topic position with a record still waiting: the stage may
        acknowledge the positions before it, and no other."""
        heads = [queue[0][0] for queue in self.queues.values() if queue]
        return min(heads) if heads else None

    def view(self) -> BufferView:
        return BufferView(self)

    def prune(self, decided: Callable[[str], int | None]) -> None:
        """Drop the records at each partition's head that ``decided`` (the highest offset
        of the partition decided) says are decided already."""
        for partition, queue in list(self.queues.items()):
            done = decided(partition)
            while queue and done is not None and _offset(queue[0][1]) <= done:
                queue.popleft()
            if not queue:
                del self.queues[partition]


class BufferView:
    """One entry's changes to the buffer, kept aside until the entry is accepted: an entry
    too large to record is computed again with fewer messages, from the same buffer."""

    def __init__(self, buffer: Buffer) -> None:
        self.buffer = buffer
        self.taken: dict[str, int] = {}  # records taken off each partition's head
        self.added: dict[str, list[Held]] = {}

    def __len__(self) -> int:
        return len(self.buffer) - sum(self.taken.values()) + sum(map(len, self.added.values()))

    def head(self, partition: str) -> Held | None:
        index = self.taken.get(partition, 0)
        queue = self.buffer.queues.get(partition)
        kept = len(queue) if queue else 0
        if index < kept:
            assert queue is not None
            return queue[index]
        added = self.added.get(partition, ())
        index -= kept
        return added[index] if index < len(added) else None

    def pop(self, partition: str) -> None:
        self.taken[partition] = self.taken.get(partition, 0) + 1

    def append(self, partition: str, held: Held) -> None:
        self.added.setdefault(partition, []).append(held)

    def last_offset(self, partition: str) -> int | None:
        """The offset of the partition's last waiting record, if any waits."""
        added = self.added.get(partition)
        if added:
            return _offset(added[-1][1])
        queue = self.buffer.queues.get(partition)
        if queue and len(queue) > self.taken.get(partition, 0):
            return _offset(queue[-1][1])
        return None

    def commit(self) -> None:
        """Make the changes the buffer's own."""
        queues = self.buffer.queues
        for partition in set(self.taken) | set(self.added):
            queue = queues.setdefault(partition, deque())
            taken = self.taken.get(partition, 0)
            added = self.added.get(partition, [])
            kept = len(queue)
            for _ in range(min(taken, kept)):
                queue.popleft()
            # Records taken in and decided within the entry never reach the buffer.
            queue.extend(added[max(0, taken - kept) :])
            if not queue:
                del queues[partition]
        self.taken, self.added = {}, {}


def _offset(record: ToResolve) -> int:
    assert record.source is not None
    return record.source[1]


@dataclass
class World:
    """Everything the ordered step reads and writes."""

    identity: ResolverTables
    persons: MutableMapping[str, PersonState]
    households: MutableMapping[str, HouseholdState]
    # ingest partition -> the highest offset of it decided: the ingest stage is
    # at-least-once, and a record it forwarded twice must count once, at its first place.
    sources: MutableMapping[str, int]
    # The reorder buffer (see :func:`release`): per ingest partition, how far its records
    # are known (ISO time), kept in the state; and the records waiting, kept in memory.
    frontiers: MutableMapping[str, str]
    buffer: BufferView


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


def step(
    message: IdentityMessage, world: World, settings: Settings, position: int = -1
) -> StepResult:
    """Take one message of the identity topic (at ``position``) in; decide every record
    it lets go.

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
            if record.source is None or record.source[0] not in settings.ingest_partitions:
                if not _seen_before(record, world.sources):
                    released.append(record)  # not a partition the order covers: as it comes
            elif not _taken_in(world.buffer, world.sources, record):
                _enqueue(world, record, position)
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
        if isinstance(forwarded, PersonEvent | FanOut):
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
    result.outputs = Outputs(tuple(alerts), tuple(audit), tuple(resolved.log))
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


def _enqueue(world: World, record: ToResolve, position: int) -> None:
    assert record.source is not None
    partition = record.source[0]
    world.buffer.append(partition, (position, record))
    # Records of one partition arrive in offset order: none earlier than this one is left.
    _advance(world, partition, record.ingested_at)


def _taken_in(buffer: BufferView, decided: Mapping[str, int], record: ToResolve) -> bool:
    """Whether a record is a copy of one waiting or decided already (the ingest stage is
    at-least-once: it may forward a record twice). Records of one partition are taken in
    in offset order, so one comparison with the last of each suffices."""
    assert record.source is not None
    partition, offset = record.source
    last = buffer.last_offset(partition)
    if last is not None and offset <= last:
        return True
    done = decided.get(partition)
    return done is not None and offset <= done


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
        while (held := world.buffer.head(partition)) is not None:
            record = held[1]
            done = world.sources.get(partition)
            if done is None or _offset(record) > done:
                return _order_key(record), record
            world.buffer.pop(partition)  # decided already: never twice
        return None

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
        world.buffer.pop(partition)
        world.sources[partition] = _offset(record)  # decided: the partition's next may go
        out.append(record)
        following = head_of(partition)
        if following is None:
            del heads[partition]
        else:
            heads[partition] = following
    return out


def _seen_before(message: ToResolve, sources: MutableMapping[str, int]) -> bool:
    """For a record decided as it arrives: whether a copy of it was decided already."""
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
    replayed: Callable[[int, Any], None] = lambda position, item: None,
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

    No step is ever computed against state that already holds later facts. Every position
    not computed is passed to ``replayed`` once its entry is applied.
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
                replayed(*items[i])
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
        if outcome != "computed":
            replayed(*items[i])
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
PARTS = (*IDENTITY_PARTS, "persons", "households", "sources", "frontiers")


def part_key(part: str, key: str) -> str:
    return f"{part}/{key}"


# An entry holds at most this many decided records (besides the messages that only wait):
# its outputs and writes must fit one Kafka message. The adapter halves a batch whose entry
# is still too large.
DECIDED_PER_ENTRY = 64


@dataclass(frozen=True, slots=True)
class Computed:
    """A journal entry computed for a run of messages, the steps' results, and its changes
    to the reorder buffer, to :meth:`~BufferView.commit` once the entry is recorded."""

    entry: JournalEntry[Any]
    results: list[StepResult]
    buffer: BufferView


def compute_entries(
    messages: Sequence[tuple[int, IdentityMessage]],
    store: MutableMapping[str, Any],
    codecs: Mapping[str, Codec],
    settings: Settings,
    buffer: Buffer,
    *,
    decided_at_most: int = DECIDED_PER_ENTRY,
) -> Computed:
    """Run :func:`step` for a run of consecutive messages, in order, over one set of
    overlays of ``store`` and one view of ``buffer``: each step sees the writes of the ones
    before it, and a key written several times is recorded once, with its last value.

    Stops after the step that brings the records decided to ``decided_at_most``; the
    entry covers the positions of the steps run (at least one).
    """
    views: dict[str, Overlay[Any]] = {
        part: Overlay(Prefixed(store, f"{part}/", codecs.get(part, Codec()))) for part in PARTS
    }
    world = World(
        ResolverTables(*(views[part] for part in IDENTITY_PARTS)),
        views["persons"],
        views["households"],
        views["sources"],
        views["frontiers"],
        buffer.view(),
    )
    results: list[StepResult] = []
    alerts: list[Alert] = []
    audit: list[DisclosureRecord] = []
    log: list[IdentityLogRecord] = []
    decided = 0
    last = messages[0][0]

    def take(message: IdentityMessage, position: int) -> None:
        nonlocal decided
        result = step(message, world, settings, position)
        results.append(result)
        alerts.extend(result.outputs.alerts)
        audit.extend(result.outputs.audit)
        log.extend(result.outputs.identity_log)
        decided += len(result.decisions) or 1

    for position, message in messages:
        take(message, position)
        last = position
        if decided >= decided_at_most:
            break
    else:
        # Records the last step could not let go (at most RELEASE_AT_MOST a step) go in
        # further steps of this entry while it has room, instead of a round trip through
        # the identity topic each.
        while results[-1].outputs.more and decided < decided_at_most:
            take(GO_ON, last)
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
    entry = JournalEntry(first, tuple(writes), outputs, last if last != first else -1)
    return Computed(entry, results, world.buffer)


def fitting_entry(
    rest: Sequence[tuple[int, IdentityMessage]],
    compute: Callable[[Sequence[tuple[int, IdentityMessage]], int], Computed],
    encode: Callable[[JournalEntry[Any]], Any],
    too_large: type[Exception],
) -> tuple[Computed, Any]:
    """The entry for a prefix of ``rest`` whose stored form ``encode`` accepts.

    ``compute(messages, decided_at_most)`` runs the steps; ``encode`` raises ``too_large``
    for an entry one Kafka message cannot hold. Each refusal halves both the messages and
    the decisions allowed, down to one message and one step -- which, if still too large,
    raises: that message cannot be recorded, and is the adapter's to quarantine.
    """
    limit, budget = len(rest), DECIDED_PER_ENTRY
    while True:
        computed = compute(rest[:limit], budget)
        try:
            return computed, encode(computed.entry)
        except too_large:
            through = computed.entry.through
            consumed = sum(1 for position, _ in rest[:limit] if position <= through)
            if consumed == 1 and budget == 1:
                raise
            limit, budget = max(1, consumed // 2), max(1, budget // 2)


def take_in_again(
    position: int,
    message: IdentityMessage,
    store: MutableMapping[str, Any],
    codecs: Mapping[str, Codec],
    buffer: Buffer,
    settings: Settings,
) -> None:
    """A message read again after a crash or a rebalance, whose entry is applied already
    (:func:`handle_batch` calls this for every position it does not compute): its records
    not decided yet wait in the buffer again, where they waited before. Records a redone
    entry has just decided leave it."""
    sources: Prefixed[int] = Prefixed(store, "sources/", codecs.get("sources", Codec()))
    if isinstance(message, ToResolve | Forwarded):
        records = message.records if isinstance(message, Forwarded) else (message,)
        view = buffer.view()
        for record in records:
            if (
                record.source is not None
                and record.source[0] in settings.ingest_partitions
                and not _taken_in(view, sources, record)
            ):
                view.append(record.source[0], (position, record))
        view.commit()
    buffer.prune(sources.get)


# The watermark the stage sends itself to go on releasing (``Outputs.more``): it names no
# partition, so it moves no frontier; it only gives the stage another step.
GO_ON = Watermark((), dt.datetime(1970, 1, 1, tzinfo=dt.UTC))
