"""What ``hub identity candidates`` shows a data steward: each open candidate with both sides
as they are now and the evidence for and against, filtered and a page at a time.

No broker: the resolver runs in memory, and its tables are stored as the state changelog
stores them. Synthetic people only: NHS numbers and UPNs from the 999 ranges, ZZ99
postcodes.
"""

from __future__ import annotations

import datetime as dt
import json

from involvement_hub.cli.queries import (
    CandidateFilter,
    CandidateView,
    candidate_views,
    open_candidates,
    select_candidates,
)
from involvement_hub.cli.reports import candidates_report
from involvement_hub.core.identity import canonical_key, person_id
from involvement_hub.core.matching import Comparison, Profile, compare
from involvement_hub.core.messages import ToResolve
from involvement_hub.core.model import (
    Address,
    Envelope,
    Identifier,
    LifeEvent,
    LifeEventKind,
    PersonRef,
    Source,
    Urgency,
)
from involvement_hub.core.resolver import (
    CandidateRecord,
    IdentityLogRecord,
    ResolverTables,
    on_identity_message,
)
from involvement_hub.kafka import wire
from involvement_hub_devtools.synthetic import nhs_number, upn

SECRET = b"candidates-test-key"
DAY = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
DOB = dt.date(2016, 5, 5)


def ref(
    identifier: tuple[str, str], given: str, family: str, postcode: str | None = None
) -> PersonRef:
    return PersonRef(
        (Identifier(*identifier),),
        given_name=given,
        family_name=family,
        date_of_birth=DOB,
        address=Address(postcode=postcode) if postcode else None,
    )


def about(subject: PersonRef, n: int) -> ToResolve:
    envelope = Envelope(f"ev-{n}", DAY, DAY, Source("oakfield-primary", "mis", f"R-{n}"), subject)
    return ToResolve(LifeEvent(envelope, LifeEventKind.SCHOOL_EXCLUSION, Urgency.ROUTINE), DAY)


def resolve_all(*subjects: PersonRef) -> tuple[ResolverTables, list[IdentityLogRecord]]:
    """Each record on its own day, so the candidates are raised a day apart."""
    tables = ResolverTables({}, {}, {}, {}, {}, {}, {})
    log: list[IdentityLogRecord] = []
    for n, subject in enumerate(subjects):
        log += on_identity_message(about(subject, n), tables, SECRET, DAY + dt.timedelta(n)).log
    return tables, log


def views(tables: ResolverTables, log: list[IdentityLogRecord]) -> list[CandidateView]:
    """As ``hub identity candidates`` builds them from the state changelog's bytes."""
    return candidate_views(
        open_candidates(log),
        {k: v.encode() for k, v in tables.person_of.items()},
        {k: json.dumps(v).encode() for k, v in tables.keys_of.items()},
        {k: wire.dumps(v) for k, v in tables.profiles.items()},
    )


def pid(key: str) -> str:
    return person_id(canonical_key([key]), SECRET)


NHS, UPN, OTHER_NHS = nhs_number(31), upn(31), nhs_number(32)


# --- the evidence, field by field -----------------------------------------------------------


def test_compare_gives_each_field_its_verdict_and_the_values_of_both_sides() -> None:
    a = Profile(("christopher",), ("ashdown",), ("2016-05-05",), ("ZZ991AA",))
    b = Profile(("kit",), ("pike",), ("2016-05-05",), ())

    assert compare(a, b) == (
        Comparison("date_of_birth", True, ("2016-05-05",), ("2016-05-05",)),
        Comparison("given_name", True, ("christopher",), ("kit",)),
        Comparison("family_name", False, ("ashdown",), ("pike",)),
        Comparison("postcode", None, ("ZZ991AA",), ()),
    )


def test_compare_shows_conflicting_nhs_numbers_against() -> None:
    found = compare(Profile(), Profile(), [f"nhs_number:{NHS}"], [f"nhs_number:{OTHER_NHS}"])
    assert Comparison("nhs_number", False, (NHS,), (OTHER_NHS,)) in found
    assert not any(c.field == "upn" for c in compare(Profile(), Profile(), [f"upn:{UPN}"], []))


# --- both sides as they are now ---------------------------------------------------------------


def test_a_view_shows_both_sides_now_with_names_birthdays_and_postcodes() -> None:
    tables, log = resolve_all(
        ref(("nhs_number", NHS), "Christopher", "Ashdown", "ZZ99 1AA"),
        ref(("upn", UPN), "Kit", "Ashdwon", "ZZ99 2BB"),
    )

    (view,) = views(tables, log)

    assert {view.person_a, view.person_b} == {pid(f"nhs_number:{NHS}"), pid(f"upn:{UPN}")}
    by_field = {c.field: c for c in view.comparisons}
    assert by_field["postcode"].agrees is False
    assert {*by_field["postcode"].a, *by_field["postcode"].b} == {"ZZ991AA", "ZZ992BB"}
    assert (view.agreeing, view.conflicting) == (3, 1)
    assert not view.one_person


