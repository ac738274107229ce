"""When and where an alert is delivered: preferences, digests, working hours, escalation.

Pure: everything takes ``now``. URGENT and PRIORITY alerts go at once; a ROUTINE alert
follows its recipient's preference -- at once, in an hourly digest, in a daily digest at a
set time, or only in working hours (held until they start, then sent as one digest).
URGENT alerts outside working hours are also copied to the recipient's agency (or team)
out-of-hours contact. Undeliverable alerts go to an escalation contact.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from zoneinfo import ZoneInfo

from .alerts import Alert
from .ids import derived_id as derived_id
from .model import Urgency


class Mode(StrEnum):
    IMMEDIATE = "immediate"
    HOURLY = "hourly"
    DAILY = "daily"
    WORKING_HOURS = "working_hours"


@dataclass(frozen=True, slots=True)
class Preference:
    mode: Mode = Mode.IMMEDIATE
    at: dt.time | None = None  # for DAILY


@dataclass(frozen=True, slots=True)
class WorkingHours:
    start: dt.time = dt.time(9, 0)
    end: dt.time = dt.time(17, 0)
    days: frozenset[int] = frozenset(range(5))  # Monday is 0

    def contains(self, local: dt.datetime) -> bool:
        return local.weekday() in self.days and self.start <= local.time() < self.end

    def next_start(self, local: dt.datetime) -> dt.datetime:
        """The next moment working hours begin, at or after ``local``."""
        day = local.date()
        for _ in range(8):
            begins = dt.datetime.combine(day, self.start, tzinfo=local.tzinfo)
            if day.weekday() in self.days and begins >= local:
                return begins
            day += dt.timedelta(days=1)
        raise ValueError("working hours name no day of the week")


@dataclass(frozen=True, slots=True)
class Contact:
    """Escalation and out-of-hours addresses for an agency, or a team within it."""

    agency: str
    team: str | None
    escalation: str | None
    out_of_hours: str | None


@dataclass(frozen=True, slots=True)
class DeliveryPlan:
    timezone: str = "Europe/London"
    working_hours: WorkingHours = WorkingHours()
    contacts: tuple[Contact, ...] = ()
    default: Preference = Preference()
    preferences: Mapping[str, Preference] | None = None  # by recipient id

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def preference(self, recipient_id: str) -> Preference:
        return (self.preferences or {}).get(recipient_id, self.default)

    def contact(self, agency: str, team: str | None, field: str) -> str | None:
        """The most specific contact address (team, then agency) for ``field``."""
        for want_team in (team, None):
            for contact in self.contacts:
                if contact.agency == agency and contact.team == want_team:
                    value = getattr(contact, field)
                    if value:
                        return str(value)
            if team is None:
                break
        return None


@dataclass(frozen=True, slots=True)
class Hold:
    """Put the alert in the recipient's digest for ``window`` (sent at ``due``)."""

    window: str
    due: dt.datetime


def schedule(alert: Alert, plan: DeliveryPlan, now: dt.datetime) -> Hold | None:
    """None: send now. Otherwise: hold it for a digest."""
    if alert.urgency is not Urgency.ROUTINE:
        return None
    preference = plan.preference(alert.recipient_id)
    local = now.astimezone(plan.zone)
    if preference.mode is Mode.IMMEDIATE:
        return None
    if preference.mode is Mode.HOURLY:
        start = local.replace(minute=0, second=0, microsecond=0)
        # An hour later in UTC: aware arithmetic in a zone is wall-clock arithmetic, which
        # makes the first 01:00 window of the autumn clock change two hours long.
        due = start.astimezone(dt.UTC) + dt.timedelta(hours=1)
        return Hold(f"hourly:{start.isoformat()}", due)
    if preference.mode is Mode.DAILY:
        at = preference.at or dt.time(8, 0)
        due = dt.datetime.combine(local.date(), at, tzinfo=local.tzinfo)
        if due <= local:
            due = dt.datetime.combine(local.date() + dt.timedelta(days=1), at, tzinfo=local.tzinfo)
        return Hold(f"daily:{due.isoformat()}", due.astimezone(dt.UTC))
    if plan.working_hours.contains(local):
        return None
    begins = plan.working_hours.next_start(local)
    return Hold(f"working:{begins.isoformat()}", begins.astimezone(dt.UTC))


def out_of_hours_copy(
    alert: Alert, plan: DeliveryPlan, agency_team: str | None, now: dt.datetime
) -> str | None:
    """The address an URGENT alert is also sent to outside working hours, if any."""
    if alert.urgency is not Urgency.URGENT:
        return None
    if plan.working_hours.contains(now.astimezone(plan.zone)):
        return None
    agency = alert.recipient_id.split("/", 1)[0]
    return plan.contact(agency, agency_team, "out_of_hours")
