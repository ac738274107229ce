"""Synthetic people, practitioners and domain events shared by the unit tests.

Only synthetic people: NHS numbers from the 999 test range with valid check digits, UPNs of
the fictional local authority 999, ZZ99 pseudo-postcodes, ``.example`` email domains and
obviously fictional names.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from involvement_hub.core.model import (
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
    Service,
    ServiceCategory,
    ServiceLevel,
    Source,
    Urgency,
)
from involvement_hub.core.policy import Link, Policy
from involvement_hub.core.routing import Decision, route
from involvement_hub.core.subscriptions import SubscriptionRules
from involvement_hub.core.team import Team, apply_involvement
from involvement_hub_devtools.synthetic import nhs_number, upn

REPO = Path(__file__).resolve().parents[2]
POLICY_FILE = REPO / "governance" / "policy.toml"
RULES_DIR = REPO / "subscriptions"

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
CHILD_ID = "P-CHILD-TEST"

CHILD_NHS = nhs_number(7)
CHILD_UPN = upn(7)
CHILD_GIVEN = "Robin"
CHILD_FAMILY = "Testperson"
CHILD_DOB = dt.date(2017, 3, 14)
CHILD_UPRN = "999000000101"
CHILD_POSTCODE = "ZZ99 3AZ"
CHILD = PersonRef(
    identifiers=(Identifier("nhs_number", CHILD_NHS), Identifier("upn", CHILD_UPN)),
    given_name=CHILD_GIVEN,
    family_name=CHILD_FAMILY,
    date_of_birth=CHILD_DOB,
    address=Address(uprn=CHILD_UPRN, postcode=CHILD_POSTCODE),
)
# What must never leave the hub in an alert or an audit record (IG-4, IG-5).
CHILD_PERSONAL_DATA = (
    CHILD_NHS,
    CHILD_UPN,
    CHILD_GIVEN,
    CHILD_FAMILY,
    CHILD_DOB.isoformat(),
    CHILD_UPRN,
    CHILD_POSTCODE,
)


def practitioner(practitioner_id: str, name: str | None = None) -> Practitioner:
    return Practitioner(
        practitioner_id=practitioner_id,
        name=name or f"Fictional Worker {practitioner_id}",
        role="key worker",
        email=f"{practitioner_id.lower()}@northshire.example",
        phone="01632 960001",
        team="Imaginary Team",
        out_of_hours_phone="01632 960999",
    )


def involvement(
    involvement_id: str,
    *,
    agency: str = "northshire-social-care",
    practitioner_id: str = "PR-1",
    practitioner_name: str | None = None,
    change: InvolvementChange = InvolvementChange.STARTED,
    category: ServiceCategory = ServiceCategory.SOCIAL_CARE,
    is_lead: bool = False,
    consent: bool | None = None,
    at: dt.datetime = NOW - dt.timedelta(days=1),
    event_id: str | None = None,
    record_ref: str | None = None,
    subject: PersonRef = CHILD,
    end_reason: str | None = None,
) -> InvolvementEvent:
    """An involvement event; the defaults make a social-care STARTED a day before NOW."""
    return InvolvementEvent(
        envelope=Envelope(
            event_id=event_id or f"{involvement_id}-{change.value}-{at.isoformat()}",
            occurred_at=at,
            recorded_at=at + dt.timedelta(minutes=5),
            source=Source(agency, "case-system", record_ref or f"CASE-{agency}-{involvement_id}"),
            subject=subject,
        ),
        involvement_id=involvement_id,
        change=change,
        service=Service(
            service_id=f"SVC-{category.value}",
            name=f"Imaginary {category.value.replace('_', ' ').title()} Service",
            category=category,
            level=ServiceLevel.TARGETED,
        ),
        practitioner=practitioner(practitioner_id, practitioner_name),
        is_lead=is_lead,
        lawful_basis=LawfulBasis.PUBLIC_TASK,
        consent_to_share=consent,
        started_on=(at - dt.timedelta(days=30)).date(),
        ended_on=at.date() if change is InvolvementChange.ENDED else None,
        end_reason=end_reason,
    )


def life_event(
    kind: LifeEventKind = LifeEventKind.SCHOOL_EXCLUSION,
    *,
    agency: str = "oakfield-primary",
    urgency: Urgency = Urgency.ROUTINE,
    at: dt.datetime = NOW - dt.timedelta(hours=2),
    event_id: str = "le-000001",
    details: tuple[tuple[str, str], ...] = (),
    new_address: Address | None = None,
) -> LifeEvent:
    return LifeEvent(
        envelope=Envelope(
            event_id=event_id,
            occurred_at=at,
            recorded_at=at + dt.timedelta(minutes=5),
            source=Source(agency, "school-mis", f"REF-{agency}-0001"),
            subject=CHILD,
        ),
        life_event_kind=kind,
        urgency=urgency,
        new_address=new_address,
        details=details,
    )


def team_of(*events: InvolvementEvent, person_id: str = CHILD_ID) -> Team:
    team = Team(person_id)
    for event in events:
        team = apply_involvement(team, event)
    return team


def route_for_child(
    event: Event,
    before: Team,
    *,
    policy: Policy,
    rules: SubscriptionRules,
    now: dt.datetime = NOW,
) -> tuple[list[Decision], Team]:
    """``route`` for an event about the child itself, on its team before the event; and the
    team after it (an involvement changes the team)."""
    after = apply_involvement(before, event) if isinstance(event, InvolvementEvent) else before
    decisions = route(
        event,
        person_id=CHILD_ID,
        about_person_id=CHILD_ID,
        link=Link.SELF,
        before=before,
        after=after,
        policy=policy,
        rules=rules,
        now=now,
    )
    return list(decisions), after
