"""The whole routing pipeline in memory: the same step functions the Faust agents call,
wired with dicts and a message queue instead of tables and topics.

For tests (including property tests that shuffle the order messages are handled in) and
for reasoning about a scenario without a broker. It is not used by the running hub.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .alerts import Alert
from .audit import DisclosureRecord
from .family import PersonState
from .household import HouseholdState, on_household_message
from .messages import HouseholdMessage, IdentityMessage, PersonMessage, ToResolve
from .model import Event
from .person_stage import Context, on_person_message
from .resolver import IdentityLogRecord, ResolverTables, on_identity_message
from .routing import Decision


def _tables() -> ResolverTables:
    return ResolverTables({}, {}, {}, {}, {}, {}, {})


@dataclass
class Simulation:
    """Feed events with :meth:`publish`, then :meth:`run` until every queue is empty.

    With a ``shuffle`` seed, pending messages are taken in random order across keys (but
    in order per key, as on a Kafka partition) to check that results do not depend on how
    partitions interleave.
    """

    context: Context
    secret: bytes = b"simulation-key"
    shuffle: int | None = None
    identity: ResolverTables = field(default_factory=_tables)
    persons: dict[str, PersonState] = field(default_factory=dict)
    households: dict[str, HouseholdState] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    audit: list[DisclosureRecord] = field(default_factory=list)
    identity_log: list[IdentityLogRecord] = field(default_factory=list)
    _identity_queue: deque[IdentityMessage] = field(default_factory=deque)
    _queues: dict[tuple[str, str], deque[Any]] = field(default_factory=dict)

    def publish(self, event: Event, ingested_at: dt.datetime | None = None) -> None:
        at = ingested_at or self.context.now
        self._identity_queue.append(ToResolve(event, at))

    def decide(self, message: IdentityMessage) -> None:
        self._identity_queue.append(message)

    def run(self) -> None:
        rng = random.Random(self.shuffle) if self.shuffle is not None else None
        while self._identity_queue or any(self._queues.values()):
            if self._identity_queue and (
                rng is None or not any(self._queues.values()) or rng.random() < 0.5
            ):
                self._resolve(self._identity_queue.popleft())
                continue
            keys = [k for k, q in self._queues.items() if q]
            key = rng.choice(keys) if rng is not None else keys[0]
            message = self._queues[key].popleft()
            if key[0] == "person":
                self._person(key[1], message)
            else:
                self._household(key[1], message)

    def _enqueue(self, kind: str, key: str, message: Any) -> None:
        self._queues.setdefault((kind, key), deque()).append(message)

    def _resolve(self, message: IdentityMessage) -> None:
        step = on_identity_message(message, self.identity, self.secret, self.context.now)
        self.identity_log.extend(step.log)
        for key, forward in step.forward:
            self._enqueue("person", key, forward)

    def _person(self, person_id: str, message: PersonMessage) -> None:
        step = on_person_message(message, self.persons.get(person_id), self.context)
        if step.state is None:
            self.persons.pop(person_id, None)
        else:
            self.persons[person_id] = step.state
        self.decisions.extend(step.decisions)
        self.alerts.extend(step.alerts)
        self.audit.extend(step.audit)
        for key, forward in step.forward:
            self._enqueue("person", key, forward)
        for uprn, household in step.households:
            self._enqueue("household", uprn, household)

    def _household(self, uprn: str, message: HouseholdMessage) -> None:
        state, edges = on_household_message(message, self.households.get(uprn))
        self.households[uprn] = state
        for edge in edges:
            self._enqueue("person", edge.person_id, edge)
