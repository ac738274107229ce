"""Family stories told by several agencies, end to end: published to a real broker, routed by
a real ``hub worker``, delivered by SMTP to a real mailbox.

Each test is one family's story in phases (see ``support.story``). After every phase it
asserts exactly which practitioners were told what -- (recipient, event kind, link, the
recipient's own case reference) -- and that practitioners who must not hear did not. The
people are invented: NHS numbers from the 999 test range, UPNs of the fictional local
authority 999, ZZ99 postcodes, UPRNs starting 99900, ``.example`` email addresses.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from involvement_hub.core.resolver import MergeRecord
from involvement_hub.kafka.admin import delete_topics
from involvement_hub_devtools.mailbox import Mailbox
from involvement_hub_devtools.synthetic import nhs_number
from support.records import (
    life_event,
    person_ref,
    practitioner,
    related,
    relationship,
    safeguarding_override,
    service,
    subscription,
)
from support.story import PhaseResult, Practitioner, Story
from support.worker import WorkerProcess, isolated_settings

SOCIAL_CARE = "northshire-social-care"
EARLY_HELP = "northshire-early-help"
POLICE = "northshire-police"
HEALTH = "northshire-health"
HOUSING = "northshire-housing"
YOUTH_JUSTICE = "northshire-youth-justice"
DRUG_ALCOHOL = "northshire-drug-alcohol"
OAKFIELD = "oakfield-primary"
RIVERSIDE = "riverside-academy"

CHILDREN_IN_NEED = service("CIN-1", "Children in Need Team 1", "SOCIAL_CARE", "STATUTORY")
FAMILY_SUPPORT = service("FS-1", "Family Support Service", "SOCIAL_CARE", "TARGETED")
HEALTH_VISITING = service("HV-N", "Health Visiting North", "HEALTH", "UNIVERSAL")
EARLY_HELP_TEAM = service("EH-FS", "Early Help Family Support", "EARLY_HELP", "TARGETED")
OAKFIELD_SCHOOL = service("OAK", "Oakfield Primary School", "EDUCATION", "UNIVERSAL")
RIVERSIDE_SCHOOL = service("RIV", "Riverside Academy", "EDUCATION", "UNIVERSAL")


def social_worker(pid: str, name: str, case_ref: str, role: str = "social worker") -> Practitioner:
    return Practitioner(
        practitioner(pid, name, "social-care.northshire", role), SOCIAL_CARE, case_ref
    )


def health_visitor(pid: str, name: str, case_ref: str) -> Practitioner:
    return Practitioner(
        practitioner(pid, name, "health.northshire", "health visitor"), HEALTH, case_ref
    )


def family_worker(pid: str, name: str, case_ref: str) -> Practitioner:
    return Practitioner(
        practitioner(pid, name, "early-help.northshire", "family support worker"),
        EARLY_HELP,
        case_ref,
    )


def safeguarding_lead(agency: str, pid: str, name: str, case_ref: str) -> Practitioner:
    return Practitioner(
        practitioner(pid, name, agency, "designated safeguarding lead"), agency, case_ref
    )


def home(uprn: str, postcode: str) -> dict[str, Any]:
    return {"uprn": uprn, "postcode": postcode}


@pytest.fixture(scope="module")
def story_worker(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """One worker and one mailbox for the module's stories (in each pytest process that
    runs some): every story has its own people, practitioners and addresses, and looks
    only at what happened after it began."""
    folder = tmp_path_factory.mktemp("stories")
    settings = isolated_settings(kafka_bootstrap, folder, uuid.uuid4().hex[:10])
    worker = WorkerProcess(settings, folder / "worker.log")
    try:
        with Mailbox(settings.mailbox_dir, port=settings.mailbox_port):
            worker.start()
            yield worker
    finally:
        worker.stop()
        asyncio.run(delete_topics(settings))


@pytest.fixture
async def story(story_worker: WorkerProcess) -> Story:
    story = Story(story_worker.settings)
    await story.begin()
    return story


# --- 1. A family moving house ----------------------------------------------------------


async def test_a_family_moving_house(story: Story) -> None:
    """Mum, a schoolchild and a baby leave the grandfather's house one by one.

    While they live with him, his custody reaches both children's leads "about a household
    member"; each move tells the lead of the child who moved, of a child left behind in
    the old household, and of the children of a parent who moved. Once all three have
    moved, his next custody tells nobody. The school (a team member) never hears of moves.
    """
    old, new = home("999000000101", "ZZ99 1MA"), home("999000000102", "ZZ99 2MB")
    mum = person_ref(nhs=100, given="Marnie", family="Tolliver", born="1991-04-12", **old)
    older = person_ref(
        nhs=101, upn_n=101, given="Juniper", family="Tolliver", born="2016-09-03", **old
    )
    baby = person_ref(nhs=102, given="Wren", family="Tolliver", born="2023-01-20", **old)
    grandad = person_ref(nhs=103, given="Gideon", family="Tolliver", born="1962-07-30", **old)
    story.family(mum, older, baby, grandad, {"address": new})
    sw = social_worker("SW-101", "Bertil Ahlgren", "CIN-101")
    hv = health_visitor("HV-102", "Jo Lindqvist", "HV-102")
    dsl = safeguarding_lead(OAKFIELD, "DSL-101", "Sam Okafor", "PUP-101")

    await story.phase(
        relationship(SOCIAL_CARE, "CIN-101", mum, "PARENT_OF", older, at=story.at()),
        relationship(SOCIAL_CARE, "CIN-101", mum, "PARENT_OF", baby, at=story.at()),
        relationship(SOCIAL_CARE, "CIN-101", grandad, "PARENT_OF", mum, at=story.at()),
        sw.involvement(older, CHILDREN_IN_NEED, involvement_id="SC-101", lead=True, at=story.at()),
        hv.involvement(baby, HEALTH_VISITING, involvement_id="HV-102", lead=True, at=story.at()),
        expect=set(),
    )
    await story.phase(
        life_event(POLICE, "CUS-103", grandad, "POLICE_CUSTODY", at=story.at()),
        expect={
            sw.told("POLICE_CUSTODY", "HOUSEHOLD_MEMBER"),
            hv.told("POLICE_CUSTODY", "HOUSEHOLD_MEMBER"),
        },
    )
    # The school joins the team as the older child moves to the new home first.
    await story.phase(
        dsl.involvement(older, OAKFIELD_SCHOOL, involvement_id="SCH-101", at=story.at()),
        _move(older, old, new, "TEN-101", story),
        expect={
            sw.told("INVOLVEMENT_STARTED"),
            sw.told("ADDRESS_CHANGED"),
            # the baby's household lost a member
            hv.told("ADDRESS_CHANGED", "HOUSEHOLD_MEMBER"),
        },
    )
    # Mum and the baby follow (one tenancy: housing's events arrive in order). The older
    # child's lead hears of mum's move through the parent link. The policy does not fan
    # moves out to siblings, so the baby's move reaches the older child's lead only as the
    # baby becomes a member of her new household: a catch-up on that late link, as the
    # older child's earlier move reaches the baby's health visitor.
    result = await story.phase(
        _move(mum, old, new, "TEN-101", story),
        _move(baby, old, new, "TEN-101", story),
        expect={
            sw.told("ADDRESS_CHANGED", "PARENT"),
            hv.told("ADDRESS_CHANGED", "PARENT"),
            hv.told("ADDRESS_CHANGED"),
            sw.told("ADDRESS_CHANGED", "HOUSEHOLD_MEMBER"),
            hv.told("ADDRESS_CHANGED", "HOUSEHOLD_MEMBER"),
        },
        absent=[dsl],
    )
    caught_up = [a for a in result.alerts if a["earlier"]]
    assert sorted((a["recipient_email"], len(a["earlier"])) for a in caught_up) == [
        (sw.email, 1),
        (hv.email, 1),
    ]
    assert "Recorded before you were linked to this child" in _text_of(
        result, sw, "ADDRESS_CHANGED", catch_up=True
    )
    await story.phase(
        life_event(POLICE, "CUS-103", grandad, "POLICE_CUSTODY", at=story.at()),
        expect=set(),
        absent=[sw, hv, dsl],
    )


def _move(
    who: dict[str, Any], old: dict[str, Any], new: dict[str, Any], tenancy: str, story: Story
) -> dict[str, Any]:
    """Housing records that ``who`` moved from ``old`` to ``new``."""
    return life_event(
        HOUSING,
        tenancy,
        {**who, "address": old},
        "ADDRESS_CHANGED",
        new_address=new,
        at=story.at(),
    )


# --- 2. A new partner joins the household ------------------------------------------------


async def test_a_new_partner_joins_the_household(story: Story) -> None:
    """Housing adds mum's new partner to the tenancy: both children's leads are told "about
    a parent". When police later take the partner into custody, both leads are told: he is
    their mother's partner and a member of their household -- one alert each, reached
    through both links, one email each."""
    flat = home("999000000201", "ZZ99 1OB")
    mum = person_ref(nhs=120, given="Odette", family="Brackley", born="1993-02-11", **flat)
    older = person_ref(nhs=121, given="Linnea", family="Brackley", born="2017-06-01", **flat)
    baby = person_ref(nhs=122, given="Perrin", family="Brackley", born="2022-03-09", **flat)
    partner = person_ref(
        nhs=123, police_id="NSP-123", given="Dorian", family="Fairweather", born="1989-12-24"
    )
    story.family(mum, older, baby, partner)
    sw = social_worker("SW-121", "Bertil Ahlgren", "CIN-121")
    hv = health_visitor("HV-122", "Jo Lindqvist", "HV-122")
    dsl = safeguarding_lead(OAKFIELD, "DSL-121", "Sam Okafor", "PUP-121")

    await story.phase(
        relationship(SOCIAL_CARE, "CIN-121", mum, "PARENT_OF", older, at=story.at()),
        relationship(SOCIAL_CARE, "CIN-121", mum, "PARENT_OF", baby, at=story.at()),
        sw.involvement(older, CHILDREN_IN_NEED, involvement_id="SC-121", lead=True, at=story.at()),
        hv.involvement(baby, HEALTH_VISITING, involvement_id="HV-122", lead=True, at=story.at()),
        expect=set(),
    )
    await story.phase(
        dsl.involvement(older, OAKFIELD_SCHOOL, involvement_id="SCH-121", at=story.at()),
        life_event(
            HOUSING,
            "TEN-120",
            mum,
            "HOUSEHOLD_MEMBER_JOINED",
            related=[related(partner, "PARTNER")],
            at=story.at(),
        ),
        expect={
            sw.told("INVOLVEMENT_STARTED"),
            sw.told("HOUSEHOLD_MEMBER_JOINED", "PARENT"),
            hv.told("HOUSEHOLD_MEMBER_JOINED", "PARENT"),
        },
        absent=[dsl],
    )
    custody = await story.phase(
        life_event(POLICE, "CUS-123", partner, "POLICE_CUSTODY", at=story.at()),
        expect={
            sw.told("POLICE_CUSTODY", "PARENTS_PARTNER"),
            sw.told("POLICE_CUSTODY", "HOUSEHOLD_MEMBER"),
            hv.told("POLICE_CUSTODY", "PARENTS_PARTNER"),
            hv.told("POLICE_CUSTODY", "HOUSEHOLD_MEMBER"),
        },
        absent=[dsl],
    )
    assert sorted(str(m["To"]) for m in custody.emails) == sorted([sw.email, hv.email])


# --- 3. A police domestic abuse incident at the household ---------------------------------


async def test_a_domestic_abuse_incident_at_the_household(story: Story) -> None:
    """Police attend a domestic abuse incident: mum is the subject, her partner the other
    party. Her children's leads are told "about a parent"; the partner's daughter, who lives
    elsewhere, has a lead who is told "about a parent's partner" (the baby, their child
    together, is reached both ways: one alert). The school and a neighbour's family worker
    (same postcode, another dwelling) are not told: the policy sends this to leads only."""
    house = home("999000000301", "ZZ99 1RA")
    mum = person_ref(nhs=140, given="Rosalind", family="Ashgrove", born="1990-08-08", **house)
    partner = person_ref(
        nhs=141,
        police_id="NSP-141",
        given="Casimir",
        family="Drummond",
        born="1987-05-15",
        **house,
    )
    older = person_ref(
        nhs=142, upn_n=142, given="Ottilie", family="Ashgrove", born="2015-11-30", **house
    )
    baby = person_ref(nhs=143, given="Fenwick", family="Drummond", born="2023-07-07", **house)
    half_sister = person_ref(
        nhs=144,
        given="Isolde",
        family="Drummond",
        born="2013-04-04",
        **home("999000000302", "ZZ99 4ID"),
    )
    neighbour = person_ref(
        nhs=145,
        given="Barnaby",
        family="Quillfeather",
        born="2016-01-01",
        **home("999000000303", "ZZ99 1RA"),
    )
    story.family(mum, partner, older, baby, half_sister, neighbour)
    sw = social_worker("SW-142", "Bertil Ahlgren", "CIN-142")
    hv = health_visitor("HV-143", "Jo Lindqvist", "HV-143")
    sister_sw = social_worker("SW-144", "Priya Castellano", "CIN-144")
    neighbours_worker = family_worker("EH-145", "Tomasz Whitlock", "EH-145")
    dsl = safeguarding_lead(OAKFIELD, "DSL-142", "Sam Okafor", "PUP-142")

    await story.phase(
        relationship(SOCIAL_CARE, "CIN-142", mum, "PARENT_OF", older, at=story.at()),
        relationship(SOCIAL_CARE, "CIN-142", mum, "PARENT_OF", baby, at=story.at()),
        relationship(SOCIAL_CARE, "CIN-142", partner, "PARENT_OF", baby, at=story.at()),
        relationship(SOCIAL_CARE, "CIN-144", partner, "PARENT_OF", half_sister, at=story.at()),
        sw.involvement(older, CHILDREN_IN_NEED, involvement_id="SC-142", lead=True, at=story.at()),
        hv.involvement(baby, HEALTH_VISITING, involvement_id="HV-143", lead=True, at=story.at()),
        sister_sw.involvement(
            half_sister, CHILDREN_IN_NEED, involvement_id="SC-144", lead=True, at=story.at()
        ),
        neighbours_worker.involvement(
            neighbour, EARLY_HELP_TEAM, involvement_id="EH-145", lead=True, at=story.at()
        ),
        expect=set(),
    )
    incident = await story.phase(
        dsl.involvement(older, OAKFIELD_SCHOOL, involvement_id="SCH-142", at=story.at()),
        life_event(
            POLICE,
            "OCC-140",
            mum,
            "DOMESTIC_ABUSE_INCIDENT",
            urgency="URGENT",
            related=[related(partner, "PARTNER")],
            at=story.at(),
        ),
        expect={
            sw.told("INVOLVEMENT_STARTED"),
            sw.told("DOMESTIC_ABUSE_INCIDENT", "PARENT"),
            hv.told("DOMESTIC_ABUSE_INCIDENT", "PARENT"),
            hv.told("DOMESTIC_ABUSE_INCIDENT", "PARENTS_PARTNER"),
            sister_sw.told("DOMESTIC_ABUSE_INCIDENT", "PARENTS_PARTNER"),
        },
        absent=[dsl, neighbours_worker],
    )
    incident_alerts = [a for a in incident.alerts if a["kind"] == "DOMESTIC_ABUSE_INCIDENT"]
    assert {a["urgency"] for a in incident_alerts} == {"URGENT"}
    assert {a["source_agency"] for a in incident_alerts} == {POLICE}


# --- 4. A sibling's school exclusion --------------------------------------------------------


async def test_a_siblings_school_exclusion(story: Story) -> None:
    """A boy is excluded from school for three days. His own lead is told; so are the leads
    of his half-sister (same mother, same house) and of his half-sister on his father's side
    (another house), "about a sibling". A child lodging in the same house is a household
    member, not a sibling: the policy fans exclusions out to siblings only, so his lead is
    not told, and neither is the older sister's school."""
    house, dads = home("999000000401", "ZZ99 1HG"), home("999000000402", "ZZ99 4LP")
    mum = person_ref(nhs=160, given="Henrietta", family="Gallowglass", born="1988-03-03", **house)
    dad = person_ref(nhs=161, given="Lysander", family="Pembury", born="1985-10-10", **dads)
    sister = person_ref(
        nhs=162, upn_n=162, given="Clementine", family="Gallowglass", born="2012-05-05", **house
    )
    boy = person_ref(
        nhs=163, upn_n=163, given="Rafferty", family="Pembury", born="2014-09-09", **house
    )
    dads_girl = person_ref(nhs=164, given="Marigold", family="Pembury", born="2019-02-02", **dads)
    lodger = person_ref(nhs=165, given="Ignatius", family="Fernsby", born="2013-12-12", **house)
    story.family(mum, dad, sister, boy, dads_girl, lodger)
    sister_sw = social_worker("SW-162", "Bertil Ahlgren", "CIN-162")
    boys_worker = family_worker("EH-163", "Tomasz Whitlock", "EH-163")
    dads_girl_hv = health_visitor("HV-164", "Jo Lindqvist", "HV-164")
    lodgers_sw = social_worker("SW-165", "Priya Castellano", "CIN-165")
    sisters_dsl = safeguarding_lead(RIVERSIDE, "DSL-162", "Ngozi Achterberg", "RIV-162")
    boys_dsl = safeguarding_lead(OAKFIELD, "DSL-163", "Sam Okafor", "PUP-163")

    await story.phase(
        relationship(SOCIAL_CARE, "CIN-162", mum, "PARENT_OF", sister, at=story.at()),
        relationship(SOCIAL_CARE, "CIN-162", mum, "PARENT_OF", boy, at=story.at()),
        relationship(SOCIAL_CARE, "CIN-162", dad, "PARENT_OF", boy, at=story.at()),
        relationship(SOCIAL_CARE, "CIN-162", dad, "PARENT_OF", dads_girl, at=story.at()),
        sister_sw.involvement(
            sister, CHILDREN_IN_NEED, involvement_id="SC-162", lead=True, at=story.at()
        ),
        boys_worker.involvement(
            boy, EARLY_HELP_TEAM, involvement_id="EH-163", lead=True, at=story.at()
        ),
        dads_girl_hv.involvement(
            dads_girl, HEALTH_VISITING, involvement_id="HV-164", lead=True, at=story.at()
        ),
        lodgers_sw.involvement(
            lodger, CHILDREN_IN_NEED, involvement_id="SC-165", lead=True, at=story.at()
        ),
        expect=set(),
    )
    exclusion = await story.phase(
        sisters_dsl.involvement(sister, RIVERSIDE_SCHOOL, involvement_id="RIV-162", at=story.at()),
        # The school's own records arrive in order: it joins the team, then excludes.
        boys_dsl.involvement(boy, OAKFIELD_SCHOOL, involvement_id="SCH-163", at=story.at()),
        life_event(
            OAKFIELD,
            "PUP-163",
            boy,
            "SCHOOL_EXCLUSION",
            urgency="PRIORITY",
            details={"exclusion_type": "fixed_term", "days": "3"},
            at=story.at(),
        ),
        expect={
            sister_sw.told("INVOLVEMENT_STARTED"),
            boys_worker.told("INVOLVEMENT_STARTED"),
            boys_worker.told("SCHOOL_EXCLUSION"),
            sister_sw.told("SCHOOL_EXCLUSION", "SIBLING"),
            dads_girl_hv.told("SCHOOL_EXCLUSION", "SIBLING"),
        },
        absent=[lodgers_sw, sisters_dsl, boys_dsl],
    )
    # SUMMARY content: the details of the exclusion reach the leads.
    body = _text_of(exclusion, sister_sw, "SCHOOL_EXCLUSION")
    assert "Days: 3" in body


