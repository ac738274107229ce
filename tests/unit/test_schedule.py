"""Delivery's schedule: which retries and digest windows the ticker nudges, and when."""

from __future__ import annotations

import datetime as dt

from involvement_hub.core.digest import DigestBox, hold
from involvement_hub.core.messages import DigestDue, RetryNudge
from involvement_hub.core.model import Urgency
from involvement_hub.core.schedule import Due, due_now
from support.alerts import an_alert

NOW = dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)
SW = "northshire-social-care/SW-0001"
HV = "northshire-health/HV-0002"


def test_a_retry_is_nudged_once_it_is_due_and_not_again_for_the_same_time() -> None:
    due = [
        ("a1", Due(SW, NOW - MINUTE, NOW - 5 * MINUTE)),
        ("a2", Due(HV, NOW + MINUTE, NOW - 2 * MINUTE)),
    ]

    first = due_now(NOW, due, [], {})
    again = due_now(NOW, due, [], {n.key: n.at for n in first.nudges})
    later = due_now(NOW, due, [], {"a1": NOW - 2 * MINUTE})  # nudged for an earlier time

    assert [(n.key, n.at, n.message) for n in first.nudges] == [
        ("a1", NOW - MINUTE, RetryNudge(SW, "a1"))
    ]
    assert again.nudges == ()
    assert [n.key for n in later.nudges] == ["a1"]


def test_a_closed_digest_window_is_nudged_unless_its_retry_is_pending() -> None:
    closed, open_ = NOW - MINUTE, NOW + MINUTE
    box = hold(DigestBox(SW), an_alert(at=NOW - MINUTE * 30), "hourly:09", closed)
    box = hold(box, an_alert(at=NOW, alert_id="1" * 32), "hourly:10", open_)
    (window,) = box.due(NOW)
    key = window.digest_id(SW)

    first = due_now(NOW, [], [(SW, box)], {})
    nudged = due_now(NOW, [], [(SW, box)], {key: closed})
    retrying = due_now(NOW, [(key, Due(SW, NOW + MINUTE, closed, "hourly:09"))], [(SW, box)], {})

    assert [(n.key, n.message) for n in first.nudges] == [(key, DigestDue(SW, "hourly:09"))]
    assert nudged.nudges == ()
    assert retrying.nudges == ()  # its due entry brings it back when the retry is due


def test_what_waits_is_counted_with_the_oldest_per_urgency() -> None:
    due = [
        ("a1", Due(SW, NOW + MINUTE, NOW - 5 * MINUTE, urgency=Urgency.URGENT)),
        ("a2", Due(SW, NOW + MINUTE, NOW - 9 * MINUTE, urgency=Urgency.URGENT)),
        ("a3", Due(HV, NOW + MINUTE, NOW - 1 * MINUTE)),
    ]
    box = hold(DigestBox(HV), an_alert(at=NOW), "daily:2026-11-30", NOW + 60 * MINUTE)

    schedule = due_now(NOW, due, [(HV, box)], {})

    assert schedule.nudges == ()
    assert schedule.waiting == 4  # three retries and one open window
    assert schedule.oldest == {Urgency.URGENT: NOW - 9 * MINUTE, Urgency.ROUTINE: NOW - MINUTE}