def test_a_side_that_has_since_learnt_another_nhs_number_shows_it_against() -> None:
    tables, log = resolve_all(
        ref(("nhs_number", NHS), "Kit", "Ashdown"),
        ref(("upn", UPN), "Kit", "Ashdown"),
    )
    # Later the school records the pupil's NHS number: a different one.
    on_identity_message(
        about(
            PersonRef(
                (Identifier("upn", UPN), Identifier("nhs_number", OTHER_NHS)),
                given_name="Kit",
                family_name="Ashdown",
                date_of_birth=DOB,
            ),
            9,
        ),
        tables,
        SECRET,
        DAY,
    )

    (view,) = views(tables, log)

    assert pid(f"nhs_number:{OTHER_NHS}") in (view.person_a, view.person_b)
    nhs = next(c for c in view.comparisons if c.field == "nhs_number")
    assert nhs.agrees is False
    assert {*nhs.a, *nhs.b} == {NHS, OTHER_NHS}


# --- filters and pages ----------------------------------------------------------------------


def many() -> list[CandidateView]:
    """Five records of one child's birthday: every two are a candidate (10), raised over
    five days; the fifth agrees on the postcode with the first too."""
    tables, log = resolve_all(
        ref(("upn", upn(41)), "Kit", "Ashdown", "ZZ99 1AA"),
        ref(("upn", upn(42)), "Kit", "Ashdown"),
        ref(("upn", upn(43)), "Kit", "Ashdwon"),
        ref(("upn", upn(44)), "Christopher", "Ashdown"),
        ref(("upn", upn(45)), "Kit", "Ashdown", "ZZ99 1AA"),
    )
    assert len([r for r in log if isinstance(r, CandidateRecord)]) == 10
    return views(tables, log)


def test_pages_go_through_every_candidate_once_oldest_first() -> None:
    all_views = many()
    seen = []
    for offset in range(0, 10, 3):
        page, passing = select_candidates(all_views, CandidateFilter(limit=3, offset=offset))
        assert passing == 10
        seen += page
    assert sorted(v.record.candidate.candidate_id for v in seen) == sorted(
        v.record.candidate.candidate_id for v in all_views
    )
    assert [v.record.at for v in seen] == sorted(v.record.at for v in seen)


def test_filters_by_day_raised_agreement_and_person() -> None:
    all_views = many()

    since, _ = select_candidates(all_views, CandidateFilter(since=(DAY + dt.timedelta(3)).date()))
    assert len(since) == 4 + 3  # the fourth record's three, the fifth's four
    strong, passing = select_candidates(all_views, CandidateFilter(min_agreeing=4))
    assert passing == 1
    assert {strong[0].person_a, strong[0].person_b} == {
        pid(f"upn:{upn(41)}"),
        pid(f"upn:{upn(45)}"),
    }
    mine, _ = select_candidates(all_views, CandidateFilter(person=pid(f"upn:{upn(43)}")))
    assert len(mine) == 4


def test_the_report_shows_the_evidence_and_how_to_get_the_next_page() -> None:
    all_views = many()
    wanted = CandidateFilter(since=(DAY + dt.timedelta(3)).date(), limit=2)
    page, passing = select_candidates(all_views, wanted)

    text = candidates_report(page, passing, len(all_views), wanted)

    assert text.startswith("10 open probable matches, 7 of them pass the filters; 1-2, oldest")
    assert text.count(" raised 2026-11-23 09:00 UTC: 3 agree, 0 differ\n") == 2
    assert f"    B {pid(f'upn:{upn(41)}')}: upn:{upn(41)}\n" in text
    assert "      date of birth  agrees   2016-05-05  |  2016-05-05\n" in text
    assert "      given name     agrees   christopher  |  kit\n" in text
    assert "      postcode       unknown  -  |  ZZ991AA\n" in text
    assert "More: --offset 2 (--limit 2 a page)." in text
    assert "More: --offset 2 (--limit 2 a page)." in text


def test_the_report_says_when_a_page_is_past_the_end() -> None:
    all_views = many()
    wanted = CandidateFilter(offset=10)
    page, passing = select_candidates(all_views, wanted)
    assert candidates_report(page, passing, 10, wanted) == (
        "10 open probable matches; none from number 11."
    )