# --- 5. A hospital attendance ------------------------------------------------------------


async def test_a_hospital_attendance(story: Story) -> None:
    """A child attends the emergency department; so, separately, does his mother. Each
    attendance reaches that person's own lead only (the policy sends attendances to leads,
    with no fan-out): the child's social worker, and mum's family support worker. The school
    (a team member) and the baby sister's health visitor hear of neither."""
    house = home("999000000501", "ZZ99 1PH")
    mum = person_ref(nhs=180, given="Philippa", family="Hawthorne-Vey", born="1995-06-06", **house)
    boy = person_ref(
        nhs=181, upn_n=181, given="Tobias", family="Hawthorne-Vey", born="2018-08-18", **house
    )
    baby = person_ref(nhs=182, given="Esme", family="Hawthorne-Vey", born="2024-01-01", **house)
    story.family(mum, boy, baby)
    sw = social_worker("SW-181", "Bertil Ahlgren", "CIN-181")
    hv = health_visitor("HV-182", "Jo Lindqvist", "HV-182")
    mums_worker = family_worker("EH-180", "Tomasz Whitlock", "EH-180")
    dsl = safeguarding_lead(OAKFIELD, "DSL-181", "Sam Okafor", "PUP-181")

    await story.phase(
        relationship(SOCIAL_CARE, "CIN-181", mum, "PARENT_OF", boy, at=story.at()),
        relationship(SOCIAL_CARE, "CIN-181", mum, "PARENT_OF", baby, at=story.at()),
        sw.involvement(boy, CHILDREN_IN_NEED, involvement_id="SC-181", lead=True, at=story.at()),
        hv.involvement(baby, HEALTH_VISITING, involvement_id="HV-182", lead=True, at=story.at()),
        mums_worker.involvement(
            mum, EARLY_HELP_TEAM, involvement_id="EH-180", lead=True, at=story.at()
        ),
        expect=set(),
    )
    attendance = await story.phase(
        dsl.involvement(boy, OAKFIELD_SCHOOL, involvement_id="SCH-181", at=story.at()),
        life_event(HEALTH, "ED-181", boy, "HOSPITAL_ATTENDANCE", at=story.at()),
        life_event(HEALTH, "ED-180", mum, "HOSPITAL_ATTENDANCE", at=story.at()),
        expect={
            sw.told("INVOLVEMENT_STARTED"),
            sw.told("HOSPITAL_ATTENDANCE"),
            mums_worker.told("HOSPITAL_ATTENDANCE"),
        },
        absent=[hv, dsl],
    )
    # The policy's PRIORITY is the floor (the sender said ROUTINE); REFERENCE content only.
    for alert in attendance.alerts:
        if alert["kind"] == "HOSPITAL_ATTENDANCE":
            assert (alert["urgency"], alert["content_level"]) == ("PRIORITY", "REFERENCE")
            assert alert["changes"] == []


