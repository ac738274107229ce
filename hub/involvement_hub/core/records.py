"""Decoded Avro records (plain dicts in the current reader schema) to domain values.

This is where a decoded event is checked for what the schema cannot say: that the subject
has a usable identifier and ``details`` is small. A failure is :class:`RejectedEvent` with a
fixed reason token, and the event is quarantined rather than routed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from .errors import RejectedEvent
from .identity import usable_keys
from .model import (
    Address,
    Envelope,
    Event,
    Identifier,
    InvolvementChange,
    InvolvementEvent,
    LawfulBasis,
    LifeEvent,
    LifeEventKind,
    PersonRef,
    Practitioner,
    RelatedPerson,
    RelationshipChange,
    RelationshipEvent,
    RelationshipKind,
    RelationshipToSubject,
    SafeguardingOverride,
    Service,
    ServiceCategory,
    ServiceLevel,
    Source,
    SubscriptionChange,
    SubscriptionEvent,
    Urgency,
)
from .policy import all_kinds
from .reasons import Reason

_KNOWN_KINDS = frozenset(all_kinds())

MAX_DETAILS = 20
MAX_DETAIL_CHARS = 200
MAX_RELATED = 20


def event_from_record(name: str, record: Mapping[str, Any]) -> Event:
    """Build the domain event for a decoded record of type ``name``."""
    envelope = _envelope(record)
    if name == "Involvement":
        return _involvement(envelope, record)
    if name == "LifeEvent":
        return _life_event(envelope, record)
    if name == "Relationship":
        return RelationshipEvent(
            envelope=envelope,
            relationship=RelationshipKind(record["relationship"]),
            related_person=_person(record["related_person"], "related_person"),
            change=RelationshipChange(record["change"]),
        )
    if name == "Subscription":
        return _subscription(envelope, record)
    raise RejectedEvent(Reason.UNKNOWN_RECORD_TYPE, f"no domain mapping for {name}")


def _envelope(record: Mapping[str, Any]) -> Envelope:
    source = record["source"]
    return Envelope(
        event_id=record["event_id"],
        occurred_at=_utc(record["occurred_at"]),
        recorded_at=_utc(record["recorded_at"]),
        source=Source(source["agency_id"], source["system"], source["record_ref"]),
        subject=_person(record["subject"], "subject"),
    )


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _person(raw: Mapping[str, Any], where: str) -> PersonRef:
    identifiers = tuple(Identifier(i["scheme"], i["value"]) for i in raw["identifiers"])
    keys, _ = usable_keys(identifiers)
    if not keys:
        raise RejectedEvent(Reason.NO_USABLE_IDENTIFIER, f"{where} has no valid strong identifier")
    address = raw.get("address")
    return PersonRef(
        identifiers=identifiers,
        given_name=raw.get("given_name"),
        family_name=raw.get("family_name"),
        date_of_birth=raw.get("date_of_birth"),
        address=_address(address),
    )


def _address(raw: Mapping[str, Any] | None) -> Address | None:
    if raw is None:
        return None
    return Address(uprn=raw.get("uprn"), postcode=raw.get("postcode"))


def _involvement(envelope: Envelope, record: Mapping[str, Any]) -> InvolvementEvent:
    service = record["service"]
    practitioner = record["practitioner"]
    return InvolvementEvent(
        envelope=envelope,
        involvement_id=record["involvement_id"],
        change=InvolvementChange(record["change"]),
        service=Service(
            service_id=service["service_id"],
            name=service["name"],
            category=ServiceCategory(service["category"]),
            level=ServiceLevel(service["level"]),
        ),
        practitioner=_practitioner(practitioner),
        is_lead=bool(record["is_lead"]),
        lawful_basis=LawfulBasis(record["lawful_basis"]),
        consent_to_share=record.get("consent_to_share"),
        started_on=record["started_on"],
        ended_on=record.get("ended_on"),
        end_reason=record.get("end_reason"),
        safeguarding_override=_override(record.get("safeguarding_override")),
    )


def _practitioner(raw: Mapping[str, Any]) -> Practitioner:
    return Practitioner(
        practitioner_id=raw["practitioner_id"],
        name=raw["name"],
        role=raw["role"],
        email=raw["email"],
        phone=raw.get("phone"),
        team=raw.get("team"),
        out_of_hours_phone=raw.get("out_of_hours_phone"),
    )


def _override(raw: Mapping[str, Any] | None) -> SafeguardingOverride | None:
    if raw is None:
        return None
    return SafeguardingOverride(raw["authorised_by"], raw["reason"], _utc(raw["authorised_at"]))


def _subscription(envelope: Envelope, record: Mapping[str, Any]) -> SubscriptionEvent:
    reason = (record.get("reason") or "").strip()
    if not reason:
        raise RejectedEvent(
            Reason.SUBSCRIPTION_WITHOUT_REASON, "a subscription needs a stated reason"
        )
    kinds = tuple(dict.fromkeys(str(k) for k in record.get("kinds") or ()))
    unknown = [k for k in kinds if k not in _KNOWN_KINDS]
    if unknown:
        raise RejectedEvent(
            Reason.UNKNOWN_KIND, f"subscription names unknown kinds: {', '.join(unknown[:3])}"
        )
    return SubscriptionEvent(
        envelope=envelope,
        subscription_id=record["subscription_id"],
        change=SubscriptionChange(record["change"]),
        practitioner=_practitioner(record["practitioner"]),
        kinds=kinds,
        reason=reason[:200],
    )


def _life_event(envelope: Envelope, record: Mapping[str, Any]) -> LifeEvent:
    details = record.get("details") or {}
    if len(details) > MAX_DETAILS or any(
        len(k) > MAX_DETAIL_CHARS or len(v) > MAX_DETAIL_CHARS for k, v in details.items()
    ):
        raise RejectedEvent(
            Reason.DETAILS_TOO_LARGE,
            f"details may hold {MAX_DETAILS} entries of {MAX_DETAIL_CHARS} characters",
        )
    related = record.get("related") or []
    if len(related) > MAX_RELATED:
        raise RejectedEvent(Reason.TOO_MANY_RELATED, f"at most {MAX_RELATED} related persons")
    return LifeEvent(
        envelope=envelope,
        life_event_kind=LifeEventKind(record["kind"]),
        urgency=Urgency(record["urgency"]),
        related=tuple(
            RelatedPerson(
                _person(r["person"], f"related[{i}].person"),
                RelationshipToSubject(r["relationship"]),
            )
            for i, r in enumerate(related)
        ),
        new_address=_address(record.get("new_address")),
        details=tuple(sorted(details.items())),
    )
