"""The hub's domain values, mirroring the v1 Avro schemas (schemas/*.avsc).

Values are frozen and hashable; collections are tuples. Enumerations are ``StrEnum`` so
that their values are the Avro symbols.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum


class ServiceCategory(StrEnum):
    SOCIAL_CARE = "SOCIAL_CARE"
    EARLY_HELP = "EARLY_HELP"
    EDUCATION = "EDUCATION"
    HEALTH = "HEALTH"
    MENTAL_HEALTH = "MENTAL_HEALTH"
    SEXUAL_HEALTH = "SEXUAL_HEALTH"
    SUBSTANCE_MISUSE = "SUBSTANCE_MISUSE"
    POLICE = "POLICE"
    YOUTH_JUSTICE = "YOUTH_JUSTICE"
    HOUSING = "HOUSING"
    DOMESTIC_ABUSE_SUPPORT = "DOMESTIC_ABUSE_SUPPORT"
    OTHER = "OTHER"


# IG-3: involvement of these services is never revealed to others without recorded
# consent or a safeguarding override.
SENSITIVE_CATEGORIES = frozenset(
    {
        ServiceCategory.MENTAL_HEALTH,
        ServiceCategory.SEXUAL_HEALTH,
        ServiceCategory.SUBSTANCE_MISUSE,
        ServiceCategory.DOMESTIC_ABUSE_SUPPORT,
    }
)


class ServiceLevel(StrEnum):
    UNIVERSAL = "UNIVERSAL"
    TARGETED = "TARGETED"
    SPECIALIST = "SPECIALIST"
    STATUTORY = "STATUTORY"


class InvolvementChange(StrEnum):
    STARTED = "STARTED"
    UPDATED = "UPDATED"
    ENDED = "ENDED"


class LawfulBasis(StrEnum):
    CONSENT = "CONSENT"
    LEGAL_OBLIGATION = "LEGAL_OBLIGATION"
    PUBLIC_TASK = "PUBLIC_TASK"
    VITAL_INTERESTS = "VITAL_INTERESTS"


class Urgency(StrEnum):
    ROUTINE = "ROUTINE"
    PRIORITY = "PRIORITY"
    URGENT = "URGENT"


class LifeEventKind(StrEnum):
    ADDRESS_CHANGED = "ADDRESS_CHANGED"
    HOUSEHOLD_MEMBER_JOINED = "HOUSEHOLD_MEMBER_JOINED"
    HOUSEHOLD_MEMBER_LEFT = "HOUSEHOLD_MEMBER_LEFT"
    PARENTAL_SEPARATION = "PARENTAL_SEPARATION"
    BIRTH = "BIRTH"
    DEATH = "DEATH"
    DOMESTIC_ABUSE_INCIDENT = "DOMESTIC_ABUSE_INCIDENT"
    MISSING_EPISODE = "MISSING_EPISODE"
    POLICE_CUSTODY = "POLICE_CUSTODY"
    SCHOOL_EXCLUSION = "SCHOOL_EXCLUSION"
    SCHOOL_CHANGE = "SCHOOL_CHANGE"
    PERSISTENT_ABSENCE = "PERSISTENT_ABSENCE"
    HOSPITAL_ATTENDANCE = "HOSPITAL_ATTENDANCE"
    HOSPITAL_ADMISSION = "HOSPITAL_ADMISSION"
    EVICTION_NOTICE = "EVICTION_NOTICE"
    HOMELESSNESS_APPLICATION = "HOMELESSNESS_APPLICATION"
    CARER_CHANGED = "CARER_CHANGED"
    OTHER = "OTHER"


class RelationshipToSubject(StrEnum):
    PARENT = "PARENT"
    CHILD = "CHILD"
    SIBLING = "SIBLING"
    PARTNER = "PARTNER"
    CARER = "CARER"
    HOUSEHOLD_MEMBER = "HOUSEHOLD_MEMBER"
    OTHER = "OTHER"


class RelationshipKind(StrEnum):
    PARENT_OF = "PARENT_OF"
    SIBLING_OF = "SIBLING_OF"
    PARTNER_OF = "PARTNER_OF"
    CARER_OF = "CARER_OF"
    HOUSEHOLD_MEMBER_WITH = "HOUSEHOLD_MEMBER_WITH"


class RelationshipChange(StrEnum):
    STARTED = "STARTED"
    ENDED = "ENDED"


@dataclass(frozen=True, slots=True)
class Identifier:
    scheme: str
    value: str

    @property
    def key(self) -> str:
        return f"{self.scheme}:{self.value}"


@dataclass(frozen=True, slots=True)
class Address:
    uprn: str | None = None
    postcode: str | None = None


@dataclass(frozen=True, slots=True)
class PersonRef:
    identifiers: tuple[Identifier, ...]
    given_name: str | None = None
    family_name: str | None = None
    date_of_birth: dt.date | None = None
    address: Address | None = None


@dataclass(frozen=True, slots=True)
class Source:
    agency_id: str
    system: str
    record_ref: str


@dataclass(frozen=True, slots=True)
class Envelope:
    event_id: str
    occurred_at: dt.datetime
    recorded_at: dt.datetime
    source: Source
    subject: PersonRef

    @property
    def key(self) -> str:
        """Unique across agencies: an event id is unique only per producing agency."""
        return f"{self.source.agency_id}/{self.event_id}"


@dataclass(frozen=True, slots=True)
class Service:
    service_id: str
    name: str
    category: ServiceCategory
    level: ServiceLevel

    @property
    def sensitive(self) -> bool:
        return self.category in SENSITIVE_CATEGORIES


@dataclass(frozen=True, slots=True)
class Practitioner:
    practitioner_id: str
    name: str
    role: str
    email: str
    phone: str | None = None
    team: str | None = None
    out_of_hours_phone: str | None = None


@dataclass(frozen=True, slots=True)
class SafeguardingOverride:
    """A recorded decision that an involvement must be shared for a child's safety."""

    authorised_by: str
    reason: str
    authorised_at: dt.datetime


