"""A synthetic population: families, their identifiers in each agency, the services that
work with them, and a stream of events about them. Seeded and reproducible.

Nobody here is real. NHS numbers come from the 999 test range (valid check digits), UPNs
from the fictional local authority 999, UPRNs from 99900..., postcodes from the ZZ99
pseudo-postcodes, names from short invented lists, email addresses from ``.example``.

Realism, within reason: one or two adults, one to four children; agencies hold different
identifier sets for the same person (and sometimes none of the strong ones), spell names
differently (variants, typos), miss dates of birth; families separate, gain partners and
move house; services start and end work; life events arrive in a rough real-world mix.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from involvement_hub.core.identity import nhs_check_digit

GIVEN = (
    "Ash",
    "Bay",
    "Cary",
    "Dale",
    "Eden",
    "Finn",
    "Gale",
    "Hollis",
    "Indy",
    "Jules",
    "Kit",
    "Lane",
    "Morgan",
    "Nico",
    "Oakley",
    "Perry",
    "Quinn",
    "Reese",
    "Sam",
    "Tate",
    "Umber",
    "Vale",
    "Wren",
    "Yael",
    "Zephyr",
    "Robin",
    "Alex",
    "Jo",
    "Charlie",
    "Frankie",
)
VARIANTS = {
    "Kit": "Christopher",
    "Sam": "Samuel",
    "Alex": "Alexander",
    "Jo": "Joanne",
    "Robin": "Robert",
}
FAMILY = (
    "Ashdown",
    "Brackwater",
    "Coldfell",
    "Dunmere",
    "Elsworth",
    "Farrowby",
    "Greyholt",
    "Hartwell",
    "Ivesby",
    "Kestrel",
    "Larkmoor",
    "Marlow-Vane",
    "Northcote",
    "Orrin",
    "Pellow",
    "Quarry",
    "Rookwood",
    "Stellan",
    "Thorncombe",
    "Underhay",
    "Vexley",
    "Wyvern",
)
SOCIAL_CARE = "northshire-social-care"
EARLY_HELP = "northshire-early-help"
POLICE = "northshire-police"
HEALTH = "northshire-health"
HOUSING = "northshire-housing"
YOUTH_JUSTICE = "northshire-youth-justice"
DRUG_ALCOHOL = "northshire-drug-alcohol"
SCHOOLS = ("oakfield-primary", "riverside-academy")
# (kind, weight, sending agency or "school", urgency): a rough mix of what agencies report.
LIFE_EVENT_MIX = (
    ("PERSISTENT_ABSENCE", 14, "school", "ROUTINE"),
    ("SCHOOL_CHANGE", 6, "school", "ROUTINE"),
    ("SCHOOL_EXCLUSION", 5, "school", "PRIORITY"),
    ("HOSPITAL_ATTENDANCE", 14, HEALTH, "PRIORITY"),
    ("HOSPITAL_ADMISSION", 3, HEALTH, "URGENT"),
    ("ADDRESS_CHANGED", 8, HOUSING, "ROUTINE"),
    ("EVICTION_NOTICE", 3, HOUSING, "PRIORITY"),
    ("HOMELESSNESS_APPLICATION", 2, HOUSING, "PRIORITY"),
    ("DOMESTIC_ABUSE_INCIDENT", 8, POLICE, "URGENT"),
    ("POLICE_CUSTODY", 4, POLICE, "PRIORITY"),
    ("MISSING_EPISODE", 3, POLICE, "URGENT"),
    ("HOUSEHOLD_MEMBER_JOINED", 4, HOUSING, "ROUTINE"),
    ("PARENTAL_SEPARATION", 3, SOCIAL_CARE, "ROUTINE"),
    ("CARER_CHANGED", 2, SOCIAL_CARE, "PRIORITY"),
    ("BIRTH", 2, HEALTH, "ROUTINE"),
)


@dataclass
class Person:
    number: int
    nhs: str | None
    given: str
    family: str
    born: dt.date
    child: bool
    upn: str | None = None
    la_id: str | None = None
    police_id: str | None = None


@dataclass
class Family:
    number: int
    uprn: str
    postcode: str
    adults: list[Person]
    children: list[Person]
    school: str
    practitioners: dict[str, dict[str, Any]] = field(default_factory=dict)
    involvements: list[tuple[str, Person, str, str]] = field(
        default_factory=list
    )  # agency, person, id, ref


SLOTS = 6  # persons numbered per family: two adults, four children


class Population:
    """Families 0..n-1, generated lazily and identically for a given seed."""

    def __init__(
        self,
        families: int,
        seed: int = 1,
        today: dt.date = dt.date(2026, 11, 2),
        *,
        first: int = 0,
    ) -> None:
        """``first`` numbers the families from there (and their persons' identifiers), so
        populations published to one broker at different times need not share anyone."""
        self.families = families
        self.seed = seed
        self.today = today
        self.first = first
        self._event = 0

    @staticmethod
    def _nhs(index: int) -> str | None:
        """Person ``index``'s NHS number: body 999000000 + index, when that body has a valid
        check digit and the 999 test range has not run out (about 9 bodies in 10 do; the
        range holds a million, so in very large populations later persons have none)."""
        if index >= 1_000_000:
            return None
        body = str(999_000_000 + index)
        check = nhs_check_digit(body)
        return None if check is None else f"{body}{check}"

    def family(self, index: int) -> Family:
        """The ``index``-th family of this population (0 .. families - 1)."""
        number = self.first + index
        rng = random.Random(self.seed * 1_000_003 + number)
        surname = rng.choice(FAMILY)
        base = number * SLOTS
        adult_count = 1 if rng.random() < 0.35 else 2
        child_count = rng.choices((1, 2, 3, 4), (40, 35, 17, 8))[0]
        adults = [self._person(rng, surname, base + i, child=False) for i in range(adult_count)]
        children = [
            self._person(rng, surname, base + 2 + i, child=True) for i in range(child_count)
        ]
        for child in children:
            if self._school_age(child) and rng.random() < 0.95:
                child.upn = f"A999{child.number:09d}"
        family = Family(
            number=number,
            uprn=f"99900{number:07d}",
            postcode=f"ZZ99 {number % 9 + 1}{chr(65 + number % 26)}{chr(65 + (number // 26) % 26)}",
            adults=adults,
            children=children,
            school=SCHOOLS[number % len(SCHOOLS)],
        )
        self._services(rng, family)
        return family

    def _person(self, rng: random.Random, surname: str, index: int, *, child: bool) -> Person:
        age_days = rng.randint(0, 17 * 365) if child else rng.randint(20 * 365, 55 * 365)
        return Person(
            number=index,
            nhs=self._nhs(index) if rng.random() < (0.99 if child else 0.95) else None,
            given=rng.choice(GIVEN),
            family=surname,
            born=self.today - dt.timedelta(days=age_days),
            child=child,
            la_id=f"LA-{index:08d}" if rng.random() < 0.4 else None,
            police_id=f"NP-{index:08d}" if not child and rng.random() < 0.2 else None,
        )

    def _school_age(self, person: Person) -> bool:
        return 4 <= (self.today - person.born).days // 365 <= 16

    def _services(self, rng: random.Random, family: Family) -> None:
        n = family.number

        def practitioner(agency: str, pid: str, role: str, team: str) -> dict[str, Any]:
            key = f"{agency}/{pid}"
            if key not in family.practitioners:
                family.practitioners[key] = {
                    "practitioner_id": pid,
                    "name": f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}",
                    "role": role,
                    "email": f"{pid.lower()}@{agency}.example",
                    "phone": "01632 960" + f"{rng.randint(0, 999):03d}",
                    "team": team,
                    "out_of_hours_phone": "01632 960999",
                }
            return family.practitioners[key]

        # Practitioners are shared across families: ids from a small pool per agency.
        if rng.random() < 0.2:
            sw = practitioner(SOCIAL_CARE, f"SW-{n % 150:03d}", "social worker", "Children in Need")
            for child in family.children:
                family.involvements.append(
                    (SOCIAL_CARE, child, f"SC-{n}-{child.number}", f"CIN-{n:06d}")
                )
            family.practitioners["lead:social-care"] = sw
        elif rng.random() < 0.15:
            practitioner(EARLY_HELP, f"EH-{n % 80:03d}", "family support worker", "Early Help")
            for child in family.children:
                family.involvements.append(
                    (EARLY_HELP, child, f"EH-{n}-{child.number}", f"EH-{n:06d}")
                )
        for child in family.children:
            if child.upn:
                practitioner(
                    family.school, f"DSL-{n % 40:02d}", "designated safeguarding lead", "Pastoral"
                )
                family.involvements.append(
                    (family.school, child, f"SCH-{n}-{child.number}", f"PUP-{child.number:07d}")
                )
            if (self.today - child.born).days < 5 * 365:
                practitioner(HEALTH, f"HV-{n % 120:03d}", "health visitor", "0-19 Service")
                family.involvements.append(
                    (HEALTH, child, f"HV-{n}-{child.number}", f"CHR-{child.number:07d}")
                )
            if rng.random() < 0.05:
                practitioner(HEALTH, f"CAMHS-{n % 30:02d}", "mental health practitioner", "CAMHS")
                family.involvements.append(
                    (HEALTH, child, f"CAMHS-{n}-{child.number}", f"MH-{child.number:07d}")
                )
            if rng.random() < 0.03 and (self.today - child.born).days > 10 * 365:
                practitioner(
                    YOUTH_JUSTICE, f"YJ-{n % 20:02d}", "youth justice officer", "Youth Justice"
                )
                family.involvements.append(
                    (YOUTH_JUSTICE, child, f"YJ-{n}-{child.number}", f"YJ-{child.number:07d}")
                )
        for adult in family.adults:
            if rng.random() < 0.05:
                practitioner(
                    DRUG_ALCOHOL, f"DA-{n % 25:02d}", "recovery worker", "Recovery Service"
                )
                family.involvements.append(
                    (DRUG_ALCOHOL, adult, f"DA-{n}-{adult.number}", f"DA-{adult.number:07d}")
                )

    # -- records -------------------------------------------------------------------

    def person_ref(
        self, person: Person, family: Family, agency: str, rng: random.Random
    ) -> dict[str, Any]:
        """How ``agency`` records this person: its own identifiers, its own spelling."""
        identifiers = []
        if person.nhs and (agency != POLICE or rng.random() < 0.6):
            identifiers.append({"scheme": "nhs_number", "value": person.nhs})
        if person.upn and agency in (*SCHOOLS, SOCIAL_CARE, EARLY_HELP):
            identifiers.append({"scheme": "upn", "value": person.upn})
        if person.la_id and agency in (SOCIAL_CARE, EARLY_HELP, HOUSING):
            identifiers.append({"scheme": "la_person_id", "value": person.la_id})
        if person.police_id and agency == POLICE:
            identifiers.append({"scheme": "police_id", "value": person.police_id})
        if not identifiers:
            # Someone the agency knows only by a local id: it links nothing until a steward
            # confirms a probable match.
            identifiers.append({"scheme": "la_person_id", "value": f"LA-X{person.number:07d}"})
        given = person.given
        if rng.random() < 0.1:
            given = VARIANTS.get(given, given)
        family_name = person.family
        if rng.random() < 0.02 and len(family_name) > 4:
            i = rng.randrange(1, len(family_name) - 1)
            family_name = (
                family_name[:i] + family_name[i + 1] + family_name[i] + family_name[i + 2 :]
            )
        return {
            "identifiers": identifiers,
            "given_name": given,
            "family_name": family_name,
            "date_of_birth": None if rng.random() < 0.05 else person.born.isoformat(),
            "address": {"uprn": family.uprn, "postcode": family.postcode},
        }

    def _envelope(
        self, agency: str, ref: str, subject: dict[str, Any], at: dt.datetime
    ) -> dict[str, Any]:
        self._event += 1
        when = at.isoformat()
        return {
            "event_id": f"sim-{self.seed}-{self._event}",
            "occurred_at": when,
            "recorded_at": when,
            "source": {"agency_id": agency, "system": "simulated", "record_ref": ref},
            "subject": subject,
        }

    def setup_records(self, family: Family, at: dt.datetime) -> Iterator[dict[str, Any]]:
        """What agencies already know when the hub starts: parents and involvements."""
        rng = random.Random(self.seed * 7919 + family.number)
        for adult in family.adults:
            for child in family.children:
                subject = self.person_ref(adult, family, SOCIAL_CARE, rng)
                yield {
                    "schema": "Relationship",
                    **self._envelope(SOCIAL_CARE, f"FAM-{family.number:06d}", subject, at),
                    "relationship": "PARENT_OF",
                    "related_person": self.person_ref(child, family, SOCIAL_CARE, rng),
                    "change": "STARTED",
                }
        for agency, person, involvement_id, ref in family.involvements:
            yield self._involvement(family, agency, person, involvement_id, ref, "STARTED", at, rng)

    def _involvement(
        self,
        family: Family,
        agency: str,
        person: Person,
        involvement_id: str,
        ref: str,
        change: str,
        at: dt.datetime,
        rng: random.Random,
    ) -> dict[str, Any]:
        who = next(
            p
            for k, p in family.practitioners.items()
            if k.startswith(f"{agency}/") and (("CAMHS" in involvement_id) == ("CAMHS" in k))
        )
        category = {
            SOCIAL_CARE: "SOCIAL_CARE",
            EARLY_HELP: "EARLY_HELP",
            HEALTH: "HEALTH",
            YOUTH_JUSTICE: "YOUTH_JUSTICE",
            DRUG_ALCOHOL: "SUBSTANCE_MISUSE",
        }.get(agency, "EDUCATION")
        if "CAMHS" in involvement_id:
            category = "MENTAL_HEALTH"
        lead = agency in (SOCIAL_CARE, EARLY_HELP) or (
            agency == HEALTH
            and category == "HEALTH"
            and not family.practitioners.get("lead:social-care")
        )
        record = {
            "schema": "Involvement",
            **self._envelope(agency, ref, self.person_ref(person, family, agency, rng), at),
            "involvement_id": involvement_id,
            "change": change,
            "service": {
                "service_id": f"{agency}-{category.lower()}",
                "name": f"{who['team']}",
                "category": category,
                "level": "TARGETED",
            },
            "practitioner": who,
            "is_lead": lead,
            "lawful_basis": "PUBLIC_TASK",
            "consent_to_share": rng.random() < 0.5
            if category in ("MENTAL_HEALTH", "SUBSTANCE_MISUSE")
            else None,
            "started_on": (at.date() - dt.timedelta(days=rng.randint(1, 400))).isoformat(),
        }
        if change == "ENDED":
            record["ended_on"] = at.date().isoformat()
            record["end_reason"] = rng.choice(
                ("case closed", "support plan completed", "moved out of area")
            )
        return record

    def events(
        self, count: int, start: dt.datetime, step: dt.timedelta = dt.timedelta(seconds=1)
    ) -> Iterator[dict[str, Any]]:
        """A stream of ``count`` events about the population, in time order."""
        rng = random.Random(self.seed * 104_729)
        kinds = [k for k, *_ in LIFE_EVENT_MIX]
        weights = [w for _, w, *_ in LIFE_EVENT_MIX]
        at = start
        for _ in range(count):
            at += step
            family = self.family(rng.randrange(self.families))
            if rng.random() < 0.15 and family.involvements:
                agency, person, involvement_id, ref = rng.choice(family.involvements)
                change = rng.choice(("UPDATED", "ENDED", "UPDATED"))
                yield self._involvement(
                    family, agency, person, involvement_id, ref, change, at, rng
                )
                continue
            index = rng.choices(range(len(kinds)), weights)[0]
            kind, _, sender, urgency = LIFE_EVENT_MIX[index]
            agency = family.school if sender == "school" else sender
            people = (
                family.children
                if sender == "school" or kind in ("MISSING_EPISODE", "HOSPITAL_ATTENDANCE")
                else family.adults + family.children
            )
            subject = rng.choice(people)
            record: dict[str, Any] = {
                "schema": "LifeEvent",
                **self._envelope(
                    agency,
                    f"{agency[:4].upper()}-{family.number:06d}",
                    self.person_ref(subject, family, agency, rng),
                    at,
                ),
                "kind": kind,
                "urgency": urgency,
                "related": [],
                "details": {},
            }
            if kind == "HOUSEHOLD_MEMBER_JOINED":
                # A new partner: someone outside the numbered population, known to this
                # agency by a local id only.
                partner = self._person(rng, rng.choice(FAMILY), 10**9 + self._event, child=False)
                partner.nhs = None
                record["related"] = [
                    {
                        "person": self.person_ref(partner, family, agency, rng),
                        "relationship": "PARTNER",
                    }
                ]
            elif kind == "ADDRESS_CHANGED":
                record["new_address"] = {
                    "uprn": f"99901{rng.randrange(10**7):07d}",
                    "postcode": "ZZ99 9ZZ",
                }
            elif kind == "SCHOOL_EXCLUSION":
                record["details"] = {
                    "exclusion_type": rng.choice(("fixed_term", "suspension")),
                    "days": str(rng.randint(1, 5)),
                }
            yield record
