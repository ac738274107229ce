"""The benchmark's failover step: reading the workers' /metrics, and judging the figure."""

from __future__ import annotations

from involvement_hub_devtools.bench.failover import Status, status_from_metrics, verdict, warm_pair
from involvement_hub_devtools.processes import metric_samples

METRICS = """\
# HELP hub_worker_ready 1 when the worker has recovered and is consuming.
# TYPE hub_worker_ready gauge
hub_worker_ready 1.0
hub_consumer_lag_messages{partition="0",topic="b.hub.identity"} 0.0
hub_consumer_lag_messages{partition="2",topic="b.hub.alerts"} 4.0
hub_table_recovery_remaining_messages 12.0
hub_table_standby_remaining_messages{partition="0",topic="a-hub-state-changelog"} 310.0
hub_worker_ready_seconds 5.0
"""

ROUTING = ("b.hub.identity", 0)
STATE = ("a-hub-state-changelog", 0)


def test_samples_are_read_with_their_labels() -> None:
    assert metric_samples(METRICS, "hub_consumer_lag_messages") == [
        ({"partition": "0", "topic": "b.hub.identity"}, 0.0),
        ({"partition": "2", "topic": "b.hub.alerts"}, 4.0),
    ]
    assert metric_samples(METRICS, "hub_worker_ready") == [({}, 1.0)]


def test_a_workers_status_is_read_from_its_metrics() -> None:
    status = status_from_metrics(METRICS)
    assert status.ready
    assert status.owned == {ROUTING, ("b.hub.alerts", 2)}
    assert status.standby == {STATE: 310}
    assert status.recovering == 12


def status(ready: bool = True, routing: bool = False, lacking: int | None = None) -> Status:
    return Status(
        ready=ready,
        owned=frozenset({ROUTING} if routing else set()),
        standby={} if lacking is None else {STATE: lacking},
        recovering=0,
    )


def test_the_pair_is_warm_once_the_other_worker_lacks_nothing_of_the_state() -> None:
    assert warm_pair({"a": status(routing=True), "b": status(lacking=0)}, ROUTING, STATE, True) == (
        "a",
        "b",
    )
    assert warm_pair({"a": status(lacking=0), "b": status(routing=True)}, ROUTING, STATE, True) == (
        "b",
        "a",
    )


def test_the_pair_is_not_warm_while_the_standby_lacks_something_or_is_missing() -> None:
    assert (
        warm_pair({"a": status(routing=True), "b": status(lacking=5)}, ROUTING, STATE, True) is None
    )
    assert warm_pair({"a": status(routing=True), "b": status()}, ROUTING, STATE, True) is None
    # With no standby replicas there is none to wait for.
    assert warm_pair({"a": status(routing=True), "b": status()}, ROUTING, STATE, False) == (
        "a",
        "b",
    )


def test_the_pair_is_not_settled_while_a_worker_is_unready_silent_or_both_route() -> None:
    warm = status(lacking=0)
    assert warm_pair({"a": status(routing=True), "b": None}, ROUTING, STATE, True) is None
    unready = status(ready=False, routing=True)
    assert warm_pair({"a": unready, "b": warm}, ROUTING, STATE, True) is None
    both = {"a": status(routing=True), "b": status(routing=True, lacking=0)}
    assert warm_pair(both, ROUTING, STATE, True) is None
    assert warm_pair({"a": status(), "b": warm}, ROUTING, STATE, True) is None


def test_the_target_is_judged_at_a_million_persons_only() -> None:
    assert verdict(42.0, 1_047_002) == "met"
    assert verdict(60.0, 1_000_000) == "met"
    assert verdict(61.5, 1_000_000) == "missed"
    assert verdict(15.9, 20_123) is None
    assert verdict(None, 1_000_000) is None
