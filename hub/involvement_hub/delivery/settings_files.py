"""Reading (and, for preferences, writing) the delivery files in ``subscriptions/``."""

from __future__ import annotations

import datetime as dt
import logging
import time
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from involvement_hub.core.delivery_plan import Contact, DeliveryPlan, Mode, Preference, WorkingHours
from involvement_hub.errors import SubscriptionError

log = logging.getLogger(__name__)

DELIVERY_FILE = "delivery.toml"
PREFERENCES_FILE = "preferences.toml"
_DAYS = {"MON": 0, "TUE": 1, "WED": 2, "THU": 3, "FRI": 4, "SAT": 5, "SUN": 6}
_PREFERENCES_HEADER = """\
# Practitioners' preferences for ROUTINE alerts. Managed with `hub preferences set`; the
# worker reads it at start and again whenever it changes.
# mode: immediate | hourly | daily (with at = "HH:MM") | working_hours
"""


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise SubscriptionError(f"delivery file not found: {path}") from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SubscriptionError(f"{path}: {exc}") from exc


def _time(value: Any, where: str) -> dt.time:
    try:
        return dt.time.fromisoformat(str(value))
    except ValueError:
        raise SubscriptionError(f"{where}: {value!r} is not a time (HH:MM)") from None


def _preference(raw: Mapping[str, Any], where: str) -> Preference:
    try:
        mode = Mode(raw.get("mode", "immediate"))
    except ValueError:
        allowed = ", ".join(m.value for m in Mode)
        raise SubscriptionError(f"{where}: mode must be one of {allowed}") from None
    at = _time(raw["at"], where) if "at" in raw else None
    if mode is Mode.DAILY and at is None:
        raise SubscriptionError(f'{where}: a daily digest needs at = "HH:MM"')
    return Preference(mode, at)


def load_plan(folder: Path) -> DeliveryPlan:
    delivery = folder / DELIVERY_FILE
    data = _read(delivery)
    where = str(delivery)
    unknown = sorted(set(data) - {"timezone", "default_mode", "working_hours", "contact"})
    if unknown:
        raise SubscriptionError(f"{where}: unknown key '{unknown[0]}'")
    hours_raw = data.get("working_hours", {})
    try:
        days = frozenset(
            _DAYS[d] for d in hours_raw.get("days", ["MON", "TUE", "WED", "THU", "FRI"])
        )
    except KeyError as exc:
        raise SubscriptionError(
            f"{where}: working_hours.days: unknown day {exc.args[0]!r}"
        ) from None
    hours = WorkingHours(
        _time(hours_raw.get("start", "09:00"), f"{where}: working_hours.start"),
        _time(hours_raw.get("end", "17:00"), f"{where}: working_hours.end"),
        days,
    )
    if not days or hours.start >= hours.end:
        raise SubscriptionError(f"{where}: working_hours must name days and start before they end")
    contacts = []
    for index, raw in enumerate(data.get("contact", [])):
        cwhere = f"{where}: contact {index + 1}"
        if "agency" not in raw or not ({"escalation", "out_of_hours"} & set(raw)):
            raise SubscriptionError(
                f"{cwhere}: needs an agency and an escalation or out_of_hours address"
            )
        extra = sorted(set(raw) - {"agency", "team", "escalation", "out_of_hours"})
        if extra:
            # A misspelt key would silently lose an escalation address.
            raise SubscriptionError(f"{cwhere}: unknown key '{extra[0]}'")

        for field in ("escalation", "out_of_hours"):
            if field in raw and "@" not in str(raw[field]):
                raise SubscriptionError(f"{cwhere}: {field} is not an email address")
        contacts.append(
            Contact(raw["agency"], raw.get("team"), raw.get("escalation"), raw.get("out_of_hours"))
        )
    plan = DeliveryPlan(
        timezone=str(data.get("timezone", "Europe/London")),
        working_hours=hours,
        contacts=tuple(contacts),
        default=_preference(
            {"mode": data.get("default_mode", "immediate")}, f"{where}: default_mode"
        ),
        preferences=load_preferences(folder),
    )
    try:
        _ = plan.zone
    except Exception as exc:  # zoneinfo raises several types for a bad name
        raise SubscriptionError(f"{where}: unknown timezone {plan.timezone!r}") from exc
    return plan


def load_preferences(folder: Path) -> dict[str, Preference]:
    path = folder / PREFERENCES_FILE
    if not path.exists():
        return {}
    data = _read(path)
    found: dict[str, Preference] = {}
    for index, raw in enumerate(data.get("preference", [])):
        where = f"{path}: preference {index + 1}"
        recipient = raw.get("practitioner")
        if not isinstance(recipient, str) or "/" not in recipient:
            raise SubscriptionError(f"{where}: practitioner must be agency/practitioner_id")
        found[recipient] = _preference(raw, where)
    return found


def write_preferences(folder: Path, preferences: Mapping[str, Preference]) -> Path:
    """Rewrite the preferences file (atomically), one [[preference]] per practitioner."""
    path = folder / PREFERENCES_FILE
    blocks = []
    for recipient in sorted(preferences):
        pref = preferences[recipient]
        lines = ["[[preference]]", f'practitioner = "{recipient}"', f'mode = "{pref.mode.value}"']
        if pref.at is not None:
            # Seconds are kept when given: tests close a digest window a few seconds ahead.
            spec = "seconds" if pref.at.second else "minutes"
            lines.append(f'at = "{pref.at.isoformat(timespec=spec)}"')
        blocks.append("\n".join(lines))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(_PREFERENCES_HEADER + "".join(f"\n{b}\n" for b in blocks), "utf-8")
    tmp.replace(path)
    return path


class PlanSource:
    """The delivery plan, read again when the preferences file changes (checked at most
    every ``interval`` seconds), so `hub preferences set` needs no restart."""

    def __init__(self, folder: Path, plan: DeliveryPlan, interval: float = 10.0) -> None:
        self._folder = folder
        self._plan = plan
        self._interval = interval
        self._checked = time.monotonic()
        self._stamp = self._mtime()

    def _mtime(self) -> float:
        try:
            return (self._folder / PREFERENCES_FILE).stat().st_mtime
        except OSError:
            return 0.0

    def __call__(self) -> DeliveryPlan:
        now = time.monotonic()
        if now - self._checked >= self._interval:
            self._checked = now
            stamp = self._mtime()
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._plan = replace(self._plan, preferences=load_preferences(self._folder))
                except SubscriptionError as exc:
                    log.error("preferences not reloaded, keeping the previous ones: %s", exc)
        return self._plan
