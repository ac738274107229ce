"""Messages between the hub's stages, on its internal topics (see docs/architecture.md).

``ingested_at`` is the Kafka timestamp of the agency's original message: the hub's
end-to-end latency is measured from it to the mail server's acceptance.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .model import Event
from .policy import Link
from .team import Team


@dataclass(frozen=True, slots=True)
class ToResolve:
    """ingest -> identity resolver (one ordered partition)."""

    event: Event
    ingested_at: dt.datetime


@dataclass(frozen=True, slots=True)
class PersonEvent:
    """resolver -> the partition of ``person_id``: an event about that person."""

    event: Event
    person_id: str
    related: tuple[tuple[str, str], ...]  # (person id, relationship) of related persons
    ingested_at: dt.datetime


@dataclass(frozen=True, slots=True)
class FanOut:
    """An event about ``about_person_id`` that reaches the child ``person_id`` via ``link``."""

    event: Event
    person_id: str
    about_person_id: str
    link: Link
    ingested_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Merge:
    """resolver -> the partition of ``from_id``: hand your state over to ``into_id``."""

    from_id: str
    into_id: str


@dataclass(frozen=True, slots=True)
class Handover:
    """-> the partition of ``into_id``: absorb the state of a merged person."""

    from_id: str
    into_id: str
    team: Team


PersonMessage = PersonEvent | FanOut | Merge | Handover


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """delivery -> hub.delivery: what happened to one alert (no content)."""

    alert_id: str
    recipient_id: str
    status: str  # SENT, DUPLICATE, FAILED
    at: dt.datetime
    detail: str = ""