# --- 6. A lead practitioner handover -----------------------------------------------------


async def test_a_step_down_from_social_care_to_early_help_hands_the_lead_over(
    story: Story,
) -> None:
    """The case steps down: an early help worker takes the lead, then the social worker
    closes. When the new lead starts, the new lead (to learn who else is involved), the old
    lead and the team are all told; when the old lead closes, the new lead and the team are
    told and the old lead, whose own change it is, is not."""
    child = person_ref(
        nhs=210,
        upn_n=210,
        given="Anselm",
        family="Crowhurst",
        born="2016-02-29",
        **home("999000000601", "ZZ99 1AC"),
    )
    story.family(child)
    sw = social_worker("SW-210", "Bertil Ahlgren", "CIN-210")
    fsw = social_worker("FSW-210", "Bronwen Liddell", "CIN-210", role="family support worker")
    eh = family_worker("EH-210", "Tomasz Whitlock", "EH-210")
    started = story.at()

    # One case in social care: its records arrive in order.
    await story.phase(
        sw.involvement(child, CHILDREN_IN_NEED, involvement_id="SC-210", lead=True, at=started),
        fsw.involvement(child, FAMILY_SUPPORT, involvement_id="FS-210", at=story.at()),
        expect={sw.told("INVOLVEMENT_STARTED")},
    )
    await story.phase(
        eh.involvement(child, EARLY_HELP_TEAM, involvement_id="EH-210", lead=True, at=story.at()),
        expect={
            eh.told("INVOLVEMENT_STARTED"),
            sw.told("INVOLVEMENT_STARTED"),
            fsw.told("INVOLVEMENT_STARTED"),
        },
    )
    await story.phase(
        sw.involvement(
            child,
            CHILDREN_IN_NEED,
            involvement_id="SC-210",
            lead=True,
            change="ENDED",
            started_on=started.date(),
            end_reason="stepped down to early help",
            at=story.at(),
        ),
        expect={eh.told("INVOLVEMENT_ENDED"), fsw.told("INVOLVEMENT_ENDED")},
        absent=[sw],
    )


