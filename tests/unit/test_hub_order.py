"""The hub's order is the order records reached Kafka, not the order a worker read them.

After a restart a worker reads a backlog from many ingest partitions in whatever order
its fetches come back; two records about one child from two agencies can then reach the
ordered stage either way round. The reorder buffer takes each record only once every
ingest partition is known past its time (by a later record, or a watermark), so every
interleaving of the partitions gives the reference's alerts. Synthetic people only.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from involvement_hub.core.messages import Forwarded, ToResolve, Watermark
from involvement_hub.core.model import Event
from involvement_hub.core.ordered import (
    DECIDED_PER_ENTRY,
    RELEASE_AT_MOST,
    Settings,
    compute_entries,
    fitting_entry,
)
from involvement_hub.core.simulation import Simulation
from support.family_story import NOW, context, event, involvement, life, someone, staff

PARTITIONS = ("ingest.sc/0", "ingest.health/0", "ingest.school/0", "ingest.police/0")
T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def family() -> list[tuple[str, Event]]:
    """One child's story as it reached Kafka: (partition, event), a second apart. Two
    agencies start working with the child within seconds: who hears of whom depends on
    which came first."""
    child = someone(71, "Robin", "Marsh", "2018-08-08", home=7, pupil=True)
    sw = staff("SW-71", "Alex Morgan", "social-care")
    hv = staff("HV-71", "Jo Lindqvist", "health", role="health visitor")
    dsl = staff("DSL-71", "Pat Quill", "school", role="designated safeguarding lead")
    return [
        (
            "ingest.health/0",
            event(involvement("health", "HV-71", child, hv, category="HEALTH", at=1)),
        ),
        ("ingest.sc/0", event(involvement("sc", "CIN-71", child, sw, lead=True, at=1))),
        (
            "ingest.school/0",
            event(involvement("school", "P-71", child, dsl, category="EDUCATION", at=1)),
        ),
        ("ingest.police/0", event(life("police", "I-71", child, "DOMESTIC_ABUSE_INCIDENT", at=2))),
        ("ingest.sc/0", event(involvement("sc", "CIN-71", child, sw, change="ENDED", at=3))),
        ("ingest.health/0", event(life("health", "A-71", child, "HOSPITAL_ADMISSION", at=4))),
    ]


RECORDS = family()


def timed() -> list[tuple[str, int, dt.datetime, Event]]:
    """(partition, offset, Kafka time, event), in the order the records reached Kafka."""
    offsets: dict[str, int] = {}
    out = []
    for n, (partition, ev) in enumerate(RECORDS):
        offsets[partition] = offsets.get(partition, -1) + 1
        out.append((partition, offsets[partition], T0 + dt.timedelta(seconds=n), ev))
    return out


def run(arrival: list[int], *, ordered: bool = True) -> Simulation:
    sim = Simulation(context(NOW), ingest_partitions=PARTITIONS if ordered else ())
    records = timed()
    for index in arrival:
        partition, offset, at, ev = records[index]
        sim.publish(ev, at, (partition, offset))
    end = T0 + dt.timedelta(minutes=1)
    for partition in PARTITIONS:  # every partition caught up: the rest may go
        sim.decide(Watermark((partition,), end))
    sim.run()
    return sim


def told(sim: Simulation) -> set[Any]:
    return set(sim.alerts)


def interleavings() -> st.SearchStrategy[list[int]]:
    """Any merge of the partitions' records that keeps each partition's own order."""

    @st.composite
    def merge(draw: st.DrawFn) -> list[int]:
        by_partition: dict[str, list[int]] = {}
        for index, (partition, *_rest) in enumerate(timed()):
            by_partition.setdefault(partition, []).append(index)
        queues = [list(q) for q in by_partition.values()]
        out: list[int] = []
        while any(queues):
            choice = draw(st.sampled_from([q for q in queues if q]))
            out.append(choice.pop(0))
        return out

    return merge()


REFERENCE = told(run(list(range(len(RECORDS)))))


def test_the_story_tells_someone_and_order_matters_without_the_buffer() -> None:
    assert REFERENCE
    swapped = [1, 0, 2, 3, 4, 5]  # social care's start read before health's
    assert told(run(swapped, ordered=False)) != REFERENCE


@settings(max_examples=100, deadline=None, database=None)
@given(arrival=interleavings())
def test_any_interleaving_of_the_partitions_tells_the_same_people(arrival: list[int]) -> None:
    assert told(run(arrival)) == REFERENCE


def test_a_record_waits_until_every_partition_is_known_past_it() -> None:
    sim = Simulation(context(NOW), ingest_partitions=PARTITIONS)
    partition, offset, at, ev = timed()[1]
    sim.publish(ev, at, (partition, offset))
    sim.run()
    assert sim.handled[-1].outputs.alerts == ()
    assert not sim.persons
    for other in PARTITIONS[:-1]:
        sim.decide(Watermark((other,), at + dt.timedelta(seconds=5)))
    sim.run()
    assert not sim.persons  # the police partition is still unknown: the lead must wait
    sim.decide(Watermark((PARTITIONS[-1],), at + dt.timedelta(seconds=5)))
    sim.run()
    assert len(sim.persons) == 1


@settings(max_examples=60, deadline=None, database=None)
@given(arrival=interleavings(), seed=st.integers(0, 2**32))
def test_crashes_while_records_wait_in_the_buffer_change_nothing(
    arrival: list[int], seed: int
) -> None:
    rng = random.Random(seed)
    sim = Simulation(context(NOW), ingest_partitions=PARTITIONS)
    records = timed()
    for index in arrival:
        partition, offset, at, ev = records[index]
        sim.publish(ev, at, (partition, offset))
    for partition in PARTITIONS:
        sim.decide(Watermark((partition,), T0 + dt.timedelta(minutes=1)))
    for _ in range(3):
        sim.run(until=rng.randrange(len(sim.inputs) + 1))
        sim.crash(
            rng.randrange(sim.position + 1),
            rng.randrange(len(sim.store.log) + 1),
            lambda position, index: rng.random() < 0.5,
        )
    sim.run()
    assert told(sim) == REFERENCE


@settings(max_examples=80, deadline=None, database=None)
@given(arrival=interleavings(), seed=st.integers(0, 2**32))
def test_records_forwarded_in_batches_with_crashes_tell_the_same_people(
    arrival: list[int], seed: int
) -> None:
    """The ingest stage forwards its batches as one message each, and a replay may forward
    them again grouped differently; the ordered stage takes batches of those."""
    rng = random.Random(seed)
    sim = Simulation(context(NOW), ingest_partitions=PARTITIONS)
    records = timed()
    pending = [ToResolve(records[i][3], records[i][2], records[i][:2]) for i in arrival]
    while pending:
        size = rng.randint(1, 4)
        sim.decide(Forwarded(tuple(pending[:size])))
        if rng.random() < 0.3:  # forwarded again after an ingest crash, regrouped
            sim.decide(Forwarded(tuple(pending[: rng.randint(1, size)])))
        pending = pending[size:]
    for partition in PARTITIONS:
        sim.decide(Watermark((partition,), T0 + dt.timedelta(minutes=1)))
    for _ in range(3):
        sim.run(until=rng.randrange(len(sim.inputs) + 1), batch=rng.choice((1, 2, 5)))
        sim.crash(
            rng.randrange(sim.position + 1),
            rng.randrange(len(sim.store.log) + 1),
            lambda position, index: rng.random() < 0.5,
        )
    sim.run(batch=rng.choice((1, 3, 64)))
    assert told(sim) == REFERENCE


def test_a_long_backlog_is_decided_a_few_records_a_step_all_in_order() -> None:
    """Thousands of records can wait after an outage; one step decides at most
    RELEASE_AT_MOST of them, one journal entry goes on with further steps up to about
    DECIDED_PER_ENTRY decisions (it must stay one Kafka message), and the stage asks for
    another entry until none is left."""
    sw = staff("SW-80", "Alex Morgan", "social-care")
    hv = staff("HV-80", "Jo Lindqvist", "health", role="health visitor")
    sim = Simulation(context(NOW), ingest_partitions=PARTITIONS)
    count = DECIDED_PER_ENTRY // 2 + 3 * RELEASE_AT_MOST
    for n in range(count):
        child = someone(200 + n, "Sky", f"Testchild{n}", "2019-01-01")
        at = T0 + dt.timedelta(seconds=n)
        sim.publish(
            event(involvement("sc", f"CIN-{n}", child, sw, lead=True, at=1)), at, ("ingest.sc/0", n)
        )
        sim.publish(
            event(involvement("health", f"HV-{n}", child, hv, category="HEALTH", at=1)),
            at,
            ("ingest.health/0", n),
        )
    for partition in PARTITIONS:
        sim.decide(Watermark((partition,), T0 + dt.timedelta(hours=1)))
    sim.run()
    decided = [h for h in sim.handled if h.outputs.alerts]
    assert len(sim.persons) == count
    assert len(sim.alerts) == 2 * count  # each practitioner hears of the other
    assert len(decided) >= 2  # no entry took more than its share...
    # ... give or take the one step that crossed the line.
    assert max(len(h.outputs.alerts) for h in decided) <= DECIDED_PER_ENTRY + 2 * RELEASE_AT_MOST
    assert sum(h.outputs.more for h in sim.handled) >= 1


class _TooLarge(Exception):
    pass


def test_an_entry_too_large_is_halved_until_it_fits_even_when_one_message_releases_a_backlog() -> (
    None
):
    """One watermark can let a long backlog go; its entry goes on releasing up to the
    budget. Too large, the budget is halved with the messages -- halving only the messages
    would compute the same single-message entry for ever."""
    sw = staff("SW-81", "Alex Morgan", "social-care")
    sim = Simulation(context(NOW), ingest_partitions=PARTITIONS)
    for n in range(3 * RELEASE_AT_MOST):
        child = someone(400 + n, "Sky", f"Testchild{n}", "2019-01-01")
        sim.publish(
            event(involvement("sc", f"CIN-{n}", child, sw, lead=True, at=1)),
            T0 + dt.timedelta(seconds=n),
            ("ingest.sc/0", n),
        )
    sim.run()
    assert not sim.alerts  # every record waits: the other partitions are unknown
    settings = Settings(sim.context, sim.secret, PARTITIONS)
    rest = [(len(sim.inputs), Watermark(PARTITIONS, T0 + dt.timedelta(hours=1)))]
    tries: list[tuple[int, int]] = []

    def compute(messages: Any, budget: int) -> Any:
        tries.append((len(messages), budget))
        return compute_entries(messages, sim.store, {}, settings, decided_at_most=budget)

    def persons(entry: Any) -> int:
        return sum(1 for key, _ in entry.writes if key.startswith("persons/"))

    def encode(entry: Any) -> Any:
        if persons(entry) > RELEASE_AT_MOST:  # "too large": more than one step's worth
            raise _TooLarge
        return entry

    entry, _results, _ = fitting_entry(rest, compute, encode, _TooLarge)
    assert 0 < persons(entry) <= RELEASE_AT_MOST
    assert len(tries) > 1
    assert tries[-1][1] < tries[0][1]

    def never(entry: Any) -> Any:
        raise _TooLarge

    with pytest.raises(_TooLarge):
        fitting_entry(rest, compute, never, _TooLarge)
    assert tries[-1] == (1, 1)
