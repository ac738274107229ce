"""Catch-up on late links (core.catch_up), through the in-memory pipeline.

Each story records an event before the link that would have told someone of it, then the
link: a lead opening a case, a household becoming known, two records of one child merged.
The newly linked recipient gets one catch-up email listing what they missed, routed again
under every IG rule and audited; nobody else is told twice.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from itertools import permutations

import pytest
from involvement_hub.core.alerts import Alert
from involvement_hub.core.catch_up import WHY
from involvement_hub.core.errors import PolicyError
from involvement_hub.core.policy import Link, parse_policy
from involvement_hub.core.simulation import Simulation
from involvement_hub.delivery.message import body, build_digest, build_message, subject
from support.family_story import (
    HV,
    REPO,
    SW,
    T0,
    event,
    involvement,
    life,
    pid,
    play,
    relationship,
    simulation,
    someone,
)

MUM = someone(91, "Morgan", "Wren", "1990-03-03")
CHILD = someone(92, "Ash", "Wren", "2017-04-04")
SW_ID = "sc/SW-1"
HV_ID = "health/HV-1"
POLICE_ID = {"scheme": "police_id", "value": "PN-000092"}


def catch_ups(sim: Simulation) -> list[Alert]:
    return [a for a in sim.alerts if a.earlier]


def plain(sim: Simulation) -> list[Alert]:
    return [a for a in sim.alerts if not a.earlier]


# --- an incident before the case opened ------------------------------------------------------


def test_a_lead_opening_a_case_is_told_of_the_incident_before_it_in_one_email() -> None:
    sim = play(
        simulation(),
        [
            life("police", "P-1", CHILD, "MISSING_EPISODE", at=1),
            life("school", "S-1", CHILD, "PERSISTENT_ABSENCE", at=2),
            involvement("sc", "CIN-92", CHILD, SW, lead=True, at=60),
        ],
    )

    # Nobody was told when the incidents came: no one worked with the child.
    assert plain(sim) == []
    (email,) = catch_ups(sim)
    assert email.recipient_id == SW_ID
    assert email.case_ref == "CIN-92"
    assert [(e.kind, e.link) for e in email.earlier] == [
        ("MISSING_EPISODE", Link.SELF),
        ("PERSISTENT_ABSENCE", Link.SELF),
    ]
    assert email.urgency.value == "URGENT"  # the most urgent of what it tells
    # Each told event is a disclosure on the audit, naming the catch-up email.
    records = [r for r in sim.audit if r.why == WHY]
    assert sorted((r.kind, r.recipient_id, r.alert_id) for r in records) == [
        ("MISSING_EPISODE", SW_ID, email.alert_id),
        ("PERSISTENT_ABSENCE", SW_ID, email.alert_id),
    ]


def test_the_order_the_records_arrive_in_changes_how_the_lead_is_told_not_whether() -> None:
    records = {
        "incident": life("police", "P-1", CHILD, "MISSING_EPISODE", at=1),
        "lead": involvement("sc", "CIN-92", CHILD, SW, lead=True, at=60),
    }
    told = set()
    for order in permutations(records):
        sim = play(simulation(), [records[name] for name in order])
        kinds = {(a.recipient_id, e.kind) for a in catch_ups(sim) for e in a.earlier}
        kinds |= {(a.recipient_id, a.kind) for a in plain(sim) if a.kind == "MISSING_EPISODE"}
        told.add(frozenset(kinds))
    assert told == {frozenset({(SW_ID, "MISSING_EPISODE")})}


def test_a_catch_up_keeps_every_ig_rule_and_audits_what_it_withholds() -> None:
    # A domestic abuse incident is for the lead only: a health visitor joining the team is
    # not told of it, the lead joining after is. What a drug and alcohol service (whose
    # mere involvement is sensitive) reported reaches no other agency without consent: the
    # lead is not told of it, and the audit says why.
    sim = play(
        simulation(),
        [
            life("police", "P-2", CHILD, "DOMESTIC_ABUSE_INCIDENT", at=1),
            life("northshire-drug-alcohol", "D-1", CHILD, "MISSING_EPISODE", at=2),
            involvement("health", "HV-92", CHILD, HV, category="HEALTH", at=30),
            involvement("sc", "CIN-92", CHILD, SW, lead=True, at=60),
        ],
    )

    assert [(a.recipient_id, [e.kind for e in a.earlier]) for a in catch_ups(sim)] == [
        (SW_ID, ["DOMESTIC_ABUSE_INCIDENT"])
    ]
    withheld = [
        (r.recipient_id, r.suppression, r.alert_id)
        for r in sim.audit
        if r.why == WHY and r.outcome == "SUPPRESS"
    ]
    assert sorted(withheld) == [
        (HV_ID, "sensitive_without_consent", None),
        (SW_ID, "sensitive_without_consent", None),
    ]


def test_only_what_happened_within_the_kinds_window_is_caught_up() -> None:
    # The policy catches up on a hospital attendance for 14 days, a missing episode for 30.
    sim = simulation()
    late = T0 + dt.timedelta(days=20)  # when the records reach Kafka
    sim.publish(event(life("health", "H-1", CHILD, "HOSPITAL_ATTENDANCE", at=1)), late)
    sim.publish(event(life("police", "P-1", CHILD, "MISSING_EPISODE", at=2)), late)
    sim.publish(event(involvement("sc", "CIN-92", CHILD, SW, lead=True, at=3)), late)
    sim.run()

    (email,) = catch_ups(sim)
    assert [e.kind for e in email.earlier] == ["MISSING_EPISODE"]


def test_a_member_already_on_the_team_is_not_told_again() -> None:
    sim = play(
        simulation(),
        [
            involvement("sc", "CIN-92", CHILD, SW, lead=True, at=1),
            life("police", "P-1", CHILD, "MISSING_EPISODE", at=2),
            involvement("health", "HV-92", CHILD, HV, category="HEALTH", at=30),
        ],
    )

    assert [a.recipient_id for a in plain(sim) if a.kind == "MISSING_EPISODE"] == [SW_ID]
    # The health visitor joins after: caught up; the lead, told at the time, is not again.
    assert [(a.recipient_id, [e.kind for e in a.earlier]) for a in catch_ups(sim)] == [
        (HV_ID, ["MISSING_EPISODE"])
    ]


# --- a move before the household was known ---------------------------------------------------


def test_a_parents_move_recorded_before_the_link_reaches_the_childs_lead_when_it_forms() -> None:
    mum_moves = life("housing", "H-1", MUM, "ADDRESS_CHANGED", new_home=7, at=2)
    sim = play(
        simulation(),
        [
            involvement("sc", "CIN-92", CHILD, SW, lead=True, at=1),
            mum_moves,
            relationship("sc", "CIN-92", MUM, "PARENT_OF", CHILD, at=30),
        ],
    )

    (email,) = catch_ups(sim)
    assert email.recipient_id == SW_ID
    assert [(e.kind, e.link) for e in email.earlier] == [("ADDRESS_CHANGED", Link.PARENT)]
    assert email.earlier[0].event_key == f"housing/{mum_moves['event_id']}"


def test_a_household_that_becomes_known_catches_the_childs_lead_up_on_a_newcomers_events() -> None:
    # Someone moves to address 7 and is taken into custody; only later does a record put the
    # child at address 7 too: the two now share a household.
    lodger = someone(93, "Drew", "Finch", "1985-05-05")
    child_at_home = someone(92, "Ash", "Wren", "2017-04-04", home=7)
    sim = play(
        simulation(),
        [
            involvement("sc", "CIN-92", CHILD, SW, lead=True, at=1),
            life("housing", "H-2", lodger, "ADDRESS_CHANGED", new_home=7, at=2),
            life("police", "P-3", lodger, "POLICE_CUSTODY", at=3),
            involvement("sc", "CIN-92", child_at_home, SW, lead=True, change="UPDATED", at=40),
        ],
    )

    (email,) = catch_ups(sim)
    assert email.recipient_id == SW_ID
    assert [(e.kind, e.link) for e in email.earlier] == [
        ("ADDRESS_CHANGED", Link.HOUSEHOLD_MEMBER),
        ("POLICE_CUSTODY", Link.HOUSEHOLD_MEMBER),
    ]
    assert pid(sim, lodger) != pid(sim, CHILD)


# --- a merge joining two records of one child ------------------------------------------------


def test_a_merge_tells_each_records_team_what_the_other_record_heard() -> None:
    # The police know the child by their own id only; social care by NHS number. A later
    # record carrying both shows they are one child.
    police_only = {**CHILD, "identifiers": [POLICE_ID]}
    both = {**CHILD, "identifiers": [*CHILD["identifiers"], POLICE_ID]}
    sim = play(
        simulation(),
        [
            involvement("sc", "CIN-92", CHILD, SW, lead=True, at=1),
            life("police", "P-4", police_only, "MISSING_EPISODE", at=2),
            life("police", "P-5", both, "POLICE_CUSTODY", at=40),
        ],
    )

    assert [(a.recipient_id, [e.kind for e in a.earlier]) for a in catch_ups(sim)] == [
        (SW_ID, ["MISSING_EPISODE"])
    ]
    # The custody after the merge reached the lead the usual way.
    assert [a.recipient_id for a in plain(sim) if a.kind == "POLICE_CUSTODY"] == [SW_ID]


def test_replaying_the_same_records_makes_the_same_catch_up_email() -> None:
    records = [
        life("police", "P-1", CHILD, "MISSING_EPISODE", at=1),
        involvement("sc", "CIN-92", CHILD, SW, lead=True, at=60),
    ]
    first = catch_ups(play(simulation(), records))
    again = catch_ups(play(simulation(), records))
    assert [a.alert_id for a in first] == [a.alert_id for a in again]
    assert first == again


# --- the email ------------------------------------------------------------------------------


def test_the_catch_up_email_lists_each_event_in_words_and_says_why_it_comes_now() -> None:
    sim = play(
        simulation(),
        [
            life("police", "P-1", CHILD, "MISSING_EPISODE", at=1),
            involvement("sc", "CIN-92", CHILD, SW, lead=True, at=60),
        ],
    )
    (email,) = catch_ups(sim)

    parts = body(email)
    (heading, lines), *_ = parts.sections
    assert heading == "Recorded before you were linked to this child"
    (line,) = lines
    assert line.startswith("Missing episode (URGENT - act today), ")
    assert "reported by" in line
    assert "you were linked to this child after these were recorded" in parts.why
    assert subject(email) == "[URGENT] Involvement hub: catch-up on one of your cases"
    message = build_message(email, "hub@hub.northshire.example", T0)
    text = message.get_payload()[0].get_payload(decode=True).decode()
    assert "Ash" not in text
    assert "Wren" not in text
    assert email.alert_id in text


def test_a_catch_up_held_for_a_digest_lists_what_it_tells() -> None:
    sim = play(
        simulation(),
        [
            life("school", "S-1", CHILD, "PERSISTENT_ABSENCE", at=1),
            involvement("sc", "CIN-92", CHILD, SW, lead=True, at=60),
        ],
    )
    (email,) = catch_ups(sim)
    assert email.urgency.value == "ROUTINE"

    digest = build_digest(
        [email],
        digest_id="d" * 32,
        window="daily:2026-11-26T08:00",
        preference="daily",
        mail_from="hub@hub.northshire.example",
        now=T0,
    )
    text = digest.get_payload()[0].get_payload(decode=True).decode()
    assert "Catch-up: 1 earlier update, recorded before you were linked: Persistent absence" in (
        " ".join(text.split())
    )


def test_the_policy_catches_up_on_life_events_only() -> None:
    text = (REPO / "governance" / "policy.toml").read_text()
    broken = text.replace(
        "[kind.INVOLVEMENT_STARTED]\n", "[kind.INVOLVEMENT_STARTED]\ncatch_up_days = 7\n", 1
    )
    with pytest.raises(PolicyError, match="catch_up_days' is for life events only"):
        parse_policy(tomllib.loads(broken))
    with pytest.raises(PolicyError, match="0-90"):
        parse_policy(tomllib.loads(text.replace("catch_up_days = 30", "catch_up_days = 91", 1)))