async def test_a_case_reallocated_to_a_new_social_worker_tells_old_and_new_lead(
    story: Story,
) -> None:
    """Within social care the case moves from one social worker to another (same
    involvement, new practitioner). Issue 4: a change of lead notifies both the old and the
    new lead; the team hears too."""
    child = person_ref(
        nhs=200,
        upn_n=200,
        given="Leopold",
        family="Ravensworth",
        born="2015-03-17",
        **home("999000000611", "ZZ99 1LR"),
    )
    story.family(child)
    old_lead = social_worker("SW-201", "Bertil Ahlgren", "CIN-200")
    new_lead = social_worker("SW-202", "Priya Castellano", "CIN-200")
    fsw = social_worker("FSW-200", "Bronwen Liddell", "CIN-200", role="family support worker")
    started = story.at()

    await story.phase(
        old_lead.involvement(
            child, CHILDREN_IN_NEED, involvement_id="SC-200", lead=True, at=started
        ),
        fsw.involvement(child, FAMILY_SUPPORT, involvement_id="FS-200", at=story.at()),
        expect={old_lead.told("INVOLVEMENT_STARTED")},
    )
    await story.phase(
        new_lead.involvement(
            child,
            CHILDREN_IN_NEED,
            involvement_id="SC-200",
            lead=True,
            change="UPDATED",
            started_on=started.date(),
            at=story.at(),
        ),
        expect={
            old_lead.told("INVOLVEMENT_UPDATED"),
            new_lead.told("INVOLVEMENT_UPDATED"),
            fsw.told("INVOLVEMENT_UPDATED"),
        },
    )


