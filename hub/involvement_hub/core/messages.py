"""Messages between the hub's stages, on its internal topics (see docs/architecture.md).

``ingested_at`` is the Kafka timestamp of the agency's original message: the hub's
end-to-end latency is measured from it to the mail server's acceptance.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from .alerts import Alert
from .family import Edge, PersonState, Recent, Stamp
from .model import Event
from .policy import Link

# -- to the identity resolver (hub.identity, one partition) ---------------------------


@dataclass(frozen=True, slots=True)
class ToResolve:
    """ingest -> resolver: a decoded event whose persons need hub ids."""

    event: Event
    ingested_at: dt.datetime
    # (ingest topic and partition, offset) of the agency's record: a record the ingest
    # stage forwards twice (it is at-least-once) is taken in once.
    source: tuple[str, int] | None = None


@dataclass(frozen=True, slots=True)
class StewardDecision:
    """A data steward confirms or rejects a probable match (``hub identity``)."""

    candidate_id: str
    confirm: bool
    steward: str
    reason: str
    decided_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Watermark:
    """ingest -> the ordered stage: every record of these ``partitions`` appended at or
    before ``through`` has been forwarded (or quarantined) already. Lets the ordered stage
    take records in the order they reached Kafka, whichever partition a worker read first.
    """

    partitions: tuple[str, ...]  # "<ingest topic>/<partition>"
    through: dt.datetime


@dataclass(frozen=True, slots=True)
class Forwarded:
    """ingest -> the ordered stage: the records of one ingest batch, in the order read.

    One identity-topic message for many records: the ordered stage takes them in as if
    each had come alone, then lets go what the reorder buffer allows."""

    records: tuple[ToResolve, ...]


IdentityMessage = ToResolve | StewardDecision | Watermark | Forwarded


# -- to a person's partition (hub.person, keyed by hub person id) ---------------------


@dataclass(frozen=True, slots=True)
class PersonEvent:
    """resolver -> the partition of ``person_id``: an event about that person."""

    event: Event
    person_id: str
    related: tuple[tuple[str, str], ...]  # (person id, relationship) of related persons
    ingested_at: dt.datetime


@dataclass(frozen=True, slots=True)
class FanOut:
    """An event about ``about_person_id`` that reaches ``person_id`` through ``link``.

    ``route``: tell this person's team. ``expand``: pass it one step further, to this
    person's children (``PARENTS_PARTNER`` after a ``PARTNER`` step; ``SIBLING`` after a
    ``CHILD`` step).
    """

    event: Event
    person_id: str
    about_person_id: str
    link: Link
    route: bool
    expand: Link | None
    ingested_at: dt.datetime


@dataclass(frozen=True, slots=True)
class EdgeUpdate:
    """Record a family or household edge on ``person_id``'s side."""

    person_id: str
    edge: Edge


@dataclass(frozen=True, slots=True)
class SetHousehold:
    """Move ``person_id`` to ``uprn`` (None: left). ``only_from``: only if now at that UPRN."""

    person_id: str
    uprn: str | None
    version: Stamp
    observed: bool
    only_from: str | None = None


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
    state: PersonState


@dataclass(frozen=True, slots=True)
class RenameNeighbour:
    """-> a neighbour of a merged person: point your edges at the surviving id."""

    person_id: str
    from_id: str
    into_id: str


@dataclass(frozen=True, slots=True)
class CatchUp:
    """-> a person newly linked to ``from_id``: the recent events about ``from_id`` that
    now reach this person's team, and had reached it through no link before (catch-up on
    late links). ``trigger``: what formed the link, for the catch-up email's id."""

    person_id: str
    from_id: str
    items: tuple[Recent, ...]
    trigger: str


PersonMessage = (
    PersonEvent | FanOut | CatchUp | EdgeUpdate | SetHousehold | Merge | Handover | RenameNeighbour
)


# -- to a household's partition (hub.household, keyed by UPRN) ------------------------


@dataclass(frozen=True, slots=True)
class HouseholdChange:
    uprn: str
    person_id: str
    joined: bool
    version: tuple[int, dt.datetime, str]  # family.household_rank: stated, time, event key


@dataclass(frozen=True, slots=True)
class HouseholdRename:
    uprn: str
    from_id: str
    into_id: str


HouseholdMessage = HouseholdChange | HouseholdRename


# -- to a recipient's partition (hub.alerts, keyed by recipient id) -------------------


@dataclass(frozen=True, slots=True)
class RetryNudge:
    """The delivery ticker: this pending alert is due for another attempt."""

    recipient_id: str
    alert_id: str


@dataclass(frozen=True, slots=True)
class DigestDue:
    """The delivery ticker: this recipient's digest window has closed."""

    recipient_id: str
    window: str


AlertTopicMessage = Alert | RetryNudge | DigestDue


class DeliveryStatus(StrEnum):
    """What happened to an alert, as ``hub.delivery`` and ``hub delivery`` tell it."""

    HELD = "HELD"  # held for the recipient's digest
    SENT = "SENT"  # accepted by the mail server
    DUPLICATE = "DUPLICATE"  # read again (a replay): handled before, nothing sent again
    RETRY = "RETRY"  # the attempt failed; another is due
    FAILED = "FAILED"  # given up
    ESCALATED = "ESCALATED"  # a copy went to the escalation contact
    EXPIRED = "EXPIRED"  # not sent: the recipient's involvement ended meanwhile (IG-2)


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """delivery -> hub.delivery: what happened to one alert (no content)."""

    alert_id: str
    recipient_id: str
    status: DeliveryStatus
    at: dt.datetime
    detail: str = ""
    attempts: int = 0
    via: str | None = None  # a digest id, or the alert an escalation or copy stands for