@dataclass(frozen=True, slots=True)
class InvolvementEvent:
    envelope: Envelope
    involvement_id: str
    change: InvolvementChange
    service: Service
    practitioner: Practitioner
    is_lead: bool
    lawful_basis: LawfulBasis
    consent_to_share: bool | None
    started_on: dt.date
    ended_on: dt.date | None = None
    end_reason: str | None = None
    safeguarding_override: SafeguardingOverride | None = None

    @property
    def kind(self) -> str:
        return f"INVOLVEMENT_{self.change.value}"


@dataclass(frozen=True, slots=True)
class RelatedPerson:
    person: PersonRef
    relationship: RelationshipToSubject


@dataclass(frozen=True, slots=True)
class LifeEvent:
    envelope: Envelope
    life_event_kind: LifeEventKind
    urgency: Urgency
    related: tuple[RelatedPerson, ...] = ()
    new_address: Address | None = None
    details: tuple[tuple[str, str], ...] = ()

    @property
    def kind(self) -> str:
        return self.life_event_kind.value


@dataclass(frozen=True, slots=True)
class RelationshipEvent:
    envelope: Envelope
    relationship: RelationshipKind
    related_person: PersonRef
    change: RelationshipChange

    @property
    def kind(self) -> str:
        return f"RELATIONSHIP_{self.change.value}"


class SubscriptionChange(StrEnum):
    STARTED = "STARTED"
    ENDED = "ENDED"


@dataclass(frozen=True, slots=True)
class SubscriptionEvent:
    """A practitioner asks (or stops asking) to be told about the subject explicitly."""

    envelope: Envelope
    subscription_id: str
    change: SubscriptionChange
    practitioner: Practitioner
    kinds: tuple[str, ...]
    reason: str

    @property
    def kind(self) -> str:
        return f"SUBSCRIPTION_{self.change.value}"


Event = InvolvementEvent | LifeEvent | RelationshipEvent | SubscriptionEvent