# --- 7. A case closure ------------------------------------------------------------------


async def test_a_case_closure_and_the_grace_period(story: Story) -> None:
    """Social care closed the case 20 days ago (recorded late) and the family support
    worker closed 3 days ago. The worker's clock decides the grace period (14 days in the
    policy), so the closures are dated in the past rather than later events in the future:
    an event dated 20 days ahead would still be routed at the worker's "now", within grace.

    Each closure tells the rest of the team. The social worker, closed for longer than the
    grace period, hears nothing more -- not even of the other closure (suppressed
    ``involvement_ended`` and audited); the family support worker, within it, still hears
    of a missing episode; the school hears everything for the team."""
    child = person_ref(
        nhs=220,
        upn_n=220,
        given="Peregrine",
        family="Oakenshaw",
        born="2014-10-10",
        **home("999000000701", "ZZ99 1PO"),
    )
    story.family(child)
    sw = social_worker("SW-220", "Bertil Ahlgren", "CIN-220")
    fsw = social_worker("FSW-220", "Bronwen Liddell", "CIN-220", role="family support worker")
    dsl = safeguarding_lead(OAKFIELD, "DSL-220", "Sam Okafor", "PUP-220")
    now = dt.datetime.now(dt.UTC)

    def days_ago(days: int) -> dt.datetime:
        return now - dt.timedelta(days=days)

    await story.phase(
        sw.involvement(
            child, CHILDREN_IN_NEED, involvement_id="SC-220", lead=True, at=days_ago(120)
        ),
        fsw.involvement(child, FAMILY_SUPPORT, involvement_id="FS-220", at=days_ago(60)),
        expect={sw.told("INVOLVEMENT_STARTED")},
    )
    await story.phase(
        dsl.involvement(child, OAKFIELD_SCHOOL, involvement_id="SCH-220", at=days_ago(45)),
        expect={sw.told("INVOLVEMENT_STARTED"), fsw.told("INVOLVEMENT_STARTED")},
    )
    await story.phase(
        sw.involvement(
            child,
            CHILDREN_IN_NEED,
            involvement_id="SC-220",
            lead=True,
            change="ENDED",
            started_on=days_ago(120).date(),
            at=days_ago(20),
        ),
        fsw.involvement(
            child,
            FAMILY_SUPPORT,
            involvement_id="FS-220",
            change="ENDED",
            started_on=days_ago(60).date(),
            at=days_ago(3),
        ),
        expect={
            fsw.told("INVOLVEMENT_ENDED"),  # the social worker's closure
            dsl.told("INVOLVEMENT_ENDED"),  # both closures: two alerts
        },
        absent=[sw],
    )
    missing = await story.phase(
        life_event(POLICE, "MIS-220", child, "MISSING_EPISODE", urgency="URGENT", at=now),
        expect={fsw.told("MISSING_EPISODE"), dsl.told("MISSING_EPISODE")},
        absent=[sw],
    )
    assert len({a["alert_id"] for a in missing.alerts}) == 2
    suppressed = {
        (r["kind"], r["recipient_id"], r["suppression"])
        for r in await story.audit()
        if r["outcome"] == "SUPPRESS"
    }
    assert suppressed == {
        ("INVOLVEMENT_ENDED", sw.recipient_id, "involvement_ended"),
        ("MISSING_EPISODE", sw.recipient_id, "involvement_ended"),
    }


# --- 8. A sensitive service's involvement --------------------------------------------------


async def test_a_sensitive_service_is_revealed_only_with_consent_or_an_override(
    story: Story,
) -> None:
    """A teenager starts with the young people's substance misuse service (no consent to
    share): nobody else is told, and the social worker's later alerts do not list it. She
    starts at the sexual health clinic, first without consent (nobody told), then consents:
    now the team hears. Finally the substance misuse service records a safeguarding
    override: the team is told of it. Every suppression is audited."""
    girl = person_ref(
        nhs=240,
        upn_n=240,
        given="Seraphina",
        family="Merriweather",
        born="2010-07-21",
        **home("999000000801", "ZZ99 1SM"),
    )
    story.family(girl)
    sw = social_worker("SW-240", "Bertil Ahlgren", "CIN-240")
    nurse = Practitioner(
        practitioner("SH-240", "Harriet Vance", "health.northshire", "sexual health nurse"),
        HEALTH,
        "SHC-240",
    )
    misuse = Practitioner(
        practitioner("DA-240", "Quentin Rushworth", "drug-alcohol.northshire", "recovery worker"),
        DRUG_ALCOHOL,
        "YPSM-240",
    )
    clinic = service("SH-YP", "Young People's Sexual Health Clinic", "SEXUAL_HEALTH", "SPECIALIST")
    misuse_service = service(
        "YPSM", "Young People's Substance Misuse Service", "SUBSTANCE_MISUSE", "SPECIALIST"
    )
    started = story.at()

    await story.phase(
        sw.involvement(girl, CHILDREN_IN_NEED, involvement_id="SC-240", lead=True, at=started),
        expect=set(),
    )
    await story.phase(
        misuse.involvement(girl, misuse_service, involvement_id="YPSM-240", at=started),
        expect=set(),
        absent=[sw],
    )
    clinic_started = story.at()
    consented = await story.phase(
        nurse.involvement(girl, clinic, involvement_id="SHC-240", at=clinic_started),
        nurse.involvement(
            girl, clinic, involvement_id="SHC-240", change="UPDATED", consent=True, at=story.at()
        ),
        expect={sw.told("INVOLVEMENT_UPDATED"), misuse.told("INVOLVEMENT_UPDATED")},
    )
    # The social worker learns of the clinic, never of the unconsented service.
    body = _text_of(consented, sw, "INVOLVEMENT_UPDATED")
    assert "Harriet Vance" in body
    assert "Quentin Rushworth" not in body
    assert "Substance Misuse" not in body
    await story.phase(
        misuse.involvement(
            girl,
            misuse_service,
            involvement_id="YPSM-240",
            change="UPDATED",
            override=safeguarding_override("DA-MGR-1", "risk of significant harm", story.at()),
            at=story.at(),
        ),
        expect={sw.told("INVOLVEMENT_UPDATED"), nurse.told("INVOLVEMENT_UPDATED")},
    )
    suppressed = sorted(
        (r["kind"], r["recipient_id"], r["suppression"])
        for r in await story.audit()
        if r["outcome"] == "SUPPRESS"
    )
    assert suppressed == sorted(
        [
            ("INVOLVEMENT_STARTED", sw.recipient_id, "sensitive_without_consent"),  # misuse
            ("INVOLVEMENT_STARTED", sw.recipient_id, "sensitive_without_consent"),  # clinic
            ("INVOLVEMENT_STARTED", misuse.recipient_id, "sensitive_without_consent"),  # clinic
        ]
    )


