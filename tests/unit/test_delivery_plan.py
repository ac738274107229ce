"""When and where alerts are delivered (core/delivery_plan.py) and the files that configure it
(delivery/settings_files.py). Times are chosen around Europe/London's clock changes: in 2026
the clocks go forward on 29 March and back on 25 October."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from involvement_hub.core.alerts import Alert
from involvement_hub.core.delivery_plan import (
    Contact,
    DeliveryPlan,
    Hold,
    Mode,
    Preference,
    WorkingHours,
    out_of_hours_copy,
    schedule,
)
from involvement_hub.core.model import Urgency
from involvement_hub.delivery.settings_files import (
    PlanSource,
    load_plan,
    load_preferences,
    write_preferences,
)
from involvement_hub.errors import SubscriptionError
from support.alerts import an_alert

REPO = Path(__file__).resolve().parents[2]
SOCIAL_CARE = "northshire-social-care"
RECIPIENT = f"{SOCIAL_CARE}/SW-302"
UTC = dt.UTC


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def routine(urgency: Urgency = Urgency.ROUTINE, recipient: str = RECIPIENT) -> Alert:
    return an_alert(
        at=at(2026, 11, 25, 10),
        alert_id="0" * 31 + "2",
        event_key="oakfield-primary/evt-2",
        recipient_id=recipient,
        recipient_email="sam.okafor@social-care.northshire.example",
        recipient_name="Sam Okafor",
        case_ref="CIN-302",
        kind="PERSISTENT_ABSENCE",
        urgency=urgency,
    )


def plan_for(mode: Mode, when: dt.time | None = None, **kw: object) -> DeliveryPlan:
    return DeliveryPlan(preferences={RECIPIENT: Preference(mode, when)}, **kw)  # type: ignore[arg-type]


# -- schedule ------------------------------------------------------------------------------


@pytest.mark.parametrize("urgency", [Urgency.URGENT, Urgency.PRIORITY])
@pytest.mark.parametrize("mode", list(Mode))
def test_urgent_and_priority_alerts_are_never_held(urgency: Urgency, mode: Mode) -> None:
    plan = plan_for(mode, dt.time(8, 0))

    assert schedule(routine(urgency), plan, at(2026, 11, 28, 23)) is None  # a Saturday night


def test_immediate_is_the_default_and_sends_at_once() -> None:
    assert schedule(routine(), DeliveryPlan(), at(2026, 11, 28, 23)) is None


def test_a_recipient_without_a_preference_follows_the_default() -> None:
    plan = DeliveryPlan(default=Preference(Mode.HOURLY))

    hold = schedule(routine(recipient=f"{SOCIAL_CARE}/SW-399"), plan, at(2026, 11, 25, 10, 20))

    assert hold == Hold("hourly:2026-11-25T10:00:00+00:00", at(2026, 11, 25, 11))


@pytest.mark.parametrize(
    ("now", "window", "due"),
    [
        # Winter: London is UTC.
        (at(2026, 11, 25, 10, 20), "hourly:2026-11-25T10:00:00+00:00", at(2026, 11, 25, 11)),
        (at(2026, 11, 25, 10, 0), "hourly:2026-11-25T10:00:00+00:00", at(2026, 11, 25, 11)),
        # Summer: the window is named in local time and closes an hour after it opens.
        (at(2026, 7, 1, 10, 20), "hourly:2026-07-01T11:00:00+01:00", at(2026, 7, 1, 11)),
        # 29 March: 01:00 GMT becomes 02:00 BST.
        (at(2026, 3, 29, 0, 30), "hourly:2026-03-29T00:00:00+00:00", at(2026, 3, 29, 1)),
        # 25 October: 01:00-02:00 is lived twice, first in BST, then in GMT.
        (at(2026, 10, 25, 0, 30), "hourly:2026-10-25T01:00:00+01:00", at(2026, 10, 25, 1)),
        (at(2026, 10, 25, 1, 30), "hourly:2026-10-25T01:00:00+00:00", at(2026, 10, 25, 2)),
    ],
    ids=["winter", "on-the-hour", "summer", "spring-forward", "fall-back-bst", "fall-back-gmt"],
)
def test_an_hourly_window_closes_an_hour_after_it_opens(
    now: dt.datetime, window: str, due: dt.datetime
) -> None:
    assert schedule(routine(), plan_for(Mode.HOURLY), now) == Hold(window, due)


@pytest.mark.parametrize(
    ("now", "window", "due"),
    [
        (at(2026, 11, 25, 7, 59), "daily:2026-11-25T08:00:00+00:00", at(2026, 11, 25, 8)),
        (at(2026, 11, 25, 8, 0), "daily:2026-11-26T08:00:00+00:00", at(2026, 11, 26, 8)),
        (at(2026, 11, 25, 20, 0), "daily:2026-11-26T08:00:00+00:00", at(2026, 11, 26, 8)),
        # The evening before the clocks go forward: 08:00 tomorrow is 07:00 UTC.
        (at(2026, 3, 28, 20, 0), "daily:2026-03-29T08:00:00+01:00", at(2026, 3, 29, 7)),
        # The evening before they go back: 08:00 tomorrow is 08:00 UTC again.
        (at(2026, 10, 24, 20, 0), "daily:2026-10-25T08:00:00+00:00", at(2026, 10, 25, 8)),
        # Summer, after 08:00 BST (07:00 UTC): tomorrow's window.
        (at(2026, 7, 1, 7, 30), "daily:2026-07-02T08:00:00+01:00", at(2026, 7, 2, 7)),
    ],
    ids=["before", "exactly-at", "after", "spring-forward", "fall-back", "summer"],
)
def test_a_daily_window_closes_at_the_local_time_asked_for(
    now: dt.datetime, window: str, due: dt.datetime
) -> None:
    assert schedule(routine(), plan_for(Mode.DAILY, dt.time(8, 0)), now) == Hold(window, due)


def test_alerts_of_one_day_share_one_daily_window() -> None:
    plan = plan_for(Mode.DAILY, dt.time(17, 30))

    holds = {schedule(routine(), plan, at(2026, 11, 25, h)) for h in (0, 9, 12, 17)}

    assert holds == {Hold("daily:2026-11-25T17:30:00+00:00", at(2026, 11, 25, 17, 30))}


def test_a_daily_window_keeps_seconds() -> None:
    plan = plan_for(Mode.DAILY, dt.time(8, 0, 30))

    hold = schedule(routine(), plan, at(2026, 11, 25, 8, 0, 10))

    assert hold == Hold("daily:2026-11-25T08:00:30+00:00", at(2026, 11, 25, 8, 0, 30))


def test_a_daily_window_follows_the_plans_timezone() -> None:
    plan = plan_for(Mode.DAILY, dt.time(8, 0), timezone="America/New_York")

    hold = schedule(routine(), plan, at(2026, 11, 25, 12))  # 07:00 in New York

    assert hold == Hold("daily:2026-11-25T08:00:00-05:00", at(2026, 11, 25, 13))


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (at(2026, 11, 25, 10), None),  # Wednesday, in hours
        (at(2026, 11, 25, 7), Hold("working:2026-11-25T09:00:00+00:00", at(2026, 11, 25, 9))),
        (at(2026, 11, 27, 17), Hold("working:2026-11-30T09:00:00+00:00", at(2026, 11, 30, 9))),
        (at(2026, 11, 28, 12), Hold("working:2026-11-30T09:00:00+00:00", at(2026, 11, 30, 9))),
        # Summer: 08:30 UTC is 09:30 BST, in hours.
        (at(2026, 7, 1, 8, 30), None),
        (at(2026, 7, 1, 7, 30), Hold("working:2026-07-01T09:00:00+01:00", at(2026, 7, 1, 8))),
    ],
    ids=["in-hours", "early", "friday-evening", "saturday", "summer-in-hours", "summer-early"],
)
def test_working_hours_only_holds_until_work_starts(
    now: dt.datetime, expected: Hold | None
) -> None:
    assert schedule(routine(), plan_for(Mode.WORKING_HOURS), now) == expected


# -- working hours -------------------------------------------------------------------------


def london(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=DeliveryPlan().zone)


@pytest.mark.parametrize(
    ("local", "inside"),
    [
        ((2026, 11, 25, 9, 0), True),
        ((2026, 11, 25, 16, 59, 59), True),
        ((2026, 11, 25, 17, 0), False),
        ((2026, 11, 25, 8, 59, 59), False),
        ((2026, 11, 28, 11, 0), False),  # Saturday
        ((2026, 11, 29, 11, 0), False),  # Sunday
    ],
)
def test_working_hours_contain_weekdays_from_start_to_before_end(
    local: tuple[int, ...], inside: bool
) -> None:
    assert WorkingHours().contains(london(*local)) is inside


def test_working_hours_can_name_other_days() -> None:
    weekend = WorkingHours(dt.time(10, 0), dt.time(14, 0), frozenset({5, 6}))

    assert weekend.contains(london(2026, 11, 28, 11))
    assert not weekend.contains(london(2026, 11, 25, 11))
    assert weekend.next_start(london(2026, 11, 25, 11)) == london(2026, 11, 28, 10)


@pytest.mark.parametrize(
    ("local", "starts"),
    [
        ((2026, 11, 25, 9, 0), (2026, 11, 25, 9, 0)),  # at the start: now
        ((2026, 11, 25, 6, 0), (2026, 11, 25, 9, 0)),
        ((2026, 11, 25, 9, 1), (2026, 11, 26, 9, 0)),
        ((2026, 11, 27, 18, 0), (2026, 11, 30, 9, 0)),  # Friday evening: Monday
        ((2026, 11, 29, 23, 0), (2026, 11, 30, 9, 0)),  # Sunday night
    ],
)
def test_working_hours_next_start_skips_the_weekend(
    local: tuple[int, ...], starts: tuple[int, ...]
) -> None:
    assert WorkingHours().next_start(london(*local)) == london(*starts)


def test_working_hours_without_days_have_no_next_start() -> None:
    with pytest.raises(ValueError, match="no day"):
        WorkingHours(days=frozenset()).next_start(london(2026, 11, 25, 9))


# -- contacts and preferences ----------------------------------------------------------------

CONTACTS = (
    Contact(SOCIAL_CARE, None, "duty@social-care.northshire.example", "edt@northshire.example"),
    Contact(SOCIAL_CARE, "Team North", "north-managers@social-care.northshire.example", None),
    Contact("northshire-health", None, None, "on-call@health.northshire.example"),
)


@pytest.mark.parametrize(
    ("agency", "team", "field", "address"),
    [
        (SOCIAL_CARE, "Team North", "escalation", "north-managers@social-care.northshire.example"),
        # The team names no out-of-hours contact: the agency's applies.
        (SOCIAL_CARE, "Team North", "out_of_hours", "edt@northshire.example"),
        (SOCIAL_CARE, "Team South", "escalation", "duty@social-care.northshire.example"),
        (SOCIAL_CARE, None, "escalation", "duty@social-care.northshire.example"),
        ("northshire-health", None, "escalation", None),
        ("northshire-health", "Ward 3", "out_of_hours", "on-call@health.northshire.example"),
        ("oakfield-primary", None, "escalation", None),
    ],
)
def test_the_most_specific_contact_wins(
    agency: str, team: str | None, field: str, address: str | None
) -> None:
    plan = DeliveryPlan(contacts=CONTACTS)

    assert plan.contact(agency, team, field) == address


def test_a_recipients_own_preference_wins_over_the_default() -> None:
    plan = DeliveryPlan(
        default=Preference(Mode.HOURLY),
        preferences={RECIPIENT: Preference(Mode.DAILY, dt.time(7, 0))},
    )

    assert plan.preference(RECIPIENT) == Preference(Mode.DAILY, dt.time(7, 0))
    assert plan.preference(f"{SOCIAL_CARE}/SW-303") == Preference(Mode.HOURLY)


@pytest.mark.parametrize(
    ("urgency", "now", "address"),
    [
        (Urgency.URGENT, at(2026, 11, 25, 20), "edt@northshire.example"),
        (Urgency.URGENT, at(2026, 11, 28, 12), "edt@northshire.example"),  # Saturday
        (Urgency.URGENT, at(2026, 11, 25, 10), None),
        (Urgency.PRIORITY, at(2026, 11, 25, 20), None),
    ],
)
def test_only_urgent_alerts_out_of_hours_are_copied(
    urgency: Urgency, now: dt.datetime, address: str | None
) -> None:
    plan = DeliveryPlan(contacts=CONTACTS)

    assert out_of_hours_copy(routine(urgency), plan, "Team North", now) == address


# -- the files -------------------------------------------------------------------------------

DELIVERY = """\
timezone = "Europe/London"
default_mode = "immediate"

