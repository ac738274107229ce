"""Counting the hub's Kafka messages per input event from topics' end offsets."""

from __future__ import annotations

import pytest
from involvement_hub_devtools.bench.traffic import traffic
from involvement_hub_devtools.processes import cpu_seconds_from_stat

INGEST, IDENTITY, ALERTS = "b.ingest.school", "b.hub.identity", "b.hub.alerts"
STATE = "hub-b-hub-state-changelog"


def test_produced_is_what_each_topic_gained_while_the_worker_ran() -> None:
    at_start = {INGEST: 0, IDENTITY: 0, ALERTS: 0}
    at_worker_start = {INGEST: 100, IDENTITY: 0, ALERTS: 0}
    at_end = {INGEST: 100, IDENTITY: 150, ALERTS: 40, STATE: 600}
    counted = traffic(100, at_start, at_worker_start, at_end, [INGEST, IDENTITY, ALERTS])
    # The agencies' records are input, not the hub's output: nothing produced on ingest.
    assert counted.produced == {ALERTS: 0.4, IDENTITY: 1.5, STATE: 6.0}
    assert counted.consumed == {ALERTS: 0.4, IDENTITY: 1.5, INGEST: 1.0}
    assert counted.operations == pytest.approx(7.9 + 2.9)


def test_a_changelog_the_worker_recovered_from_counts_as_consumed() -> None:
    at_worker_start = {INGEST: 10, STATE: 30}
    at_end = {INGEST: 10, STATE: 50}
    counted = traffic(10, {}, at_worker_start, at_end, [INGEST])
    assert counted.produced == {STATE: 2.0}
    assert counted.consumed == {INGEST: 1.0, STATE: 3.0}


def test_cpu_seconds_are_user_plus_system_ticks() -> None:
    # A command name with a space and a parenthesis: fields count from the last ')'.
    stat = "4242 (hub (worker) 1) S 1 4242 4242 0 -1 4194304 101 0 0 0 250 50 7 9 20 0 1 0"
    assert cpu_seconds_from_stat(stat, 100) == pytest.approx(3.0)