# --- 9. The same child recorded by three agencies -----------------------------------------


async def test_the_same_child_recorded_by_three_agencies_with_name_variants(
    story: Story,
) -> None:
    """Social care, the school and the police each record one boy, under name variants.
    Social care and the school share his NHS number: one person, and the lead hears the
    school joined. The police hold only their own id, "Sasha Tull", his date of birth and
    postcode: a probable match for a data steward, never routed on, so nobody hears of the
    first missing episode. The steward lists it (``hub identity candidates``) and confirms
    it (``hub identity confirm``); the next police report reaches the lead and, as a
    missing episode is for the team, the school."""
    house = home("999000000901", "ZZ99 1AP")
    by_council = person_ref(
        nhs=260,
        la_person_id="NSC-P-260",
        given="Alexander",
        family="Penrose-Tull",
        born="2015-02-03",
        **house,
    )
    by_school = person_ref(
        nhs=260, upn_n=260, given="Alex", family="Penrose", born="2015-02-03", **house
    )
    by_police = person_ref(
        police_id="NSP-260", given="Sasha", family="Tull", born="2015-02-03", postcode="ZZ99 1AP"
    )
    story.family(by_council, by_school, by_police)
    sw = social_worker("SW-260", "Kwame Oduya", "CIN-260")
    dsl = safeguarding_lead(OAKFIELD, "DSL-260", "Sam Okafor", "PUP-260")

    await story.phase(
        sw.involvement(
            by_council, CHILDREN_IN_NEED, involvement_id="SC-260", lead=True, at=story.at()
        ),
        expect=set(),
    )
    await story.phase(
        dsl.involvement(by_school, OAKFIELD_SCHOOL, involvement_id="SCH-260", at=story.at()),
        _missing(by_police, story),
        expect={sw.told("INVOLVEMENT_STARTED")},
    )
    listing = await story.hub("identity", "candidates")
    ids = re.findall(r"^(C[0-9a-f]{15}) ", listing, re.MULTILINE)
    assert len(ids) == 1, listing
    # The evidence, field by field, for the steward: Sasha is a variant of Alexander, Tull
    # one part of Penrose-Tull.
    assert "date of birth  agrees   2015-02-03  |  2015-02-03\n" in listing
    assert "postcode       agrees   ZZ991AP  |  ZZ991AP\n" in listing
    assert re.search(r"given name     agrees   .*sasha", listing), listing
    assert re.search(r"family name    agrees   .*tull", listing), listing
    assert "police_id:NSP260" in listing
    assert f"nhs_number:{nhs_number(260)}" in listing
    confirmed = await story.hub(
        "identity", "confirm", ids[0], "--steward", "steward-07", "--reason", "same child"
    )
    assert f"confirm of {ids[0]} recorded" in confirmed
    # The decision is on the ordered identity topic before this report can reach it.
    await story.phase(
        _missing(by_police, story),
        expect={sw.told("MISSING_EPISODE"), dsl.told("MISSING_EPISODE")},
    )
    assert "No open probable matches." in await story.hub("identity", "candidates")
    merges = [r for r in await story.identity_log() if isinstance(r, MergeRecord)]
    assert [(m.cause, m.candidate_id) for m in merges] == [("steward_confirmed", ids[0])]


def _missing(who: dict[str, Any], story: Story) -> dict[str, Any]:
    return life_event(POLICE, "MIS-260", who, "MISSING_EPISODE", urgency="URGENT", at=story.at())


# --- 10. Explicit subscriptions ---------------------------------------------------------


async def test_explicit_subscriptions_with_and_without_an_involvement(story: Story) -> None:
    """The youth justice officer works with a teenager and asks, with a reason, to hear of
    police custody: told. A housing officer asks too but works with no-one in the family:
    never told (suppressed, no legitimate relationship). The school, not subscribed, is not
    told of custody either (it is for leads and explicit subscribers)."""
    teen = person_ref(
        nhs=280,
        upn_n=280,
        given="Evander",
        family="Kilbride",
        born="2009-12-01",
        **home("999000001001", "ZZ99 1EK"),
    )
    story.family(teen)
    sw = social_worker("SW-280", "Bertil Ahlgren", "CIN-280")
    dsl = safeguarding_lead(RIVERSIDE, "DSL-280", "Ngozi Achterberg", "RIV-280")
    yot = Practitioner(
        practitioner(
            "YOT-280", "Imogen Sallow", "youth-justice.northshire", "youth justice officer"
        ),
        YOUTH_JUSTICE,
        "YJ-280",
    )
    housing = Practitioner(
        practitioner("HO-280", "Cormac Dunleavy", "housing.northshire", "housing officer"),
        HOUSING,
        "TEN-280",
    )
    youth_justice = service("YJS", "Youth Justice Service", "YOUTH_JUSTICE", "SPECIALIST")

    await story.phase(
        sw.involvement(teen, CHILDREN_IN_NEED, involvement_id="SC-280", lead=True, at=story.at()),
        expect=set(),
    )
    await story.phase(
        dsl.involvement(teen, RIVERSIDE_SCHOOL, involvement_id="RIV-280", at=story.at()),
        expect={sw.told("INVOLVEMENT_STARTED")},
    )
    await story.phase(
        yot.involvement(teen, youth_justice, involvement_id="YJ-280", at=story.at()),
        _subscription(yot, teen, ["POLICE_CUSTODY"], "supervising a referral order", story),
        _subscription(housing, teen, [], "tenancy sustainment", story),
        expect={sw.told("INVOLVEMENT_STARTED"), dsl.told("INVOLVEMENT_STARTED")},
        absent=[housing],
    )
    await story.phase(
        life_event(POLICE, "CUS-280", teen, "POLICE_CUSTODY", at=story.at()),
        expect={sw.told("POLICE_CUSTODY"), yot.told("POLICE_CUSTODY")},
        absent=[housing, dsl],
    )
    suppressed = {
        (r["kind"], r["recipient_id"], r["suppression"])
        for r in await story.audit()
        if r["outcome"] == "SUPPRESS"
    }
    assert ("POLICE_CUSTODY", housing.recipient_id, "no_legitimate_relationship") in suppressed


def _subscription(
    who: Practitioner, subject: dict[str, Any], kinds: list[str], reason: str, story: Story
) -> dict[str, Any]:
    return subscription(
        who.agency,
        who.case_ref,
        subject,
        who.record,
        subscription_id=f"SUB-{who.record['practitioner_id']}",
        kinds=kinds,
        reason=reason,
        at=story.at(),
    )


