"""Probable matches (core/matching.py): names, typos, variants and the evidence rule.

Fictional names only; dates of birth and ZZ99 postcodes are invented.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from involvement_hub.core.matching import (
    Profile,
    candidate_id,
    conflicting_identifiers,
    evidence,
    merge_profiles,
    normalise_name,
    normalise_postcode,
    profile_of,
    similar_family,
    similar_given,
    within_one_edit,
)
from involvement_hub.core.model import Address, Identifier, PersonRef
from involvement_hub_devtools.synthetic import nhs_number, upn

DOB = "2016-05-05"


def profile(
    given: str | None = "kit",
    family: str | None = "ashdown",
    dob: str | None = DOB,
    postcode: str | None = None,
) -> Profile:
    return Profile(
        given=(given,) if given else (),
        family=(family,) if family else (),
        dates_of_birth=(dob,) if dob else (),
        postcodes=(postcode,) if postcode else (),
    )


# --- normalising --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Zoë", "zoe"),
        ("SIOBHÁN", "siobhan"),
        ("José María", "jose maria"),
        ("  Kit   ASHDOWN ", "kit ashdown"),
        ("O'Brien-Vale", "o'brien-vale"),
        ("St. John", "st john"),
        ("Ash_down2", "ash down"),
        ("Straße", "strasse"),
    ],
)
def test_names_lose_accents_case_and_punctuation(raw: str, expected: str) -> None:
    assert normalise_name(raw) == expected


def test_letters_with_a_stroke_are_transliterated() -> None:
    # Letters Unicode does not decompose would otherwise be dropped ('Søren' -> 's ren'),
    # and two of them would defeat the one-typo allowance.
    assert normalise_name("Søren Łukasz") == "soren lukasz"


def test_postcodes_lose_spaces_and_case() -> None:
    assert normalise_postcode(" zz99 1aa ") == "ZZ991AA"


# --- one typo -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("ashdown", "ashdown"),
        ("ashdown", "ashdiwn"),  # substitution
        ("ashdown", "ashdowns"),  # insertion at the end
        ("ashdown", "ashhdown"),  # insertion inside
        ("ashdown", "shdown"),  # deletion at the start
        ("ashdown", "ashdwn"),  # deletion inside
        ("ashdown", "ashdwon"),  # adjacent swap
        ("ashdown", "sahdown"),  # adjacent swap at the start
        ("", "a"),
    ],
)
def test_one_edit_is_within_one_edit(a: str, b: str) -> None:
    assert within_one_edit(a, b)
    assert within_one_edit(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("ashdown", "asxdowx"),  # two substitutions
        ("ashdown", "ashdownss"),  # two insertions
        ("ashdown", "shdwn"),  # two deletions
        ("ashdown", "ahsdwon"),  # two swaps
        ("ashdown", "awdohsn"),  # a swap of letters that are not adjacent
        ("abc", "cba"),
        ("ashdown", "xashdowny"),
    ],
)
def test_two_edits_are_not(a: str, b: str) -> None:
    assert not within_one_edit(a, b)
    assert not within_one_edit(b, a)


def _damerau(a: str, b: str) -> int:
    """Optimal string alignment distance: the reference the fast check must agree with."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


@settings(max_examples=200, deadline=None, database=None)
@given(st.text("abc", max_size=6), st.text("abc", max_size=6))
def test_within_one_edit_agrees_with_the_edit_distance(a: str, b: str) -> None:
    assert within_one_edit(a, b) == (_damerau(a, b) <= 1)


# --- given and family names ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("kit", "christopher"),
        ("chris", "kit"),
        ("sam", "samuel"),
        ("sam", "samantha"),
        ("liam", "william"),
        ("robin", "robyn"),  # a typo in a name of four letters or more
        ("ellis", "elis"),
    ],
)
def test_similar_given_names(a: str, b: str) -> None:
    assert similar_given(a, b)
    assert similar_given(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("samuel", "samantha"),  # both are "sam", but not each other
        ("kit", "kat"),  # a typo in a short name is another name
        ("ash", "asha"),
        ("jo", "joe"),  # different groups: joanne and joseph
        ("christopher", "christina"),
    ],
)
def test_different_given_names(a: str, b: str) -> None:
    assert not similar_given(a, b)
    assert not similar_given(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("ashdown", "ashdown"),
        ("ashdown", "ashdwon"),
        ("vale", "valle"),
        ("ashdown-reyes", "reyes"),
        ("ashdown", "ashdown-reyes"),
        ("ashdown reyes", "reyes"),
    ],
)
def test_similar_family_names(a: str, b: str) -> None:
    assert similar_family(a, b)
    assert similar_family(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [("li", "le"), ("vale", "pike"), ("ashdown", "ashton"), ("ashdown-reyes", "pike-moor")],
)
def test_different_family_names(a: str, b: str) -> None:
    assert not similar_family(a, b)


