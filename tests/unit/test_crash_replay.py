"""Who is told is a function of the record, not of timing (issue 10, item 1).

A family's story is played through the in-memory pipeline (``core.simulation``: the same
ordered step and journal the worker runs) once without faults, as the reference, and again
with ``kill -9`` crashes injected: the consumer resumes at a committed position, the state
changelog keeps only a prefix of its writes, and any subset of the outputs of uncommitted
steps is lost. The alerts and disclosure records that reach Kafka at least once must be
exactly the reference's -- the same ids with the same content; duplicates are allowed (the
delivery outbox absorbs them). So must a replay from the earliest offsets, and an ingest
stage that forwards a record twice. Synthetic people only.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from involvement_hub.core.model import Event
from involvement_hub.core.simulation import Simulation
from support.family_story import (
    event,
    involvement,
    life,
    relationship,
    simulation,
    someone,
    staff,
    story,
)

FULL: dict[str, Event] = {name: event(r) for name, r in story(addresses=True).items()}


def late_facts() -> dict[str, Event]:
    """Facts an agency records after an incident they bear on: the incident's place in the
    hub's order decides who hears of it, so a replay must not re-route it on them."""
    mum = someone(95, "Kit", "Wren", "1990-04-04")
    child = someone(96, "Sky", "Wren", "2017-07-07")
    sw = staff("SW-96", "Alex Morgan", "social-care")
    hv = staff("HV-96", "Jo Lindqvist", "health", role="health visitor")
    return {
        "child-lead": event(involvement("sc", "CIN-96", child, sw, lead=True, at=1)),
        "mum-incident": event(life("police", "INC-95", mum, "DOMESTIC_ABUSE_INCIDENT", at=5)),
        "mum-parent-of-child": event(relationship("sc", "CIN-96", mum, "PARENT_OF", child, at=2)),
        "child-health": event(
            involvement("health", "HV-96", child, hv, lead=False, category="HEALTH", at=3)
        ),
        "child-lead-ends": event(involvement("sc", "CIN-96", child, sw, change="ENDED", at=6)),
    }


LATE = late_facts()


def told(sim: Simulation) -> dict[str, Any]:
    """Every alert and disclosure record that reached Kafka at least once. (One id can carry
    two contents: a child reached through two links gets two decisions but one alert id,
    and the outbox sends the first to arrive; both must still be the reference's.)"""
    return {"alerts": set(sim.alerts), "audit": set(sim.audit)}


def reference(order: list[str], pool: dict[str, Event] = FULL) -> Simulation:
    sim = simulation()
    for name in order:
        sim.publish(pool[name])
    sim.run()
    return sim


def with_crashes(
    order: list[str], seed: int, crashes: int, pool: dict[str, Event] = FULL
) -> Simulation:
    rng = random.Random(seed)
    sim = simulation()
    for name in order:
        sim.publish(pool[name])
    for _ in range(crashes):
        # Batches of any size, grouped differently on each run: a replay regroups them.
        sim.run(until=rng.randrange(len(order) + 1), batch=rng.choice(BATCHES))
        committed = rng.randrange(sim.position + 1)
        landed = rng.randrange(len(sim.store.log) + 1)
        sim.crash(committed, landed, lambda position, index: rng.random() < 0.5)
    sim.run(batch=rng.choice(BATCHES))
    return sim


BATCHES = (1, 2, 3, 5, 8, 64)


orders = st.permutations(sorted(FULL))


@settings(max_examples=120, deadline=None, database=None)
@given(order=orders, seed=st.integers(0, 2**32), crashes=st.integers(1, 4))
def test_crashes_at_any_step_tell_the_same_people_the_same_things(
    order: list[str], seed: int, crashes: int
) -> None:
    expected = told(reference(order))
    assert expected["alerts"], "the story must tell someone something"
    assert told(with_crashes(order, seed, crashes)) == expected


@settings(max_examples=150, deadline=None, database=None)
@given(order=st.permutations(sorted(LATE)), seed=st.integers(0, 2**32), crashes=st.integers(1, 3))
def test_facts_recorded_after_an_event_never_reach_back_to_it_on_a_replay(
    order: list[str], seed: int, crashes: int
) -> None:
    assert told(with_crashes(order, seed, crashes, LATE)) == told(reference(order, LATE))


def test_an_incident_before_the_link_that_reaches_a_child_is_caught_up_once_after_a_crash() -> None:
    order = ["child-lead", "mum-incident", "mum-parent-of-child", "child-health"]
    expected = told(reference(order, LATE))
    # Not routed when it came (no link reached the child), but told when the link formed.
    assert not any(
        a.kind == "DOMESTIC_ABUSE_INCIDENT" and not a.earlier for a in expected["alerts"]
    )
    assert [e.kind for a in expected["alerts"] for e in a.earlier] == ["DOMESTIC_ABUSE_INCIDENT"]
    sim = simulation()
    for name in order:
        sim.publish(LATE[name])
    sim.run()
    # Killed with everything on the changelog but nothing after the lead committed.
    sim.crash(1, len(sim.store.log), lambda position, index: False)
    sim.run()
    assert told(sim) == expected