# --- 11. The disclosure audit -------------------------------------------------------------


_AUDIT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC  (SEND|SUPPRESSED \(\w+\))\s+(\w+)\s+to (\S+) \(case (\S+)\)$",
    re.MULTILINE,
)


def decisions(report: str) -> set[tuple[str, str, str, str]]:
    """The routing decisions ``hub audit`` lists. An out-of-hours copy (a disclosure of its
    own) depends on the clock the story runs at: it is checked to copy a listed alert."""
    lines = set(_AUDIT_LINE.findall(report))
    copies = {line for line in lines if line[2].endswith("/out-of-hours")}
    for _, kind, _, case in copies:
        assert any(k == kind and c == case for _, k, r, c in lines - copies), report
    assert report.count("copy of alert") == len(copies), report
    return lines - copies


async def test_the_disclosure_audit_answers_who_was_told_what(story: Story) -> None:
    """A teenager known to CAMHS (no consent to share) goes missing while her mother is
    served an eviction notice. ``hub audit --person`` answers, for each of them, who was
    told what, including the suppression that kept CAMHS hidden from the social worker;
    ``--practitioner`` answers for one practitioner."""
    flat = home("999000001101", "ZZ99 1MV")
    mum = person_ref(nhs=290, given="Maelys", family="Vantongeren", born="1984-04-04", **flat)
    teen = person_ref(
        nhs=291, upn_n=291, given="Rosamund", family="Vantongeren", born="2009-09-09", **flat
    )
    story.family(mum, teen)
    sw = social_worker("SW-291", "Bertil Ahlgren", "CIN-291")
    camhs = Practitioner(
        practitioner("CAMHS-291", "Harriet Vance", "health.northshire", "CAMHS clinician"),
        HEALTH,
        "CAMHS-291",
    )
    mental_health = service("CAMHS", "CAMHS North", "MENTAL_HEALTH", "SPECIALIST")

    await story.phase(
        relationship(SOCIAL_CARE, "CIN-291", mum, "PARENT_OF", teen, at=story.at()),
        sw.involvement(teen, CHILDREN_IN_NEED, involvement_id="SC-291", lead=True, at=story.at()),
        expect=set(),
    )
    await story.phase(
        camhs.involvement(teen, mental_health, involvement_id="CAMHS-291", at=story.at()),
        expect=set(),
        absent=[sw],
    )
    await story.phase(
        life_event(POLICE, "MIS-291", teen, "MISSING_EPISODE", urgency="URGENT", at=story.at()),
        life_event(HOUSING, "TEN-290", mum, "EVICTION_NOTICE", urgency="PRIORITY", at=story.at()),
        expect={
            sw.told("MISSING_EPISODE"),
            camhs.told("MISSING_EPISODE"),
            sw.told("EVICTION_NOTICE", "PARENT"),
        },
    )
    about_teen = await story.hub("audit", "--person", f"nhs_number:{nhs_number(291)}")
    assert decisions(about_teen) == {
        (
            "SUPPRESSED (sensitive_without_consent)",
            "INVOLVEMENT_STARTED",
            sw.recipient_id,
            "CIN-291",
        ),
        ("SEND", "MISSING_EPISODE", sw.recipient_id, "CIN-291"),
        ("SEND", "MISSING_EPISODE", camhs.recipient_id, "CAMHS-291"),
        ("SEND", "EVICTION_NOTICE", sw.recipient_id, "CIN-291"),
    }, about_teen
    about_mum = await story.hub("audit", "--person", f"nhs_number:{nhs_number(290)}")
    assert decisions(about_mum) == {
        ("SEND", "EVICTION_NOTICE", sw.recipient_id, "CIN-291"),
    }, about_mum
    for_camhs = await story.hub("audit", "--practitioner", camhs.recipient_id)
    assert decisions(for_camhs) == {
        ("SEND", "MISSING_EPISODE", camhs.recipient_id, "CAMHS-291"),
    }, for_camhs
    for answer in (about_teen, about_mum, for_camhs):
        assert not [p for p in story.personal if p in answer]


# --- 12. An eviction notice in a blended household ----------------------------------------


async def test_an_eviction_notice_reaches_every_child_in_the_household(story: Story) -> None:
    """A grandmother holds the tenancy; her son, the grandson she cares for under a kinship
    arrangement, and a lodger with his little girl live with her. Her eviction notice
    reaches each child's lead through the link that connects them: "about a parent", "about
    a carer", "about a household member". The grandson's school (a team member) and a
    neighbouring child's family worker (same postcode, another dwelling) are not told."""
    house = home("999000001201", "ZZ99 1WH")
    gran = person_ref(nhs=300, given="Winifred", family="Haverstock", born="1970-01-15", **house)
    son = person_ref(
        nhs=301, upn_n=301, given="Barnaby", family="Haverstock", born="2012-03-03", **house
    )
    grandson = person_ref(
        nhs=302, upn_n=302, given="Ptolemy", family="Ashcombe", born="2015-04-04", **house
    )
    lodger = person_ref(nhs=303, given="Ferdinand", family="Loxley", born="1990-09-09", **house)
    lodgers_girl = person_ref(
        nhs=304, given="Araminta", family="Loxley", born="2020-10-10", **house
    )
    neighbour = person_ref(
        nhs=305,
        given="Cosmo",
        family="Fairbairn",
        born="2016-06-06",
        **home("999000001202", "ZZ99 1WH"),
    )
    story.family(gran, son, grandson, lodger, lodgers_girl, neighbour)
    sw = social_worker("SW-301", "Bertil Ahlgren", "CIN-301")
    kinship_sw = social_worker(
        "SW-302", "Priya Castellano", "LAC-302", role="supervising social worker"
    )
    hv = health_visitor("HV-304", "Jo Lindqvist", "HV-304")
    neighbours_worker = family_worker("EH-305", "Tomasz Whitlock", "EH-305")
    dsl = safeguarding_lead(RIVERSIDE, "DSL-301", "Ngozi Achterberg", "RIV-301")
    looked_after = service("LAC-1", "Children Looked After Team", "SOCIAL_CARE", "STATUTORY")

    await story.phase(
        relationship(SOCIAL_CARE, "CIN-301", gran, "PARENT_OF", son, at=story.at()),
        relationship(SOCIAL_CARE, "LAC-302", gran, "CARER_OF", grandson, at=story.at()),
        relationship(SOCIAL_CARE, "CIN-301", lodger, "PARENT_OF", lodgers_girl, at=story.at()),
        sw.involvement(son, CHILDREN_IN_NEED, involvement_id="SC-301", lead=True, at=story.at()),
        kinship_sw.involvement(
            grandson, looked_after, involvement_id="SC-302", lead=True, at=story.at()
        ),
        hv.involvement(
            lodgers_girl, HEALTH_VISITING, involvement_id="HV-304", lead=True, at=story.at()
        ),
        neighbours_worker.involvement(
            neighbour, EARLY_HELP_TEAM, involvement_id="EH-305", lead=True, at=story.at()
        ),
        expect=set(),
    )
    await story.phase(
        dsl.involvement(grandson, RIVERSIDE_SCHOOL, involvement_id="RIV-302", at=story.at()),
        life_event(
            HOUSING,
            "TEN-300",
            gran,
            "EVICTION_NOTICE",
            urgency="PRIORITY",
            details={"notice_type": "section_21"},
            at=story.at(),
        ),
        expect={
            kinship_sw.told("INVOLVEMENT_STARTED"),
            sw.told("EVICTION_NOTICE", "PARENT"),
            kinship_sw.told("EVICTION_NOTICE", "CARER"),
            hv.told("EVICTION_NOTICE", "HOUSEHOLD_MEMBER"),
        },
        absent=[dsl, neighbours_worker],
    )


