"""Builders for synthetic events in their JSON form (what ``hub publish`` reads).

Only invented people: NHS numbers from the 999 test range with valid check digits, UPNs
of the fictional local authority 999, email addresses at ``.example`` domains.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path
from typing import Any

from involvement_hub_devtools.synthetic import nhs_number, upn

_ids = itertools.count(1)
NOW = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)


def person(
    n: int, *, given: str = "Kit", family: str = "Ashdown", born: str = "2017-03-14"
) -> dict[str, Any]:
    return {
        "identifiers": [
            {"scheme": "nhs_number", "value": nhs_number(n)},
            {"scheme": "upn", "value": upn(n)},
        ],
        "given_name": given,
        "family_name": family,
        "date_of_birth": born,
        "address": {"uprn": f"99900{n:07d}", "postcode": "ZZ99 3AA"},
    }


def practitioner(pid: str, name: str, domain: str, role: str = "social worker") -> dict[str, Any]:
    return {
        "practitioner_id": pid,
        "name": name,
        "role": role,
        "email": f"{name.lower().replace(' ', '.')}@{domain}.example",
        "phone": "01632 960001",
        "team": "Team North",
        "out_of_hours_phone": "01632 960999",
    }


def envelope(
    agency: str, ref: str, subject: dict[str, Any], *, at: dt.datetime | None = None
) -> dict[str, Any]:
    when = (at or NOW + dt.timedelta(seconds=next(_ids))).isoformat()
    return {
        "event_id": f"evt-{next(_ids)}",
        "occurred_at": when,
        "recorded_at": when,
        "source": {"agency_id": agency, "system": "test-system", "record_ref": ref},
        "subject": subject,
    }


def involvement(
    agency: str,
    ref: str,
    subject: dict[str, Any],
    who: dict[str, Any],
    *,
    involvement_id: str,
    change: str = "STARTED",
    lead: bool = False,
    category: str = "SOCIAL_CARE",
    consent: bool | None = None,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    record = {
        "schema": "Involvement",
        **envelope(agency, ref, subject, at=at),
        "involvement_id": involvement_id,
        "change": change,
        "service": {
            "service_id": f"{agency}-svc",
            "name": f"{agency} service",
            "category": category,
            "level": "TARGETED",
        },
        "practitioner": who,
        "is_lead": lead,
        "lawful_basis": "PUBLIC_TASK",
        "consent_to_share": consent,
        "started_on": "2026-10-01",
    }
    if change == "ENDED":
        record["ended_on"] = "2026-11-01"
        record["end_reason"] = "case closed"
    return record


def life_event(
    agency: str,
    ref: str,
    subject: dict[str, Any],
    kind: str,
    *,
    urgency: str = "ROUTINE",
    details: dict[str, str] | None = None,
    at: dt.datetime | None = None,
    related: list[dict[str, Any]] | None = None,
    new_address: dict[str, Any] | None = None,
) -> dict[str, Any]:
    record = {
        "schema": "LifeEvent",
        **envelope(agency, ref, subject, at=at),
        "kind": kind,
        "urgency": urgency,
        "details": details or {},
    }
    if related is not None:
        record["related"] = related
    if new_address is not None:
        record["new_address"] = new_address
    return record


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


# --- Builders for multi-agency stories (tests/e2e/test_scenarios.py) -------------------


def person_ref(
    *,
    nhs: int | None = None,
    upn_n: int | None = None,
    la_person_id: str | None = None,
    police_id: str | None = None,
    given: str | None = None,
    family: str | None = None,
    born: str | None = None,
    uprn: str | None = None,
    postcode: str | None = None,
) -> dict[str, Any]:
    """A person as one agency records them: only the identifiers that agency holds."""
    identifiers = []
    if nhs is not None:
        identifiers.append({"scheme": "nhs_number", "value": nhs_number(nhs)})
    if upn_n is not None:
        identifiers.append({"scheme": "upn", "value": upn(upn_n)})
    if la_person_id is not None:
        identifiers.append({"scheme": "la_person_id", "value": la_person_id})
    if police_id is not None:
        identifiers.append({"scheme": "police_id", "value": police_id})
    ref: dict[str, Any] = {"identifiers": identifiers}
    for field, value in (("given_name", given), ("family_name", family), ("date_of_birth", born)):
        if value is not None:
            ref[field] = value
    if uprn is not None or postcode is not None:
        ref["address"] = {"uprn": uprn, "postcode": postcode}
    return ref


def service(service_id: str, name: str, category: str, level: str = "TARGETED") -> dict[str, Any]:
    return {"service_id": service_id, "name": name, "category": category, "level": level}


def safeguarding_override(authorised_by: str, reason: str, at: dt.datetime) -> dict[str, Any]:
    return {"authorised_by": authorised_by, "reason": reason, "authorised_at": at.isoformat()}


def involvement_v2(
    agency: str,
    ref: str,
    subject: dict[str, Any],
    who: dict[str, Any],
    *,
    involvement_id: str,
    serving: dict[str, Any],
    at: dt.datetime,
    change: str = "STARTED",
    lead: bool = False,
    consent: bool | None = None,
    override: dict[str, Any] | None = None,
    started_on: dt.date | None = None,
    end_reason: str = "case closed",
) -> dict[str, Any]:
    """An Involvement in the current (v2) schema, with its own service and dates."""
    record = {
        "schema": "Involvement",
        **envelope(agency, ref, subject, at=at),
        "involvement_id": involvement_id,
        "change": change,
        "service": serving,
        "practitioner": who,
        "is_lead": lead,
        "lawful_basis": "PUBLIC_TASK",
        "consent_to_share": consent,
        "safeguarding_override": override,
        "started_on": (started_on or at.date()).isoformat(),
    }
    if change == "ENDED":
        record["ended_on"] = at.date().isoformat()
        record["end_reason"] = end_reason
    return record


def related(person: dict[str, Any], relationship: str) -> dict[str, Any]:
    """A LifeEvent's related person: ``relationship`` is what they are to the subject."""
    return {"person": person, "relationship": relationship}


def relationship(
    agency: str,
    ref: str,
    subject: dict[str, Any],
    kind: str,
    related_person: dict[str, Any],
    *,
    at: dt.datetime,
    change: str = "STARTED",
) -> dict[str, Any]:
    """A Relationship: reads ``subject <kind> related_person`` (for example PARENT_OF)."""
    return {
        "schema": "Relationship",
        **envelope(agency, ref, subject, at=at),
        "relationship": kind,
        "related_person": related_person,
        "change": change,
    }


def subscription(
    agency: str,
    ref: str,
    subject: dict[str, Any],
    who: dict[str, Any],
    *,
    subscription_id: str,
    kinds: list[str],
    reason: str,
    at: dt.datetime,
    change: str = "STARTED",
) -> dict[str, Any]:
    """An explicit Subscription, as the schema's documentation describes it."""
    return {
        "schema": "Subscription",
        **envelope(agency, ref, subject, at=at),
        "subscription_id": subscription_id,
        "change": change,
        "practitioner": who,
        "kinds": kinds,
        "reason": reason,
    }
