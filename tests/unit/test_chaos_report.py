"""The fault harness's verdict from sets of Message-IDs, and its seeded fault moments."""

from __future__ import annotations

import itertools

from involvement_hub.core.delivery_plan import Contact, derived_id
from involvement_hub_devtools.chaos.report import (
    Accepted,
    Observed,
    compare,
    escalation_message_id,
    fault_times,
    markdown_table,
    pick_refused_recipient,
    reference_row,
)

A = "lee@social-care.northshire.example"
B = "kim@health.northshire.example"


def mid(n: int) -> str:
    return f"<{n:032x}@hub.invalid>"


REFERENCE = (Accepted(mid(1), A), Accepted(mid(2), A), Accepted(mid(3), B))


def test_a_run_equal_to_the_reference_meets_every_target() -> None:
    row = compare(REFERENCE, Observed("kill9", REFERENCE, disruptions=3), connections=4)
    assert (row.missing, row.duplicates, row.extra, row.crashes) == (0, 0, 0, 0)
    assert row.met
    assert row.duplicate_bound == 12


def test_missing_duplicates_and_extra_are_counted_by_message_id() -> None:
    run = Observed(
        "kill9",
        (Accepted(mid(1), A), Accepted(mid(1), A), Accepted(mid(1), A), Accepted(mid(9), B)),
        disruptions=1,
    )
    row = compare(REFERENCE, run, connections=1)
    assert row.missing == 2
    assert row.missing_ids == (mid(2), mid(3))
    assert row.duplicates == 2  # three acceptances of one Message-ID
    assert row.extra == 1
    assert row.extra_ids == (mid(9),)
    assert not row.met


def test_duplicates_within_the_in_flight_bound_are_tolerated() -> None:
    run = Observed("kill9", (*REFERENCE, Accepted(mid(1), A)), disruptions=1)
    assert compare(REFERENCE, run, connections=1).met
    assert not compare(REFERENCE, Observed("replay", run.accepted), connections=4).met


def test_a_crash_or_an_error_fails_the_row() -> None:
    assert not compare(REFERENCE, Observed("hostile", REFERENCE, crashes=1), 4).met
    assert not compare(REFERENCE, Observed("hostile", REFERENCE, error="TimeoutError"), 4).met


def test_a_refused_recipient_is_escalated_not_missing() -> None:
    escalations = (
        Accepted(escalation_message_id(mid(1)), "duty@x"),
        Accepted(escalation_message_id(mid(2)), "duty@x"),
    )
    run = Observed("smtp-550", (Accepted(mid(3), B), *escalations), refused_recipient=A)
    row = compare(REFERENCE, run, connections=4)
    assert (row.missing, row.extra, row.refused, row.escalated) == (0, 0, 2, 2)
    assert row.met
    short = compare(REFERENCE, Observed("smtp-550", run.accepted[:2], refused_recipient=A), 4)
    assert short.escalated == 1
    assert not short.met


def test_the_escalation_message_id_is_the_hubs_derived_id() -> None:
    alert_id = "ab" * 16
    expected = f"<{derived_id(alert_id, 'escalation')}@hub.invalid>"
    assert escalation_message_id(f"<{alert_id}@hub.invalid>") == expected


def test_the_reference_row_counts_its_own_duplicates() -> None:
    row = reference_row(Observed("reference", (*REFERENCE, REFERENCE[0])))
    assert row.reference == 3
    assert row.duplicates == 1
    assert not row.met


def test_the_table_has_a_row_per_fault_and_says_fail() -> None:
    rows = [
        compare(REFERENCE, Observed("kill9", REFERENCE), 4),
        compare(REFERENCE, Observed("hostile", REFERENCE[:1], crashes=2), 4),
    ]
    text = markdown_table(rows)
    lines = text.splitlines()
    assert lines[0].startswith("| fault | reference | received | missing")
    assert lines[2] == "| kill9 | 3 | 3 | 0 | 0 (0) | 0 | 0 | - | ok |"
    assert lines[3] == "| hostile | 3 | 1 | 2 | 0 (0) | 0 | 2 | - | FAIL |"


def test_fault_times_are_seeded_sorted_in_the_window_and_apart() -> None:
    times = fault_times(7, 10, 100.0, 3.0)
    assert times == fault_times(7, 10, 100.0, 3.0)
    assert times != fault_times(8, 10, 100.0, 3.0)
    assert len(times) == 10
    assert all(0 <= t <= 100.0 for t in times)
    assert all(b - a >= 3.0 - 1e-6 for a, b in itertools.pairwise(times))
    assert fault_times(1, 0, 100.0, 3.0) == ()


def test_fault_times_in_a_window_too_short_still_keep_their_gaps() -> None:
    times = fault_times(1, 4, 5.0, 10.0)
    assert times == (0.0, 10.0, 20.0, 30.0)


def test_the_refused_recipient_is_the_busiest_who_can_be_escalated() -> None:
    contacts = (
        Contact("northshire-social-care", None, "duty-desk@social-care.northshire.example", None),
    )
    reference = (
        *REFERENCE,
        Accepted(mid(4), B),
        Accepted(mid(5), B),
        Accepted(mid(6), "duty-desk@social-care.northshire.example"),
    )
    # B has more emails, but no escalation contact shares its mail domain.
    assert pick_refused_recipient(reference, contacts) == A
    assert pick_refused_recipient(reference, ()) is None


def test_missing_emails_are_explained_by_their_alerts_last_delivery_status() -> None:
    outcomes = {mid(2).strip("<>").partition("@")[0]: "EXPIRED"}
    run = Observed("kill9", REFERENCE[:1], outcomes=outcomes)
    row = compare(REFERENCE, run, connections=4)
    assert row.missing_by_status == {"EXPIRED": 1, "NOT ROUTED": 1}
    assert "- kill9: 1 EXPIRED, 1 NOT ROUTED" in markdown_table([row])


def test_differences_the_control_run_shares_are_set_apart_as_noise() -> None:
    control = compare(REFERENCE, Observed("control", (*REFERENCE[1:], Accepted(mid(8), A))), 4)
    kill = compare(
        REFERENCE, Observed("kill9", (REFERENCE[2], Accepted(mid(8), A), Accepted(mid(9), A))), 4
    )
    text = markdown_table([control, kill])
    assert "- kill9: 1 of 2 missing, 1 of 2 extra" in text
    assert "control run shares" not in markdown_table([kill])
