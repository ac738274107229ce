"""How far an ingest partition is known to be with the ordered stage, for its watermarks
(``streaming/consumer_state.forwarded_through``)."""

from __future__ import annotations

from involvement_hub.streaming.consumer_state import forwarded_through


def test_a_partition_this_worker_never_read_is_known_as_far_as_the_group_committed() -> None:
    assert forwarded_through(None, None) == -1  # nothing read, nothing committed
    assert forwarded_through(None, 0) == -1
    assert forwarded_through(None, 12) == 11


def test_what_this_worker_forwarded_counts_before_it_is_committed() -> None:
    # Faust commits every few seconds: the last record forwarded is further on.
    assert forwarded_through(7, None) == 7
    assert forwarded_through(7, 5) == 7


def test_a_partition_back_from_another_worker_is_known_as_far_as_that_one_got() -> None:
    # This worker forwarded up to offset 3, lost the partition in a rebalance; the worker
    # that had it meanwhile handled up to 8 and committed 9; now it is this worker's again.
    # Its own 3 is old: with it alone the partition never looked caught up (the highwater
    # is 9), no watermark was sent for it, and the ordered stage waited for ever.
    assert forwarded_through(3, 9) == 8
