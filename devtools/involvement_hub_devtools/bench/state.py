"""A large state, built straight into the tables' changelogs, for the benchmark's memory and
restart figures.

Routing a million persons' history through a worker would take hours at the hub's
throughput, and it would measure throughput again, not memory or recovery. So this builds
what the tables would hold -- the identity index and each person's team, family edges and
household -- with the core's own functions from the synthetic population's setup records,
and writes it to the changelog topics exactly as Faust would have (same keys, same
partitions). A worker started on them recovers the state as it would after any restart.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from aiokafka import AIOKafkaProducer  # noqa: TID251 - the baselines measure aiokafka itself
from involvement_hub.core.family import (
    RELATIONSHIP,
    Edge,
    PersonState,
    inverse,
    relationship_link,
    set_edge,
)
from involvement_hub.core.identity import resolve, usable_keys
from involvement_hub.core.matching import Profile, merge_profiles, profile_of
from involvement_hub.core.model import InvolvementEvent, PersonRef, RelationshipEvent
from involvement_hub.core.ordered import part_key
from involvement_hub.core.records import event_from_record
from involvement_hub.core.team import apply_involvement
from involvement_hub.kafka import wire
from involvement_hub.kafka.client import client_options
from involvement_hub.kafka.topics import state_changelog
from involvement_hub.settings import Settings
from involvement_hub_producer import SchemaRegistry, decode, encode, from_json

from involvement_hub_devtools.population import Population

Progress = Callable[[str], None]


class _State:
    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.person_of: dict[str, str] = {}
        self.keys_of: dict[str, list[str]] = {}
        self.profiles: dict[str, Profile] = {}
        self.persons: dict[str, PersonState] = {}

    def person(self, ref: PersonRef) -> str:
        keys, _ = usable_keys(ref.identifiers)
        resolution = resolve(keys, self.person_of, self.keys_of, self.secret)
        for key, owner in resolution.assign.items():
            self.person_of[key] = owner
        pid = resolution.person_id
        self.keys_of[pid] = list(resolution.keys)
        for from_id, _ in resolution.merged:
            self.keys_of.pop(from_id, None)
            old = self.persons.pop(from_id, None)
            if old is not None and pid not in self.persons:
                self.persons[pid] = replace(old, person_id=pid)
        self.profiles[pid] = merge_profiles(self.profiles.get(pid, Profile()), profile_of(ref))
        return pid

    def state(self, pid: str) -> PersonState:
        return self.persons.get(pid) or PersonState.empty(pid)


def build(
    population: Population, registry: SchemaRegistry, secret: bytes, progress: Progress
) -> _State:
    state = _State(secret)
    at = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    for number in range(population.families):
        family = population.family(number)
        for record in population.setup_records(family, at):
            body = dict(record)
            name = body.pop("schema")
            schema = registry.current(name)
            decoded = decode(encode(from_json(body, schema.source), schema), registry)
            event = event_from_record(decoded.name, decoded.record)
            subject = state.person(event.envelope.subject)
            current = state.state(subject)
            if isinstance(event, InvolvementEvent):
                current = replace(current, team=apply_involvement(current.team, event))
            elif isinstance(event, RelationshipEvent):
                other = state.person(event.related_person)
                stamp = (event.envelope.occurred_at, event.envelope.key)
                link = relationship_link(event.relationship)
                current = set_edge(current, Edge(other, link, True, stamp, RELATIONSHIP))
                theirs = state.state(other)
                state.persons[other] = set_edge(
                    theirs, Edge(subject, inverse(link), True, stamp, RELATIONSHIP)
                )
            state.persons[subject] = current
        if number and number % 20_000 == 0:
            progress(f"  state for {number} families built ({len(state.keys_of)} persons)")
    return state


def _records(settings: Settings, state: _State) -> Iterator[tuple[str, bytes, bytes, int | None]]:
    """(topic, key, value, partition) as Faust would have written them: every part of the
    ordered stage's state is one table, ``hub-state``, on the identity topic's partition."""
    topic = state_changelog(settings)

    def key(part: str, text: str) -> bytes:
        # Faust's json key serializer, as for a str key
        return json.dumps(part_key(part, text)).encode()

    for identifier, pid in state.person_of.items():
        yield topic, key("identity-person-of", identifier), pid.encode(), 0
    for pid, keys in state.keys_of.items():
        yield topic, key("identity-keys-of", pid), json.dumps(keys).encode(), 0
    for pid, profile in state.profiles.items():
        yield topic, key("identity-profiles", pid), wire.dumps(profile), 0
    for pid, person in state.persons.items():
        yield topic, key("persons", pid), wire.dumps(person), 0


async def write(settings: Settings, state: _State, progress: Progress) -> int:
    producer = AIOKafkaProducer(
        **client_options(settings), linger_ms=20, max_batch_size=1 << 20, acks=1
    )
    await producer.start()
    count = 0
    try:
        pending: list[Any] = []
        for topic, key, value, partition in _records(settings, state):
            pending.append(await producer.send(topic, value=value, key=key, partition=partition))
            count += 1
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
                if count % 200_000 < 20_000:
                    progress(f"  {count} changelog records written")
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return count


def persons(state: _State) -> int:
    return len(state.keys_of)
