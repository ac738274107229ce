"""Family stories for the in-memory pipeline (core.simulation), built as a hub sees them.

Each record is written in the agencies' JSON form, encoded with the producer library and
decoded again, then turned into a domain event by ``event_from_record``: what a Faust agent
would hand the core. Only synthetic people: NHS numbers and UPNs from
``involvement_hub_devtools.synthetic``, ZZ99 postcodes, UPRNs starting 99900, ``.example`` emails.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from involvement_hub.config import load_config
from involvement_hub.core.household import HouseholdState
from involvement_hub.core.identity import normalise
from involvement_hub.core.model import Event, Identifier
from involvement_hub.core.person_stage import Context
from involvement_hub.core.policy import Link
from involvement_hub.core.records import event_from_record
from involvement_hub.core.simulation import Simulation
from involvement_hub.settings import Settings
from involvement_hub_devtools.synthetic import nhs_number, upn
from involvement_hub_producer import decode, encode, from_json

from support import records
from support.records import practitioner as staff

REPO = Path(__file__).resolve().parents[2]
CONFIG = load_config(
    Settings(
        policy_file=REPO / "governance" / "policy.toml", subscriptions_dir=REPO / "subscriptions"
    )
)
UTC = dt.UTC
T0 = dt.datetime(2026, 11, 1, 9, 0, tzinfo=UTC)  # stories happen from here on
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # when the hub routes them
RETENTION = dt.timedelta(days=90)
REGISTRY = CONFIG.registry


def event(record: dict[str, Any]) -> Event:
    """A JSON-form record (with its ``schema`` key) as the hub would decode it."""
    record = dict(record)
    name = record.pop("schema")
    schema = REGISTRY.current(name)
    decoded = decode(encode(from_json(record, schema.source), schema), REGISTRY)
    return event_from_record(decoded.name, decoded.record)


def context(now: dt.datetime = NOW) -> Context:
    return Context(CONFIG.policy, CONFIG.rules, RETENTION, now)


def simulation(*, now: dt.datetime = NOW) -> Simulation:
    return Simulation(context(now))


def play(sim: Simulation, records: Iterable[dict[str, Any]]) -> Simulation:
    """Publish each record and let the pipeline settle after each, as a slow trickle would."""
    for record in records:
        sim.publish(event(record))
        sim.run()
    return sim


# --- people -------------------------------------------------------------------------------


def uprn(n: int) -> str:
    return f"99900{n:07d}"


def someone(
    n: int,
    given: str,
    family: str,
    born: str,
    *,
    home: int | None = None,
    pupil: bool = False,
    nhs: bool = True,
) -> dict[str, Any]:
    """A person as an agency knows them; ``home`` is the number of their UPRN."""
    identifiers = []
    if nhs:
        identifiers.append({"scheme": "nhs_number", "value": nhs_number(n)})
    if pupil:
        identifiers.append({"scheme": "upn", "value": upn(n)})
    return {
        "identifiers": identifiers,
        "given_name": given,
        "family_name": family,
        "date_of_birth": born,
        "address": None if home is None else {"uprn": uprn(home), "postcode": "ZZ99 1AA"},
    }


def pid(sim: Simulation, person: dict[str, Any]) -> str:
    """The hub id the simulation's resolver holds for ``person`` (by its first identifier)."""
    first = person["identifiers"][0]
    key = normalise(Identifier(first["scheme"], first["value"])).key
    return sim.identity.person_of[key]


# --- records ------------------------------------------------------------------------------


def _envelope(agency: str, ref: str, subject: dict[str, Any], at: int) -> dict[str, Any]:
    """``at``: minutes after T0 (the story's clock)."""
    return records.envelope(agency, ref, subject, at=T0 + dt.timedelta(minutes=at))


def involvement(
    agency: str,
    ref: str,
    subject: dict[str, Any],
    who: dict[str, Any],
    *,
    at: int,
    involvement_id: str | None = None,
    lead: bool = False,
    category: str = "SOCIAL_CARE",
    change: str = "STARTED",
    consent: bool | None = None,
    override: bool = False,
) -> dict[str, Any]:
    """``records.involvement`` on the story's clock, with a service named for its category."""
    when = T0 + dt.timedelta(minutes=at)
    record = records.involvement(
        agency,
        ref,
        subject,
        who,
        involvement_id=involvement_id or f"{agency}:{ref}",
        change=change,
        lead=lead,
        category=category,
        consent=consent,
        at=when,
    )
    record["service"] = {
        "service_id": f"{agency}-{category.lower()}",
        "name": f"{agency} {category.lower().replace('_', ' ')} service",
        "category": category,
        "level": "TARGETED",
    }
    if change == "ENDED":
        record["ended_on"] = when.date().isoformat()
    if override:
        record["safeguarding_override"] = {
            "authorised_by": "DSL-0",
            "reason": "risk of significant harm",
            "authorised_at": when.isoformat(),
        }
    return record


def life(
    agency: str,
    ref: str,
    subject: dict[str, Any],
    kind: str,
    *,
    at: int,
    related: Iterable[tuple[dict[str, Any], str]] = (),
    new_home: int | None = None,
) -> dict[str, Any]:
    return {
        "schema": "LifeEvent",
        **_envelope(agency, ref, subject, at),
        "kind": kind,
        "urgency": "ROUTINE",
        "related": [{"person": p, "relationship": r} for p, r in related],
        "new_address": None
        if new_home is None
        else {"uprn": uprn(new_home), "postcode": "ZZ99 2BB"},
        "details": {},
    }


def relationship(
    agency: str,
    ref: str,
    subject: dict[str, Any],
    kind: str,
    other: dict[str, Any],
    *,
    at: int,
    change: str = "STARTED",
) -> dict[str, Any]:
    when = T0 + dt.timedelta(minutes=at)
    return records.relationship(agency, ref, subject, kind, other, at=when, change=change)


