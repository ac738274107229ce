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

from involvement_hub.synthetic import nhs_number, upn

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
) -> dict[str, Any]:
    return {
        "schema": "LifeEvent",
        **envelope(agency, ref, subject, at=at),
        "kind": kind,
        "urgency": urgency,
        "details": details or {},
    }


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path