# --- 13. Two records of one child, joined by the mother's record ---------------------------


async def test_two_records_of_one_child_joined_later_reach_both_leads(story: Story) -> None:
    """Health knows a toddler by her NHS number, early help by the council's person id:
    two persons to the hub, each with a lead. Social care records the mother with the child
    under both identifiers: the two become one person, and from then on the child's news
    reaches both leads, and the mother's news reaches both "about a parent"."""
    flat = home("999000001301", "ZZ99 1DM")
    for_health = person_ref(
        nhs=320, given="Delphine", family="Marchbank", born="2021-05-05", **flat
    )
    for_council = person_ref(
        la_person_id="NSC-P-320",
        given="Delphine",
        family="Marchbank",
        born="2021-05-05",
        **flat,
    )
    joined = person_ref(nhs=320, la_person_id="NSC-P-320")
    mum = person_ref(
        nhs=321,
        la_person_id="NSC-P-321",
        given="Saoirse",
        family="Marchbank",
        born="1996-11-11",
        **flat,
    )
    story.family(for_health, for_council, mum)
    hv = health_visitor("HV-320", "Jo Lindqvist", "HV-320")
    eh = family_worker("EH-320", "Tomasz Whitlock", "EH-320")

    await story.phase(
        hv.involvement(
            for_health, HEALTH_VISITING, involvement_id="HV-320", lead=True, at=story.at()
        ),
        eh.involvement(
            for_council, EARLY_HELP_TEAM, involvement_id="EH-320", lead=True, at=story.at()
        ),
        expect=set(),
    )
    # Relationship events are routed for their subject (the mother: no team): no alerts.
    await story.phase(
        relationship(SOCIAL_CARE, "CIN-321", mum, "PARENT_OF", joined, at=story.at()),
        expect=set(),
    )
    await story.phase(
        life_event(
            POLICE, "MIS-320", for_council, "MISSING_EPISODE", urgency="URGENT", at=story.at()
        ),
        life_event(HOUSING, "TEN-321", mum, "EVICTION_NOTICE", urgency="PRIORITY", at=story.at()),
        expect={
            hv.told("MISSING_EPISODE"),
            eh.told("MISSING_EPISODE"),
            hv.told("EVICTION_NOTICE", "PARENT"),
            eh.told("EVICTION_NOTICE", "PARENT"),
        },
    )
    # The mother is linked to one child, not to the id the child had before the merge.
    mums_links = await story.hub("team", f"nhs_number:{nhs_number(321)}")
    linked = re.findall(r"^  - this person is .* of (P[A-Z2-7]+)", mums_links, re.MULTILINE)
    assert len(linked) == 1, mums_links


async def test_an_incident_before_the_case_opened_reaches_the_new_lead(story: Story) -> None:
    """The police report a boy missing and his mother's partner in custody; nobody works
    with the family yet, so nobody is told. Two days later social care opens a case: the
    new lead gets one catch-up email listing both, each routed again under the policy (the
    custody reaches the lead "about a parent's partner" only because the partnership was
    recorded), and the audit names that email for each."""
    flat = home("999000001401", "ZZ99 1CU")
    boy = person_ref(nhs=340, given="Osian", family="Prydderch", born="2014-02-02", **flat)
    mum = person_ref(nhs=341, given="Lowri", family="Prydderch", born="1988-08-08", **flat)
    partner = person_ref(nhs=342, given="Caradog", family="Blethyn", born="1985-05-05")
    story.family(boy, mum, partner)
    sw = social_worker("SW-340", "Bertil Ahlgren", "CIN-340")

    await story.phase(
        relationship(SOCIAL_CARE, "REF-340", mum, "PARENT_OF", boy, at=story.at()),
        relationship(POLICE, "DOM-341", mum, "PARTNER_OF", partner, at=story.at()),
        life_event(POLICE, "MIS-340", boy, "MISSING_EPISODE", urgency="URGENT", at=story.at()),
        life_event(POLICE, "CUS-342", partner, "POLICE_CUSTODY", at=story.at()),
        expect=set(),
    )
    result = await story.phase(
        sw.involvement(boy, CHILDREN_IN_NEED, involvement_id="SC-340", lead=True, at=story.at()),
        expect={sw.told("MISSING_EPISODE")},
    )
    (email,) = result.alerts
    assert [(e["kind"], e["link"]) for e in email["earlier"]] == [
        ("MISSING_EPISODE", "SELF"),
        ("POLICE_CUSTODY", "PARENTS_PARTNER"),
    ]
    text = _text_of(result, sw, "MISSING_EPISODE", catch_up=True)
    assert "Recorded before you were linked to this child" in text
    assert "Missing episode (URGENT - act today)" in text
    assert "about a parent's partner" in text
    audit = [r for r in await story.audit() if r["alert_id"] == email["alert_id"]]
    assert sorted(r["kind"] for r in audit) == ["MISSING_EPISODE", "POLICE_CUSTODY"]
    assert {r["why"] for r in audit} == {
        "catch-up: linked to the child after the event was recorded"
    }


def _text_of(result: PhaseResult, to: Practitioner, kind: str, catch_up: bool = False) -> str:
    """The plain-text body of the email that told ``to`` of ``kind`` in this phase (by
    its own alert, or by a catch-up)."""
    (alert_id,) = {
        a["alert_id"]
        for a in result.alerts
        if a["recipient_email"] == to.email and a["kind"] == kind and bool(a["earlier"]) == catch_up
    }
    (message,) = [m for m in result.emails if alert_id in str(m["Message-ID"])]
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())