def subscription(
    agency: str,
    ref: str,
    subject: dict[str, Any],
    who: dict[str, Any],
    *,
    at: int,
    kinds: Iterable[str] = (),
    change: str = "STARTED",
    subscription_id: str = "SUB-1",
) -> dict[str, Any]:
    return records.subscription(
        agency,
        ref,
        subject,
        who,
        subscription_id=subscription_id,
        kinds=list(kinds),
        reason="attendance support plan",
        at=T0 + dt.timedelta(minutes=at),
        change=change,
    )


def present(household: HouseholdState) -> tuple[str, ...]:
    """The person ids living at ``household`` now."""
    return tuple(m.person_id for m in household.present())


def told(sim: Simulation, kind: str | None = None) -> set[tuple[str, str, Link]]:
    """(recipient, case reference, link) of every alert sent (of ``kind``)."""
    return {
        (a.recipient_id, a.case_ref, a.link) for a in sim.alerts if kind is None or a.kind == kind
    }


def recipients(sim: Simulation, kind: str) -> set[str]:
    return {a.recipient_id for a in sim.alerts if a.kind == kind}


# --- one family's story -------------------------------------------------------------------

SW = staff("SW-1", "Alex Morgan", "social-care")
SW2 = staff("SW-2", "Nico Fairley", "social-care")
HV = staff("HV-1", "Jo Lindqvist", "health", role="health visitor")
DSL = staff("DSL-1", "Pat Quill", "oakfield", role="designated safeguarding lead")
AW = staff("AW-1", "Sam Okafor", "adult-care", role="adult social worker")


def story(*, addresses: bool) -> dict[str, dict[str, Any]]:
    """Morgan and Jesse are Ash's parents; Morgan is Bay's mother; Drew is Morgan's partner.
    The school knows Ash by UPN only. With ``addresses``, records carry each person's
    address as their agency holds it (the family's UPRN 1, Jesse's UPRN 2)."""
    home = 1 if addresses else None
    mum = someone(81, "Morgan", "Lark", "1991-01-01", home=home)
    dad = someone(82, "Jesse", "Lark", "1989-01-01", home=2 if addresses else None)
    partner = someone(83, "Drew", "Kestrel", "1988-02-02")
    ash = someone(84, "Ash", "Lark", "2016-05-05", home=home, pupil=True)
    ash_at_school = someone(84, "Ash", "Lark", "2016-05-05", home=home, pupil=True, nhs=False)
    bay = someone(85, "Bay", "Lark", "2019-06-06", home=home)
    return {
        "mum-parent-of-ash": relationship("sc", "C1", mum, "PARENT_OF", ash, at=1),
        "mum-parent-of-bay": relationship("sc", "C1", mum, "PARENT_OF", bay, at=2),
        "dad-parent-of-ash": relationship("sc", "C1", dad, "PARENT_OF", ash, at=3),
        "partners": relationship("police", "P1", mum, "PARTNER_OF", partner, at=4),
        "partners-part": relationship(
            "police", "P1", mum, "PARTNER_OF", partner, at=30, change="ENDED"
        ),
        "ash-sibling-of-bay": relationship(
            "school", "PUP-84", ash_at_school, "SIBLING_OF", bay, at=12
        ),
        "ash-lead": involvement("sc", "CIN-84", ash, SW, lead=True, at=6),
        "ash-lead-handover": involvement(
            "sc", "CIN-84", ash, SW2, involvement_id="sc:CIN-84-2", lead=True, at=27
        ),
        "ash-first-lead-ends": involvement("sc", "CIN-84", ash, SW, change="ENDED", at=28),
        "bay-lead": involvement("health", "HV-85", bay, HV, lead=True, category="HEALTH", at=7),
        "bay-lead-ends": involvement(
            "health", "HV-85", bay, HV, lead=True, category="HEALTH", change="ENDED", at=25
        ),
        "ash-school": involvement(
            "school", "PUP-84", ash_at_school, DSL, category="EDUCATION", at=8
        ),
        "mum-adult-lead": involvement(
            "adults", "AC-81", mum, AW, lead=True, category="OTHER", at=10
        ),
        "ash-admitted": life("health", "E1", ash, "HOSPITAL_ADMISSION", at=9),  # links UPN
        "dad-eviction": life("housing", "H4", dad, "EVICTION_NOTICE", at=11),
        "mum-moves": life("housing", "H2", mum, "ADDRESS_CHANGED", new_home=3, at=20),
        "ash-moves": life("housing", "H3", ash, "ADDRESS_CHANGED", new_home=3, at=21),
        "bay-moves": life("housing", "H5", bay, "ADDRESS_CHANGED", new_home=3, at=22),
        "ash-moves-again": life("housing", "H6", ash, "ADDRESS_CHANGED", new_home=4, at=40),
        "partner-custody": life("police", "CUS", partner, "POLICE_CUSTODY", at=32),
        "ash-excluded": life("school", "PUP-84", ash_at_school, "SCHOOL_EXCLUSION", at=33),
        "partner-joins": life(
            "housing", "H1", mum, "HOUSEHOLD_MEMBER_JOINED", related=[(partner, "PARTNER")], at=5
        ),
        "partner-leaves": life(
            "housing", "H1", mum, "HOUSEHOLD_MEMBER_LEFT", related=[(partner, "PARTNER")], at=31
        ),
        # An edge in flight to an id that a later record merges away:
        "bay-sibling-of-ash": relationship(
            "school", "PUP-85", bay, "SIBLING_OF", ash_at_school, at=13
        ),
    }