[working_hours]
start = "08:30"
end = "18:00"
days = ["MON", "TUE", "WED", "THU"]

[[contact]]
agency = "northshire-social-care"
escalation = "duty@social-care.northshire.example"
out_of_hours = "edt@social-care.northshire.example"

[[contact]]
agency = "northshire-social-care"
team = "Team North"
escalation = "north@social-care.northshire.example"
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "delivery.toml").write_text(DELIVERY)
    return tmp_path


def test_the_shipped_delivery_files_load() -> None:
    plan = load_plan(REPO / "subscriptions")

    assert plan.timezone == "Europe/London"
    assert plan.working_hours == WorkingHours()
    assert plan.default == Preference(Mode.IMMEDIATE)
    assert plan.contact(SOCIAL_CARE, "Children in Need North", "escalation") == (
        "cin-north-managers@social-care.northshire.example"
    )


def test_a_delivery_file_loads_into_a_plan(folder: Path) -> None:
    plan = load_plan(folder)

    assert plan.working_hours == WorkingHours(dt.time(8, 30), dt.time(18, 0), frozenset(range(4)))
    assert plan.contacts == (
        Contact(
            SOCIAL_CARE,
            None,
            "duty@social-care.northshire.example",
            "edt@social-care.northshire.example",
        ),
        Contact(SOCIAL_CARE, "Team North", "north@social-care.northshire.example", None),
    )
    assert plan.preferences == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("", 'colour = "blue"\n'), "unknown key 'colour'"),
        (('start = "08:30"', 'start = "half eight"'), "working_hours.start: 'half eight'"),
        (('end = "18:00"', 'end = "25:00"'), "working_hours.end"),
        (('end = "18:00"', 'end = "08:00"'), "start before they end"),
        (('"THU"]', '"THURSDAY"]'), "unknown day 'THURSDAY'"),
        (('days = ["MON", "TUE", "WED", "THU"]', "days = []"), "must name days"),
        (('"Europe/London"', '"Europe/Northshire"'), "unknown timezone 'Europe/Northshire'"),
        (('default_mode = "immediate"', 'default_mode = "weekly"'), "mode must be one of"),
        (
            ('default_mode = "immediate"', 'default_mode = "daily"'),
            'a daily digest needs at = "HH:MM"',
        ),
        (
            ('escalation = "duty@social-care.northshire.example"', 'escalation = "duty desk"'),
            "contact 1: escalation is not an email address",
        ),
        (('team = "Team North"\nescalation', 'team = "Team North"\nnotes'), "contact 2: needs"),
        (('agency = "northshire-social-care"\nescalation', "escalation"), "contact 1: needs"),
        (("[working_hours]", "working_hours ="), "delivery.toml"),  # not TOML
    ],
    ids=[
        "unknown-key",
        "bad-start",
        "bad-end",
        "end-before-start",
        "unknown-day",
        "no-days",
        "unknown-timezone",
        "unknown-mode",
        "daily-without-at",
        "bad-email",
        "contact-without-address",
        "contact-without-agency",
        "not-toml",
    ],
)
def test_an_invalid_delivery_file_is_refused_with_the_problem_named(
    folder: Path, change: tuple[str, str], message: str
) -> None:
    old, new = change
    text = DELIVERY.replace(old, new, 1) if old else new + DELIVERY
    assert text != DELIVERY
    (folder / "delivery.toml").write_text(text)

    with pytest.raises(SubscriptionError, match=message.replace("(", r"\(")) as caught:
        load_plan(folder)

    assert str(folder / "delivery.toml") in str(caught.value)


