"""Family stories through the whole in-memory pipeline (core/simulation.py) with the shipped
policy and rules: who is told what about whom, through which link, and who is not.

Events are built as agencies write them and decoded as the hub decodes them (support.family_story).
Synthetic people only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from involvement_hub.core.model import InvolvementEvent
from involvement_hub.core.policy import Link, RecipientRole
from involvement_hub.core.routing import Outcome, Suppression
from involvement_hub.core.simulation import Simulation
from support.family_story import (
    NOW,
    T0,
    context,
    event,
    involvement,
    life,
    pid,
    play,
    present,
    recipients,
    relationship,
    simulation,
    someone,
    staff,
    subscription,
    told,
    uprn,
)

Record = dict[str, Any]
SC = "northshire-social-care"
HEALTH = "northshire-health"
ADULTS = "northshire-adult-care"
SCHOOL = "oakfield-primary"
POLICE = "northshire-police"
HOUSING = "northshire-housing"

MUM = someone(41, "Morgan", "Vale", "1990-01-01", home=777)
ASH = someone(42, "Ash", "Vale", "2016-05-05", home=777, pupil=True)
BAY = someone(43, "Bay", "Vale", "2019-06-06", home=777, pupil=True)
DREW = someone(44, "Drew", "Kestrel", "1988-02-02")
SW = staff("SW-1", "Alex Morgan", "social-care")
HV = staff("HV-1", "Jo Lindqvist", "health", role="health visitor")
AW = staff("AW-1", "Sam Okafor", "adult-care", role="adult social worker")
DSL = staff("DSL-1", "Pat Quill", "oakfield", role="designated safeguarding lead")
ASH_LEAD = f"{SC}/SW-1"
BAY_LEAD = f"{HEALTH}/HV-1"
MUM_LEAD = f"{ADULTS}/AW-1"

# Morgan is the mother of Ash and Bay; all three live at UPRN 777. Ash's lead is a social
# worker, Bay's a health visitor, and Morgan has an adult social worker of her own.
FAMILY = [
    relationship(SC, "CIN-1", MUM, "PARENT_OF", ASH, at=1),
    relationship(SC, "CIN-1", MUM, "PARENT_OF", BAY, at=2),
    involvement(SC, "CIN-42", ASH, SW, lead=True, at=3),
    involvement(HEALTH, "HV-43", BAY, HV, lead=True, category="HEALTH", at=4),
    involvement(ADULTS, "AC-41", MUM, AW, lead=True, category="OTHER", at=5),
]


def family(*more: Record) -> Simulation:
    sim = play(simulation(), FAMILY)
    sim.alerts.clear()
    sim.decisions.clear()
    sim.audit.clear()
    return play(sim, more)


def decisions_for(sim: Simulation, kind: str) -> set[tuple[str, Link, Outcome]]:
    return {(d.recipient.recipient_id, d.link, d.outcome) for d in sim.decisions if d.kind == kind}


# --- (a) an event about a parent ----------------------------------------------------------


def test_an_event_about_a_parent_reaches_each_childs_lead_as_about_a_parent() -> None:
    sim = family(life(HOUSING, "H-1", MUM, "EVICTION_NOTICE", at=10))

    assert told(sim, "EVICTION_NOTICE") == {
        (ASH_LEAD, "CIN-42", Link.PARENT),
        (BAY_LEAD, "HV-43", Link.PARENT),
        (MUM_LEAD, "AC-41", Link.SELF),
    }
    for alert in sim.alerts:
        if alert.link is Link.PARENT:
            assert "about a parent of the child" in alert.why
            assert alert.case_ref in ("CIN-42", "HV-43")
    # Each alert names the case by the recipient's own reference, never the person.
    for alert in sim.alerts:
        assert "Vale" not in repr(alert)
        assert MUM["identifiers"][0]["value"] not in repr(alert)


def test_each_alert_is_audited_with_its_link_and_who_it_is_about() -> None:
    sim = family(life(HOUSING, "H-1", MUM, "EVICTION_NOTICE", at=10))
    mum = pid(sim, MUM)
    records = {(r.recipient_id, r.link, r.about_person_id, r.outcome) for r in sim.audit}
    assert records == {
        (ASH_LEAD, "PARENT", mum, "SEND"),
        (BAY_LEAD, "PARENT", mum, "SEND"),
        (MUM_LEAD, "SELF", mum, "SEND"),
    }
    assert {r.alert_id for r in sim.audit} == {a.alert_id for a in sim.alerts}


# --- (b) a new partner in the household ---------------------------------------------------


def test_a_new_partner_joining_the_mothers_household_reaches_the_childrens_leads() -> None:
    sim = family(
        life(HOUSING, "H-2", MUM, "HOUSEHOLD_MEMBER_JOINED", related=[(DREW, "PARTNER")], at=10)
    )

    assert told(sim, "HOUSEHOLD_MEMBER_JOINED") == {
        (ASH_LEAD, "CIN-42", Link.PARENT),
        (BAY_LEAD, "HV-43", Link.PARENT),
        (MUM_LEAD, "AC-41", Link.SELF),
    }
    # The partner now lives at the household and is linked to everyone in it.
    drew, mum = pid(sim, DREW), pid(sim, MUM)
    household = sim.persons[drew].household
    assert household is not None
    assert household.uprn == uprn(777)
    assert set(present(sim.households[uprn(777)])) == {
        drew,
        mum,
        pid(sim, ASH),
        pid(sim, BAY),
    }
    assert sim.persons[drew].links()[mum] == {Link.PARTNER, Link.HOUSEHOLD_MEMBER}
    assert sim.persons[pid(sim, ASH)].links()[drew] == {Link.HOUSEHOLD_MEMBER}


# --- (c) police custody of the mother's partner -------------------------------------------


def test_custody_of_the_mothers_partner_reaches_the_children_as_a_parents_partner() -> None:
    # The partner lives elsewhere: only the partner relationship links them to the children.
    sim = family(
        relationship(POLICE, "POL-1", MUM, "PARTNER_OF", DREW, at=10),
        life(POLICE, "CUS-1", DREW, "POLICE_CUSTODY", at=11),
    )

    assert told(sim, "POLICE_CUSTODY") == {
        (ASH_LEAD, "CIN-42", Link.PARENTS_PARTNER),
        (BAY_LEAD, "HV-43", Link.PARENTS_PARTNER),
    }
    for alert in sim.alerts:
        if alert.kind == "POLICE_CUSTODY":
            assert "about a parent's partner" in alert.why
    # POLICE_CUSTODY does not fan out to a PARTNER: Morgan's own worker is not told.
    assert MUM_LEAD not in recipients(sim, "POLICE_CUSTODY")


def test_custody_of_a_partner_in_the_household_reaches_the_children_once_each() -> None:
    sim = family(
        life(HOUSING, "H-2", MUM, "HOUSEHOLD_MEMBER_JOINED", related=[(DREW, "PARTNER")], at=10),
        life(POLICE, "CUS-1", DREW, "POLICE_CUSTODY", at=11),
    )

    links = {(a.recipient_id, a.link) for a in sim.alerts if a.kind == "POLICE_CUSTODY"}
    assert {r for r, _ in links} >= {ASH_LEAD, BAY_LEAD}
    for lead in (ASH_LEAD, BAY_LEAD):
        assert {link for r, link in links if r == lead} <= {
            Link.PARENTS_PARTNER,
            Link.HOUSEHOLD_MEMBER,
        }
    # A child reached by two paths gets two decisions but one alert id: one email.
    by_recipient: dict[str, set[str]] = {}
    for alert in sim.alerts:
        if alert.kind == "POLICE_CUSTODY":
            by_recipient.setdefault(alert.recipient_id, set()).add(alert.alert_id)
    assert all(len(ids) == 1 for ids in by_recipient.values())


def test_custody_of_a_household_member_reaches_the_adults_own_lead() -> None:
    # Morgan is Drew's PARTNER and HOUSEHOLD_MEMBER. PARTNER comes first but only expands (to
    # PARENTS_PARTNER); the policy fans POLICE_CUSTODY out to household members, so her own
    # lead is told through HOUSEHOLD_MEMBER while the children still hear of it onward.
    sim = family(
        life(HOUSING, "H-2", MUM, "HOUSEHOLD_MEMBER_JOINED", related=[(DREW, "PARTNER")], at=10),
        life(POLICE, "CUS-1", DREW, "POLICE_CUSTODY", at=11),
    )
    assert (MUM_LEAD, "AC-41", Link.HOUSEHOLD_MEMBER) in told(sim, "POLICE_CUSTODY")


# --- (d) a sibling's exclusion --------------------------------------------------------------


def test_a_siblings_exclusion_reaches_the_other_child_through_their_shared_parent() -> None:
    sim = family(life(SCHOOL, "PUP-43", BAY, "SCHOOL_EXCLUSION", at=10))

    assert told(sim, "SCHOOL_EXCLUSION") == {
        (BAY_LEAD, "HV-43", Link.SELF),
        (ASH_LEAD, "CIN-42", Link.SIBLING),
    }
    alert = next(a for a in sim.alerts if a.link is Link.SIBLING)
    assert "about a sibling of the child" in alert.why
    # The policy fans SCHOOL_EXCLUSION out to siblings only: the parent's adult team is
    # neither told nor even considered.
    assert MUM_LEAD not in {d.recipient.recipient_id for d in sim.decisions}


def test_an_explicit_sibling_record_is_not_needed_but_is_not_doubled_either() -> None:
    sim = family(
        relationship(SC, "CIN-1", ASH, "SIBLING_OF", BAY, at=9),
        life(SCHOOL, "PUP-43", BAY, "SCHOOL_EXCLUSION", at=10),
    )
    ash_alerts = [
        a for a in sim.alerts if a.recipient_id == ASH_LEAD and a.kind == "SCHOOL_EXCLUSION"
    ]
    assert {a.link for a in ash_alerts} == {Link.SIBLING}
    assert len({a.alert_id for a in ash_alerts}) == 1


def test_a_childs_death_reaches_a_sibling_who_lives_elsewhere() -> None:
    # Ash and Morgan share a household, and HOUSEHOLD_MEMBER precedes CHILD; DEATH fans out to
    # household members, yet Morgan's FanOut must still expand CHILD -> SIBLING so that Bay,
    # living elsewhere, is told her brother died.
    bay_away = {**BAY, "address": {"uprn": uprn(888), "postcode": "ZZ99 9ZZ"}}
    sim = play(
        simulation(),
        [
            relationship(SC, "CIN-1", MUM, "PARENT_OF", ASH, at=1),
            relationship(SC, "CIN-1", MUM, "PARENT_OF", bay_away, at=2),
            involvement(SC, "CIN-42", ASH, SW, lead=True, at=3),
            involvement(HEALTH, "HV-43", bay_away, HV, lead=True, category="HEALTH", at=4),
            life("northshire-registrar", "D-1", ASH, "DEATH", at=10),
        ],
    )
    assert (BAY_LEAD, "HV-43", Link.SIBLING) in told(sim, "DEATH")


# --- (e) a kind that does not fan out --------------------------------------------------------


def test_a_hospital_attendance_of_a_parent_reaches_nobody_else() -> None:
    sim = family(life(HEALTH, "ED-1", MUM, "HOSPITAL_ATTENDANCE", at=10))

    assert told(sim, "HOSPITAL_ATTENDANCE") == {(MUM_LEAD, "AC-41", Link.SELF)}
    assert {d.link for d in sim.decisions} == {Link.SELF}


def test_a_hospital_attendance_of_a_child_reaches_only_that_childs_lead() -> None:
    sim = family(life(HEALTH, "ED-2", ASH, "HOSPITAL_ATTENDANCE", at=10))
    assert told(sim) == {(ASH_LEAD, "CIN-42", Link.SELF)}


# --- (f) moving house -----------------------------------------------------------------------

LODGER = someone(45, "Rey", "Tamsin", "1980-03-03", home=777)
HOUSING_OFFICER = staff("HO-1", "Lee Park", "housing", role="housing officer")


def test_a_family_moving_house_leaves_the_old_household_and_forms_the_new_one() -> None:
    sim = family(
        involvement(HOUSING, "T-45", LODGER, HOUSING_OFFICER, lead=True, category="HOUSING", at=6),
        life(HOUSING, "H-3", MUM, "ADDRESS_CHANGED", new_home=999, at=10),
        life(HOUSING, "H-3", ASH, "ADDRESS_CHANGED", new_home=999, at=10),
        life(HOUSING, "H-3", BAY, "ADDRESS_CHANGED", new_home=999, at=10),
    )
    mum, ash, bay, lodger = (pid(sim, p) for p in (MUM, ASH, BAY, LODGER))

    assert present(sim.households[uprn(777)]) == (lodger,)
    assert set(present(sim.households[uprn(999)])) == {mum, ash, bay}
    for person in (mum, ash, bay):
        household = sim.persons[person].household
        assert household is not None
        assert household.uprn == uprn(999)
        assert not household.observed
    assert sim.persons[lodger].links() == {}
    assert sim.persons[ash].links() == {
        mum: {Link.CHILD, Link.HOUSEHOLD_MEMBER},
        bay: {Link.HOUSEHOLD_MEMBER},
    }
    assert sim.persons[mum].links() == {
        ash: {Link.PARENT, Link.HOUSEHOLD_MEMBER},
        bay: {Link.PARENT, Link.HOUSEHOLD_MEMBER},
    }
    # The children's leads hear of the move, about the child and about the parent.
    assert told(sim, "ADDRESS_CHANGED") >= {
        (ASH_LEAD, "CIN-42", Link.SELF),
        (BAY_LEAD, "HV-43", Link.SELF),
    }


def test_a_family_moving_to_a_lower_numbered_uprn_stays_one_household() -> None:
    # The same move to UPRN 555 instead of 999, all at t=10: each household's edges have a
    # key of their own, so the old household's inactive edges cannot outrank the new one's,
    # whichever UPRN sorts first (see test_household.py).
    sim = family(
        life(HOUSING, "H-3", MUM, "ADDRESS_CHANGED", new_home=555, at=10),
        life(HOUSING, "H-3", ASH, "ADDRESS_CHANGED", new_home=555, at=10),
        life(HOUSING, "H-3", BAY, "ADDRESS_CHANGED", new_home=555, at=10),
    )
    mum, ash, bay = (pid(sim, p) for p in (MUM, ASH, BAY))
    assert set(present(sim.households[uprn(555)])) == {mum, ash, bay}
    assert sim.persons[ash].links() == {
        mum: {Link.CHILD, Link.HOUSEHOLD_MEMBER},
        bay: {Link.HOUSEHOLD_MEMBER},
    }


def test_an_old_address_seen_later_does_not_undo_a_move() -> None:
    old_address_mum = dict(MUM)  # a record by an agency that has not heard of the move yet
    sim = family(
        life(HOUSING, "H-3", MUM, "ADDRESS_CHANGED", new_home=999, at=10),
        life(POLICE, "X-1", old_address_mum, "MISSING_EPISODE", at=5),
    )
    household = sim.persons[pid(sim, MUM)].household
    assert household is not None
    assert household.uprn == uprn(999)


# --- (g) one child under two identifiers --------------------------------------------------

ROWAN_HEALTH = someone(50, "Rowan", "Pike", "2015-02-02")  # NHS number only
ROWAN_SCHOOL = someone(50, "Rowan", "Pike", "2015-02-02", pupil=True, nhs=False)  # UPN only
ROWAN_BOTH = someone(50, "Rowan", "Pike", "2015-02-02", pupil=True)


def test_a_merged_child_is_told_to_the_union_of_the_two_teams() -> None:
    sim = play(
        simulation(),
        [
            involvement(SC, "CIN-50", ROWAN_HEALTH, SW, lead=True, at=1),
            involvement(SCHOOL, "PUP-50", ROWAN_SCHOOL, DSL, category="EDUCATION", at=2),
        ],
    )
    assert pid(sim, ROWAN_HEALTH) != pid(sim, ROWAN_SCHOOL)
    play(sim, [life(POLICE, "M-1", ROWAN_SCHOOL, "MISSING_EPISODE", at=3)])
    assert recipients(sim, "MISSING_EPISODE") == {f"{SCHOOL}/DSL-1"}  # known only to school

    play(sim, [life(HEALTH, "E-1", ROWAN_BOTH, "HOSPITAL_ADMISSION", at=4)])
    assert pid(sim, ROWAN_HEALTH) == pid(sim, ROWAN_SCHOOL)
    # The merged-away id is left as a redirect to the survivor, not as a person.
    assert [p for p, s in sim.persons.items() if s.merged_into is None] == [pid(sim, ROWAN_BOTH)]
    sim.alerts.clear()

    for record in (
        life(POLICE, "M-2", ROWAN_SCHOOL, "MISSING_EPISODE", at=5),
        life(POLICE, "M-3", ROWAN_HEALTH, "MISSING_EPISODE", at=6),
    ):
        play(sim, [record])
        assert {(a.recipient_id, a.case_ref) for a in sim.alerts} == {
            (f"{SC}/SW-1", "CIN-50"),
            (f"{SCHOOL}/DSL-1", "PUP-50"),
        }
        sim.alerts.clear()


def test_a_probable_match_is_never_routed_on() -> None:
    # Same child, name variant, no shared identifier: a candidate for a steward, not a merge.
    sim = play(
        simulation(),
        [
            involvement(
                SC,
                "CIN-51",
                someone(51, "Christopher", "Ashdown", "2015-03-03"),
                SW,
                lead=True,
                at=1,
            ),
            involvement(
                SCHOOL,
                "PUP-51",
                someone(51, "Kit", "Ashdown", "2015-03-03", pupil=True, nhs=False),
                DSL,
                category="EDUCATION",
                at=2,
            ),
            life(
                POLICE,
                "M-51",
                someone(51, "Kit", "Ashdwon", "2015-03-03", pupil=True, nhs=False),
                "MISSING_EPISODE",
                at=3,
            ),
        ],
    )
    assert len(sim.persons) == 2
    assert recipients(sim, "MISSING_EPISODE") == {f"{SCHOOL}/DSL-1"}
    assert any(type(r).__name__ == "CandidateRecord" for r in sim.identity_log)


# --- (h) explicit subscriptions -------------------------------------------------------------

SKY = someone(60, "Sky", "Moor", "2014-04-04", pupil=True)
EWO = staff("EW-1", "Noor Fenn", "ews", role="education welfare officer")
PRU = "northshire-pru"


def subscribed(*more: Record, now: dt.datetime = NOW) -> Simulation:
    sim = simulation(now=now)
    return play(
        sim,
        [
            involvement(SC, "CIN-60", SKY, SW, lead=True, at=1),
            involvement(SCHOOL, "PUP-60", SKY, DSL, category="EDUCATION", at=2),
            subscription(SCHOOL, "PUP-60", SKY, DSL, kinds=["SCHOOL_EXCLUSION"], at=3),
            *more,
        ],
    )


def test_a_subscriber_with_an_involvement_hears_of_the_kinds_asked_for() -> None:
    sim = subscribed(
        life(PRU, "PRU-60", SKY, "SCHOOL_EXCLUSION", at=10),
        life(SCHOOL, "PUP-60", SKY, "PERSISTENT_ABSENCE", at=11),
    )
    (exclusion,) = [a for a in sim.alerts if a.recipient_id == f"{SCHOOL}/DSL-1"]
    assert (exclusion.kind, exclusion.case_ref, exclusion.rule_id) == (
        "SCHOOL_EXCLUSION",
        "PUP-60",
        "explicit-subscription",
    )
    assert "you asked to be told about this child" in exclusion.why
    (decision,) = [d for d in sim.decisions if d.recipient.recipient_id == f"{SCHOOL}/DSL-1"]
    assert decision.role is RecipientRole.EXPLICIT_SUBSCRIBER
    # Not asked for, and no rule of the team's covers it: not told.
    assert f"{SCHOOL}/DSL-1" not in recipients(sim, "PERSISTENT_ABSENCE")
    assert recipients(sim, "PERSISTENT_ABSENCE") == {ASH_LEAD}


def test_a_subscription_alone_alerts_nobody() -> None:
    sim = subscribed()
    assert [d for d in sim.decisions if d.kind.startswith("SUBSCRIPTION_")] == []


def test_a_subscriber_without_an_involvement_is_suppressed_and_audited() -> None:
    sim = subscribed(
        subscription("northshire-ews", "EWS-60", SKY, EWO, at=4, subscription_id="S-9"),
        life(PRU, "PRU-60", SKY, "SCHOOL_EXCLUSION", at=10),
    )
    (decision,) = [d for d in sim.decisions if d.recipient.recipient_id == "northshire-ews/EW-1"]
    assert decision.outcome is Outcome.SUPPRESS
    assert decision.suppression is Suppression.NO_LEGITIMATE_RELATIONSHIP
    assert decision.role is RecipientRole.EXPLICIT_SUBSCRIBER
    assert "northshire-ews/EW-1" not in {a.recipient_id for a in sim.alerts}
    (record,) = [r for r in sim.audit if r.recipient_id == "northshire-ews/EW-1"]
    assert (record.outcome, record.suppression, record.alert_id) == (
        "SUPPRESS",
        "no_legitimate_relationship",
        None,
    )
    assert record.case_ref == "EWS-60"


def test_an_ended_subscription_is_not_told() -> None:
    sim = subscribed(
        subscription(SCHOOL, "PUP-60", SKY, DSL, change="ENDED", at=5),
        life(PRU, "PRU-60", SKY, "SCHOOL_EXCLUSION", at=10),
    )
    assert recipients(sim, "SCHOOL_EXCLUSION") == {ASH_LEAD}
    assert {d.recipient.recipient_id for d in sim.decisions if d.kind == "SCHOOL_EXCLUSION"} == {
        ASH_LEAD
    }


def test_a_subscriber_whose_involvement_ended_is_told_only_within_the_grace_period() -> None:
    ended_at = 20  # minutes after T0
    story = [
        involvement(SCHOOL, "PUP-60", SKY, DSL, category="EDUCATION", change="ENDED", at=ended_at),
    ]
    grace = context().policy.grace_period
    end = T0 + dt.timedelta(minutes=ended_at)

    within = subscribed(*story, now=end + grace - dt.timedelta(hours=1))
    play(within, [life(PRU, "PRU-60", SKY, "SCHOOL_EXCLUSION", at=30)])
    assert f"{SCHOOL}/DSL-1" in recipients(within, "SCHOOL_EXCLUSION")

    after = subscribed(*story, now=end + grace + dt.timedelta(hours=1))
    play(after, [life(PRU, "PRU-60", SKY, "SCHOOL_EXCLUSION", at=30)])
    (decision,) = [
        d
        for d in after.decisions
        if d.kind == "SCHOOL_EXCLUSION" and d.recipient.recipient_id == f"{SCHOOL}/DSL-1"
    ]
    assert decision.outcome is Outcome.SUPPRESS
    assert decision.suppression is Suppression.NO_LEGITIMATE_RELATIONSHIP
    assert f"{SCHOOL}/DSL-1" not in recipients(after, "SCHOOL_EXCLUSION")


# --- (i) sensitive services -----------------------------------------------------------------

LEE = someone(70, "Lee", "Marsh", "2012-07-07")
CLINICIAN = staff("CM-1", "Ari Holt", "camhs", role="clinician")
CAMHS = "northshire-camhs"


def camhs_joins(*, consent: bool | None = None, override: bool = False) -> Simulation:
    return play(
        simulation(),
        [
            involvement(SC, "CIN-70", LEE, SW, lead=True, at=1),
            involvement(
                CAMHS,
                "MH-70",
                LEE,
                CLINICIAN,
                category="MENTAL_HEALTH",
                at=2,
                consent=consent,
                override=override,
            ),
            life(POLICE, "M-70", LEE, "MISSING_EPISODE", at=3),
        ],
    )


def test_a_sensitive_involvement_without_consent_is_not_revealed() -> None:
    sim = camhs_joins()
    (joined,) = [
        d for d in sim.decisions if d.kind == "INVOLVEMENT_STARTED" and d.recipient.agency_id == SC
    ]
    assert joined.outcome is Outcome.SUPPRESS
    assert joined.suppression is Suppression.SENSITIVE_WITHOUT_CONSENT
    assert "INVOLVEMENT_STARTED" not in {a.kind for a in sim.alerts if a.recipient_id == ASH_LEAD}
    assert any(r.suppression == "sensitive_without_consent" for r in sim.audit)
    # Nor does it appear in the team listed on other alerts.
    for alert in sim.alerts:
        if alert.recipient_id == ASH_LEAD:
            assert CAMHS not in {c.agency_id for c in alert.team}


@pytest.mark.parametrize(
    "grounds",
    [{"override": True}, {"consent": True}, {"consent": False, "override": True}],
    ids=["safeguarding-override", "consent", "override-against-refusal"],
)
def test_consent_or_a_safeguarding_override_reveals_it(grounds: dict[str, bool]) -> None:
    sim = camhs_joins(consent=grounds.get("consent"), override=grounds.get("override", False))
    assert (ASH_LEAD, "CIN-70", Link.SELF) in told(sim, "INVOLVEMENT_STARTED")
    missing = next(
        a for a in sim.alerts if a.kind == "MISSING_EPISODE" and a.recipient_id == ASH_LEAD
    )
    assert CAMHS in {c.agency_id for c in missing.team}
    assert not any(d.suppression is Suppression.SENSITIVE_WITHOUT_CONSENT for d in sim.decisions)


def test_the_override_arrives_on_the_involvement_as_the_hub_decodes_it() -> None:
    decoded = event(
        involvement(CAMHS, "MH-70", LEE, CLINICIAN, category="MENTAL_HEALTH", at=2, override=True)
    )
    assert isinstance(decoded, InvolvementEvent)
    assert decoded.safeguarding_override is not None
    assert decoded.safeguarding_override.reason == "risk of significant harm"


# --- (g) one email for the children of one case; who else was told ----------------------


def with_la_id(person: dict[str, Any], value: str) -> dict[str, Any]:
    """The person as social care's own records know them: with the council's person id."""
    ids = [*person["identifiers"], {"scheme": "la_person_id", "value": value}]
    return {**person, "identifiers": ids}


def test_an_event_about_a_parent_reaches_a_lead_of_two_children_in_one_case_as_one_alert() -> None:
    sim = play(
        simulation(),
        [
            relationship(SC, "CIN-1", MUM, "PARENT_OF", ASH, at=1),
            relationship(SC, "CIN-1", MUM, "PARENT_OF", BAY, at=2),
            involvement(SC, "CIN-50", with_la_id(ASH, "LA-4201"), SW, lead=True, at=3),
            involvement(
                SC, "CIN-50", with_la_id(BAY, "LA-4301"), SW, lead=True, at=4, involvement_id="B"
            ),
            involvement(HEALTH, "HV-43", BAY, HV, lead=True, category="HEALTH", at=5),
        ],
    )
    play(sim, [life(POLICE, "INC-7", MUM, "DOMESTIC_ABUSE_INCIDENT", at=10)])
    incident = [a for a in sim.alerts if a.kind == "DOMESTIC_ABUSE_INCIDENT"]

    (to_lead,) = [a for a in incident if a.recipient_id == ASH_LEAD]
    assert to_lead.case_ref == "CIN-50"
    assert sorted(r.value for c in to_lead.children for r in c.refs) == ["LA-4201", "LA-4301"]
    assert {c.link for c in to_lead.children} == {Link.PARENT}
    # Both children's decisions are on the audit, each naming the one email.
    lead_records = [
        r for r in sim.audit if r.recipient_id == ASH_LEAD and r.kind == "DOMESTIC_ABUSE_INCIDENT"
    ]
    assert len(lead_records) == 2
    assert {r.alert_id for r in lead_records} == {to_lead.alert_id}
    assert len({r.person_id for r in lead_records}) == 2
    # Each recipient hears who else was told, by role and agency, never by name.
    (to_hv,) = [a for a in incident if a.recipient_id == BAY_LEAD]
    assert [(t.role, t.agency_id) for t in to_lead.also_told] == [("health visitor", HEALTH)]
    assert [(t.role, t.agency_id) for t in to_hv.also_told] == [("social worker", SC)]
    assert "Jo Lindqvist" not in repr(to_lead.also_told)


def test_a_recipient_whose_work_is_sensitive_is_not_named_as_told() -> None:
    school_joins = involvement(SCHOOL, "P-70", LEE, DSL, category="EDUCATION", at=30)
    hidden = play(camhs_joins(consent=None), [school_joins])
    shown = play(camhs_joins(consent=True), [school_joins])

    def told_of_the_school(sim: Simulation) -> dict[str, set[str]]:
        return {
            a.recipient_id: {t.agency_id for t in a.also_told}
            for a in sim.alerts
            if a.kind == "INVOLVEMENT_STARTED" and a.event_key.startswith(f"{SCHOOL}/")
        }

    assert CAMHS in {r.split("/")[0] for r in told_of_the_school(hidden)}  # CAMHS is told...
    assert all(CAMHS not in agencies for agencies in told_of_the_school(hidden).values())
    assert CAMHS in told_of_the_school(shown)[ASH_LEAD]  # ...and named once consented