# --- evidence -----------------------------------------------------------------------------


def test_same_birthday_a_variant_and_a_typo_are_a_candidate() -> None:
    found = evidence(profile("christopher", "ashdown"), profile("kit", "ashdwon"))
    assert found == ("date_of_birth", "given_name", "family_name")


def test_a_given_name_and_a_postcode_are_enough() -> None:
    a = profile("kit", "ashdown", postcode="ZZ991AA")
    b = profile("kit", "reyes", postcode="ZZ991AA")
    assert evidence(a, b) == ("date_of_birth", "given_name", "postcode")


def test_a_given_name_alone_is_not_enough() -> None:
    assert evidence(profile("kit", "ashdown"), profile("kit", "pike")) is None


def test_twins_are_not_proposed() -> None:
    a = profile("kit", "ashdown", postcode="ZZ991AA")
    b = profile("robin", "ashdown", postcode="ZZ991AA")
    assert evidence(a, b) is None


def test_no_shared_birthday_is_no_candidate() -> None:
    a = profile("kit", "ashdown", dob="2016-05-05", postcode="ZZ991AA")
    b = profile("kit", "ashdown", dob="2016-05-06", postcode="ZZ991AA")
    assert evidence(a, b) is None
    assert evidence(a, profile("kit", "ashdown", dob=None)) is None


def test_an_unknown_given_name_needs_family_and_postcode() -> None:
    known = profile("kit", "ashdown", postcode="ZZ991AA")
    assert evidence(known, profile(None, "ashdown", postcode="ZZ991AA")) == (
        "date_of_birth",
        "family_name",
        "postcode",
    )
    assert evidence(known, profile(None, "ashdown")) is None
    assert evidence(known, profile(None, "pike", postcode="ZZ991AA")) is None
    assert evidence(profile(None, "ashdown"), profile(None, "ashdown")) is None


def test_any_of_several_recorded_values_may_match() -> None:
    merged = merge_profiles(profile("christopher", "ashdown"), profile("chris", "reyes"))
    assert merged.given == ("christopher", "chris")
    assert evidence(merged, profile("kit", "reyes")) is not None


def test_a_profile_keeps_a_bounded_number_of_values() -> None:
    many = Profile()
    for i in range(20):
        many = merge_profiles(many, profile(f"name{i}", f"family{i}"))
    assert len(many.given) == 5
    assert len(many.family) == 5
    assert many.dates_of_birth == (DOB,)


def test_a_profile_is_built_from_a_person_reference() -> None:
    import datetime as dt

    ref = PersonRef(
        (Identifier("nhs_number", nhs_number(1)),),
        given_name="Kit",
        family_name="ASHDOWN",
        date_of_birth=dt.date(2016, 5, 5),
        address=Address(uprn="999000000001", postcode="zz99 1aa"),
    )
    assert profile_of(ref) == Profile(("kit",), ("ashdown",), (DOB,), ("ZZ991AA",))
    assert profile_of(PersonRef((Identifier("upn", upn(1)),))) == Profile()


# --- candidate ids ------------------------------------------------------------------------


def test_candidate_ids_do_not_depend_on_which_side_is_named_first() -> None:
    a = (f"nhs_number:{nhs_number(1)}", f"upn:{upn(1)}")
    b = (f"upn:{upn(2)}",)
    assert candidate_id(a, b) == candidate_id(b, a)
    assert candidate_id(a, b) != candidate_id(a, (f"upn:{upn(3)}",))
    assert candidate_id(a, b).startswith("C")


# --- conflicting identifiers --------------------------------------------------------------


def test_two_different_nhs_numbers_conflict() -> None:
    a = (f"nhs_number:{nhs_number(1)}", f"upn:{upn(1)}")
    b = (f"nhs_number:{nhs_number(2)}",)
    assert conflicting_identifiers(a, b) == ("nhs_number",)
    assert conflicting_identifiers(b, a) == ("nhs_number",)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # Only one side holds an NHS number: nothing to disagree on.
        ((f"nhs_number:{nhs_number(1)}",), (f"upn:{upn(1)}",)),
        # A pupil's temporary and permanent UPNs, one council's two local ids: one person may
        # hold both, so they are left to the steward.
        ((f"upn:{upn(1)}",), (f"upn:{upn(2)}",)),
        (("la_person_id:LA00000001",), ("la_person_id:LAX0000001",)),
        # One side holds two NHS numbers (a steward joined them) and shares one of them.
        (
            (f"nhs_number:{nhs_number(1)}", f"nhs_number:{nhs_number(2)}"),
            (f"nhs_number:{nhs_number(2)}",),
        ),
    ],
)
def test_no_conflict(a: tuple[str, ...], b: tuple[str, ...]) -> None:
    assert conflicting_identifiers(a, b) == ()