def test_a_missing_delivery_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SubscriptionError, match="delivery file not found"):
        load_plan(tmp_path)


def test_a_misspelt_contact_key_is_refused(folder: Path) -> None:
    misspelt = (
        '\n[[contact]]\nagency = "oakfield-primary"\n'
        'out_of_hours = "office@oakfield-primary.example"\n'
        'escalaton = "head@oakfield-primary.example"\n'
    )
    (folder / "delivery.toml").write_text(DELIVERY + misspelt)

    with pytest.raises(SubscriptionError, match="escalaton"):
        load_plan(folder)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ('practitioner = "SW-302"\nmode = "hourly"', "practitioner must be agency/practitioner_id"),
        (f'practitioner = "{RECIPIENT}"\nmode = "daily"', "a daily digest needs"),
        (f'practitioner = "{RECIPIENT}"\nmode = "daily"\nat = "8 o\'clock"', "is not a time"),
        (f'practitioner = "{RECIPIENT}"\nmode = "fortnightly"', "mode must be one of"),
    ],
    ids=["bad-practitioner", "daily-without-at", "bad-at", "bad-mode"],
)
def test_an_invalid_preference_is_refused(folder: Path, block: str, message: str) -> None:
    (folder / "preferences.toml").write_text(f"[[preference]]\n{block}\n")

    with pytest.raises(SubscriptionError, match=message) as caught:
        load_plan(folder)

    assert "preference 1" in str(caught.value)