def test_a_crash_between_the_writes_of_one_step_redoes_it_from_its_journal() -> None:
    order = sorted(FULL)
    expected = told(reference(order))
    sim = simulation()
    for name in order:
        sim.publish(FULL[name])
    for position in range(len(order)):
        # Handle one step, then lose everything after its journal entry and first write.
        start = len(sim.store.log)
        sim.run(until=position + 1)
        if len(sim.store.log) - start > 2:
            sim.crash(position, start + 2, lambda p, i: False)
            sim.run(until=position + 1)
            assert sim.handled[-1].outcome == "redone"
    sim.run()
    assert told(sim) == expected


@settings(max_examples=60, deadline=None, database=None)
@given(order=orders, batch=st.sampled_from(BATCHES[1:]))
def test_steps_taken_in_batches_tell_what_steps_taken_one_by_one_tell(
    order: list[str], batch: int
) -> None:
    one_by_one = reference(order)
    sim = simulation()
    sim.batch = batch
    for name in order:
        sim.publish(FULL[name])
    sim.run()
    assert sim.alerts == one_by_one.alerts  # the same alerts, in the same order
    assert sim.audit == one_by_one.audit
    assert _same_but_journal(sim, one_by_one)
    # One journal entry, one set of writes and one mark per batch, not per position.
    assert len(sim.store.log) < len(one_by_one.store.log)


def _same_but_journal(a: Simulation, b: Simulation) -> bool:
    def state(sim: Simulation) -> dict[str, Any]:
        return {k: v for k, v in sim.store.data.items() if not k.startswith("journal/")}

    return state(a) == state(b)


def test_a_crash_inside_a_batch_entry_redoes_the_whole_entry_from_its_journal() -> None:
    order = sorted(FULL)
    expected = told(reference(order))
    sim = simulation()
    for name in order:
        sim.publish(FULL[name])
    sim.run(until=3, batch=3)
    entry_at = len(sim.store.log)
    sim.run(until=6, batch=3)  # one entry for positions 3-5
    assert len(sim.store.log) - entry_at > 3
    # Lose everything after the entry and its first write; the consumer resumes at 3.
    sim.crash(3, entry_at + 2, lambda p, i: False)
    sim.run(until=4, batch=1)  # regrouped: position 3 alone
    assert [h.outcome for h in sim.handled[-1:]] == ["redone"]
    sim.run(until=6, batch=1)  # 4 and 5 were inside the redone entry
    assert [h.outcome for h in sim.handled[-2:]] == ["skipped", "skipped"]
    sim.run(batch=2)
    assert told(sim) == expected


@settings(max_examples=40, deadline=None, database=None)
@given(order=orders)
def test_a_replay_from_the_earliest_offsets_tells_nobody_anything_new(order: list[str]) -> None:
    sim = reference(order)
    before = told(sim)
    sent = len(sim.alerts)
    sim.replay_from_start()
    sim.run()
    assert told(sim) == before
    # Past the journal's reach nothing is sent again at all: the steps are known applied.
    assert {h.outcome for h in sim.handled[len(order) :]} <= {"skipped", "resent"}
    assert len(sim.alerts) <= 2 * sent


def test_a_record_the_ingest_stage_forwards_twice_counts_once_at_its_first_place() -> None:
    """Between the two copies the child's lead changes: the copy must not reach the new lead."""
    child = someone(91, "Rowan", "Teal", "2018-03-03")
    first = staff("SW-91", "Alex Morgan", "social-care")
    second = staff("SW-92", "Nico Fairley", "social-care")
    lead = event(involvement("sc", "CIN-91", child, first, lead=True, at=1))
    incident = event(life("police", "INC-91", child, "DOMESTIC_ABUSE_INCIDENT", at=2))
    handover = event(
        involvement("sc", "CIN-91", child, second, involvement_id="sc:CIN-91-2", lead=True, at=3)
    )
    ends = event(involvement("sc", "CIN-91", child, first, change="ENDED", at=4))

    def run(copies: bool) -> dict[str, Any]:
        sim = simulation()
        sim.publish(lead, source=("ingest.sc/0", 0))
        sim.publish(incident, source=("ingest.police/0", 0))
        sim.publish(handover, source=("ingest.sc/0", 1))
        sim.publish(ends, source=("ingest.sc/0", 2))
        if copies:  # the police ingest partition replayed after a crash
            sim.publish(incident, source=("ingest.police/0", 0))
        sim.run()
        return told(sim)

    once = run(copies=False)
    assert {a.recipient_id for a in once["alerts"] if a.kind == "DOMESTIC_ABUSE_INCIDENT"}
    assert run(copies=True) == once
