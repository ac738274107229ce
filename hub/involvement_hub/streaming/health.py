"""The worker's health probes (``/health/ready``, ``/health/live``) and the gauges of its
progress: lag per partition, table recovery, standby copies, whether commits still advance.

They read Faust's public state (``app.started``, ``app.rebalancing``, the consumer's
assignment and high-water marks, the tables' recovery), except the committed offsets,
for which Faust has no public reader (``consumer_state`` says why).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Set
from typing import Any

from involvement_hub.observability.metrics import HubMetrics
from involvement_hub.settings import Settings
from involvement_hub.streaming.consumer_state import committed_offset


class Health:
    """Probes and progress gauges of one worker's Faust app."""

    def __init__(
        self, app: Any, metrics: HubMetrics, settings: Settings, consumed_topics: Set[str]
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.settings = settings
        self._consumed_topics = consumed_topics
        # Liveness: when the committed offsets last moved, and whether there is work.
        self._progress_at = time.monotonic()
        self._committed_total = -1
        self._lagging = False
        self._lag_labels: set[tuple[str, str]] = set()
        self._standby_labels: set[tuple[str, str]] = set()

    def ready(self) -> bool:
        """Tables recovered, not rebalancing, and consuming at least one partition."""
        app = self.app
        ok = False
        if app.started:
            tables: Any = app.tables
            recovered = tables.recovery.completed.is_set()
            consuming = bool(app.consumer.assignment())
            ok = bool(recovered and not app.rebalancing and consuming)
        self.metrics.ready.set(1 if ok else 0)
        return ok

    def live(self) -> bool:
        """Every agent runs, and the worker has committed progress recently if it has work."""
        crashed = any(agent.crashed for agent in self.app.agents.values())
        stalled = self._lagging and time.monotonic() - self._progress_at > self.settings.stall_s
        ok = not crashed and not stalled
        self.metrics.live.set(1 if ok else 0)
        return ok

    def observe(self) -> None:
        """Lag per partition, recovery progress, standby copies, and whether commits still
        advance. Called at every delivery tick and before /metrics answers."""
        app = self.app
        if not app.started:
            return
        consumer: Any = app.consumer
        committed_total = 0
        lag_total = 0
        labelled: set[tuple[str, str]] = set()
        for tp in consumer.assignment():
            if tp.topic not in self._consumed_topics:
                continue  # table changelogs and Faust's own topics are read, never committed
            highwater = consumer.highwater(tp)
            committed = committed_offset(consumer, tp) or 0
            lag = max((highwater or 0) - committed, 0)
            lag_total += lag
            committed_total += committed
            labels = (tp.topic, str(tp.partition))
            labelled.add(labels)
            self.metrics.consumer_lag.labels(*labels).set(lag)
        # Partitions moved to another worker by a rebalance are not this worker's lag.
        for gone in self._lag_labels - labelled:
            self.metrics.consumer_lag.remove(*gone)
        self._lag_labels = labelled
        if committed_total != self._committed_total:
            self._committed_total = committed_total
            self._progress_at = time.monotonic()
        self._lagging = lag_total > 0
        tables: Any = app.tables
        recovery = tables.recovery
        self.metrics.recovery_remaining.set(recovery.active_remaining_total())
        standby = standby_remaining(
            recovery.standby_tps,
            recovery.standby_offsets,
            {tp: consumer.highwater(tp) for tp in recovery.standby_tps},
            recovery.standby_highwaters,
        )
        for tp, remaining in standby.items():
            self.metrics.standby_remaining.labels(tp.topic, str(tp.partition)).set(remaining)
        kept = {(tp.topic, str(tp.partition)) for tp in standby}
        for gone in self._standby_labels - kept:
            self.metrics.standby_remaining.remove(*gone)
        self._standby_labels = kept
        # The gauges must move without anyone calling the probes.
        self.ready()
        self.live()


def standby_remaining(
    standbys: Iterable[Any],
    offsets: Mapping[Any, int | None],
    ends: Mapping[Any, int | None],
    highwaters_at_start: Mapping[Any, int | None],
) -> dict[Any, int]:
    """Changelog messages each standby partition still lacks.

    ``offsets``: the last offset Faust's recovery took in for the standby (-1 or None:
    none yet); ``ends``: the consumer's latest end offset of the partition (None before
    its first fetch); ``highwaters_at_start``: the last offset when the standby started
    (Faust's own figure, which it never updates). The further of the two is the target.
    """
    remaining = {}
    for tp in standbys:
        end, at_start = ends.get(tp), highwaters_at_start.get(tp)
        last = max(end - 1 if end is not None else -1, at_start if at_start is not None else -1)
        taken = offsets.get(tp)
        remaining[tp] = max(last - (taken if taken is not None else -1), 0)
    return remaining
