"""The hub's routing in memory: the same ordered step and journal the worker runs, with a
list for the identity topic, a dict for the state table and a list for its changelog.

For tests and for reasoning about a scenario without a broker; not used by the running
hub. :meth:`Simulation.crash` models what a ``kill -9`` leaves behind -- a committed input
position, a prefix of the changelog, any subset of the outputs of uncommitted steps -- so
property tests can check that crashes and replays never change who is told.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from .alerts import Alert
from .audit import DisclosureRecord
from .family import PersonState
from .household import HouseholdState
from .messages import IdentityMessage, ToResolve
from .model import Event
from .ordered import (
    GO_ON,
    IDENTITY_PARTS,
    Codec,
    Handled,
    Outputs,
    Prefixed,
    Settings,
    StepResult,
    run_batch,
)
from .person_stage import Context
from .resolver import IdentityLogRecord, ResolverTables
from .routing import Decision


class Changelog(MutableMapping[str, Any]):
    """A dict that also logs every write, in order, as a changelog topic would."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.log: list[tuple[str, Any]] = []

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.log.append((key, value))

    def __delitem__(self, key: str) -> None:
        del self.data[key]
        self.log.append((key, None))

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def rebuilt_from(self, landed: int) -> None:
        """Forget everything but the first ``landed`` writes: what recovery would read."""
        self.log = self.log[:landed]
        self.data = {}
        for key, value in self.log:
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value


@dataclass
class Simulation:
    """Feed events with :meth:`publish`, then :meth:`run` until every one is handled."""

    context: Context
    secret: bytes = b"simulation-key"
    # The ingest partitions whose records are taken in the order they reached Kafka.
    ingest_partitions: tuple[str, ...] = ()
    store: Changelog = field(default_factory=Changelog)
    inputs: list[IdentityMessage] = field(default_factory=list)  # the identity topic
    position: int = 0  # the next input to handle
    # What each handled position sent, in order (a replay may send a position again).
    sent: list[tuple[int, Outputs]] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    handled: list[Handled] = field(default_factory=list)
    # How many inputs the stage takes at a time (the worker's batches), unless run says.
    batch: int = 1
    # Where each batch's writes start in the changelog, by its first position: offsets are
    # committed only between batches (a batch is acknowledged whole), after a flush.
    _step_starts: dict[int, int] = field(default_factory=dict)

    def publish(
        self,
        event: Event,
        ingested_at: dt.datetime | None = None,
        source: tuple[str, int] | None = None,
    ) -> None:
        self.inputs.append(ToResolve(event, ingested_at or self.context.now, source))

    def decide(self, message: IdentityMessage) -> None:
        self.inputs.append(message)

    def run(self, until: int | None = None, batch: int | None = None) -> None:
        """Handle inputs up to (not including) ``until``, or all of them, ``batch`` (else
        :attr:`batch`) at a time."""
        end = len(self.inputs) if until is None else min(until, len(self.inputs))
        size = batch or self.batch
        settings = Settings(self.context, self.secret, self.ingest_partitions)
        while self.position < end:
            first = self.position
            items = [(p, self.inputs[p]) for p in range(first, min(first + size, end))]
            self._step_starts.setdefault(first, len(self.store.log))

            def seen(_entry: Any, results: list[StepResult]) -> None:
                for result in results:
                    self.decisions.extend(result.decisions)

            handled = run_batch(items, self.store, _CODECS, settings, on_entry=seen)
            for (position, _), outcome in zip(items, handled, strict=True):
                self.handled.append(outcome)
                self.sent.append((position, outcome.outputs))
                if outcome.outputs.more:
                    self.inputs.append(GO_ON)  # as the worker sends it to the identity topic
                    end = len(self.inputs) if until is None else end
            self.position += len(items)

    def crash(self, committed: int, landed: int, keeps: Callable[[int, int], bool]) -> None:
        """A ``kill -9``: the consumer resumes at ``committed``; the changelog keeps its
        first ``landed`` writes (at least all of the committed steps'); of the outputs of
        steps at or after ``committed``, those ``keeps(position, index)`` accepts survive."""
        committed = min(committed, self.position)
        # Offsets are committed between batches only.
        committed = max(p for p in [0, self.position, *self._step_starts] if p <= committed)
        floor = self._step_starts.get(committed, len(self.store.log))
        self.store.rebuilt_from(max(landed, floor))
        self.sent = [
            (p, outputs) if p < committed else (p, _some(outputs, p, keeps))
            for p, outputs in self.sent
        ]
        self._step_starts = {p: i for p, i in self._step_starts.items() if p < committed}
        self.position = committed

    def replay_from_start(self) -> None:
        """Consumer groups reset to the earliest offsets."""
        self.position = 0
        self._step_starts = {}

    # -- what was sent, and the state, for assertions ------------------------------------

    @property
    def alerts(self) -> list[Alert]:
        return [a for _, outputs in self.sent for a in outputs.alerts]

    @property
    def audit(self) -> list[DisclosureRecord]:
        return [r for _, outputs in self.sent for r in outputs.audit]

    @property
    def identity_log(self) -> list[IdentityLogRecord]:
        return [r for _, outputs in self.sent for r in outputs.identity_log]

    @property
    def identity(self) -> ResolverTables:
        return ResolverTables(
            *(Prefixed(self.store, f"{p}/", _CODECS.get(p, Codec())) for p in IDENTITY_PARTS)
        )

    @property
    def persons(self) -> Prefixed[PersonState]:
        return Prefixed(self.store, "persons/", Codec())

    @property
    def households(self) -> Prefixed[HouseholdState]:
        return Prefixed(self.store, "households/", Codec())


# Lists are the only mutable values kept: each reader gets its own copy, as it would from
# bytes, so an update made in place can never slip past the journal.
_LISTS = Codec(encode=list, decode=list)
_CODECS = {
    "identity-keys-of": _LISTS,
    "identity-by-birthday": _LISTS,
    "identity-rejected": _LISTS,
    "queues": _LISTS,
}


def _some(outputs: Outputs, position: int, keeps: Callable[[int, int], bool]) -> Outputs:
    numbered = list(enumerate([*outputs.alerts, *outputs.audit, *outputs.identity_log]))
    kept = {i for i, _ in numbered if keeps(position, i)}
    n_alerts, n_audit = len(outputs.alerts), len(outputs.audit)
    return Outputs(
        tuple(a for i, a in enumerate(outputs.alerts) if i in kept),
        tuple(r for i, r in enumerate(outputs.audit) if i + n_alerts in kept),
        tuple(r for i, r in enumerate(outputs.identity_log) if i + n_alerts + n_audit in kept),
    )