def test_preferences_round_trip_through_their_file(folder: Path) -> None:
    preferences = {
        RECIPIENT: Preference(Mode.DAILY, dt.time(7, 45)),
        f"{SOCIAL_CARE}/SW-303": Preference(Mode.DAILY, dt.time(16, 20, 35)),
        f"{SOCIAL_CARE}/SW-304": Preference(Mode.HOURLY),
        "oakfield-primary/DSL-305": Preference(Mode.WORKING_HOURS),
        "northshire-health/HV-306": Preference(Mode.IMMEDIATE),
    }

    path = write_preferences(folder, preferences)

    assert path == folder / "preferences.toml"
    text = path.read_text()
    assert text.startswith("# Practitioners' preferences")
    assert 'at = "07:45"' in text
    assert 'at = "16:20:35"' in text  # seconds kept
    assert load_preferences(folder) == preferences
    assert load_plan(folder).preferences == preferences
    assert sorted(p.name for p in folder.iterdir()) == ["delivery.toml", "preferences.toml"]


def test_writing_no_preferences_leaves_an_empty_but_valid_file(folder: Path) -> None:
    write_preferences(folder, {RECIPIENT: Preference(Mode.HOURLY)})

    write_preferences(folder, {})

    assert load_preferences(folder) == {}


def test_no_preferences_file_means_no_preferences(tmp_path: Path) -> None:
    shutil.copy(REPO / "subscriptions" / "delivery.toml", tmp_path / "delivery.toml")

    assert load_preferences(tmp_path) == {}
    assert load_plan(tmp_path).preferences == {}


def test_the_plan_source_rereads_changed_preferences_and_keeps_them_when_broken(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = PlanSource(folder, load_plan(folder), interval=0.0)
    assert source().preference(RECIPIENT) == Preference(Mode.IMMEDIATE)

    write_preferences(folder, {RECIPIENT: Preference(Mode.HOURLY)})
    assert source().preference(RECIPIENT) == Preference(Mode.HOURLY)

    (folder / "preferences.toml").write_text('[[preference]]\npractitioner = "nobody"\n')
    assert source().preference(RECIPIENT) == Preference(Mode.HOURLY)
    assert "preferences not reloaded" in caplog.text
