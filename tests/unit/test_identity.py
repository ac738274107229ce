"""Identifier normalisation and deterministic identity resolution (core/identity.py)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from involvement_hub.core.identity import (
    InvalidIdentifier,
    canonical_key,
    nhs_check_digit,
    nhs_number_is_valid,
    normalise,
    person_id,
    resolve,
    usable_keys,
)
from involvement_hub.core.model import Identifier
from involvement_hub_devtools.synthetic import nhs_number, nhs_numbers, upn

SECRET = b"unit-test-pseudonym-key"


def bad_check_digit(valid: str) -> str:
    return valid[:9] + str((int(valid[9]) + 1) % 10)


def reason_of(identifier: Identifier) -> str:
    with pytest.raises(InvalidIdentifier) as caught:
        normalise(identifier)
    return caught.value.reason


# --- normalise -----------------------------------------------------------------------


def test_synthetic_nhs_numbers_pass_the_modulus_11_check() -> None:
    numbers = [n for n, _ in zip(nhs_numbers(), range(50), strict=False)]
    assert all(n.startswith("999") and nhs_number_is_valid(n) for n in numbers)


@pytest.mark.parametrize(
    "written", ["{a} {b} {c}", "{a}-{b}-{c}", " {a} - {b} - {c} ", "{a}{b}{c}", "{a}\t{b}\n{c}"]
)
def test_nhs_number_spacing_and_hyphens_are_removed(written: str) -> None:
    number = nhs_number(3)
    value = written.format(a=number[:3], b=number[3:6], c=number[6:])
    assert normalise(Identifier("nhs_number", value)) == Identifier("nhs_number", number)


def test_nhs_number_with_a_wrong_check_digit_is_bad_check_digit() -> None:
    wrong = bad_check_digit(nhs_number(3))
    assert reason_of(Identifier("nhs_number", wrong)) == "bad_check_digit"


def test_nhs_number_whose_body_has_no_valid_check_digit_is_rejected() -> None:
    # A body whose check value is 10 is never issued, whatever its last digit.
    body = next(
        str(999_000_000 + i) for i in range(100) if nhs_check_digit(str(999_000_000 + i)) is None
    )
    reasons = {reason_of(Identifier("nhs_number", body + d)) for d in "0123456789"}
    assert reasons == {"bad_check_digit"}


@pytest.mark.parametrize("value", ["999A000018", "nine", "999.000.0018", "+44 999 000 001"])
def test_nhs_number_with_non_digits_is_bad_format(value: str) -> None:
    assert reason_of(Identifier("nhs_number", value)) == "bad_format"


@pytest.mark.parametrize("value", ["999000001", "99900000181"])
def test_nhs_number_of_the_wrong_length_is_bad_format(value: str) -> None:
    assert reason_of(Identifier("nhs_number", value)) == "bad_format"


def test_empty_value_is_bad_format() -> None:
    assert reason_of(Identifier("upn", "  - ")) == "bad_format"


def test_upn_is_upper_cased() -> None:
    assert normalise(Identifier("upn", upn(5).lower())) == Identifier("upn", upn(5))


@pytest.mark.parametrize(
    "value", ["A99900000000", "1999000000001", "A99900000000!", "AB99000000001"]
)
def test_upn_of_the_wrong_shape_is_bad_format(value: str) -> None:
    assert reason_of(Identifier("upn", value)) == "bad_format"


@pytest.mark.parametrize("scheme", ["passport", "", "nhs", "email"])
def test_unknown_scheme_is_rejected(scheme: str) -> None:
    assert reason_of(Identifier(scheme, "X123")) == "unknown_scheme"


@pytest.mark.parametrize("scheme", ["NHS_NUMBER", " nhs_number ", "Nhs_Number\t"])
def test_scheme_case_and_whitespace_are_normalised(scheme: str) -> None:
    number = nhs_number(2)
    assert normalise(Identifier(scheme, number)) == Identifier("nhs_number", number)


def test_local_ids_are_kept_as_upper_case_values() -> None:
    assert normalise(Identifier("la_person_id", "la-77 01")).key == "la_person_id:LA7701"


# --- usable_keys ---------------------------------------------------------------------


def test_usable_keys_sorts_by_scheme_rank_then_value() -> None:
    identifiers = [
        Identifier("police_id", "PX1"),
        Identifier("upn", upn(2)),
        Identifier("la_person_id", "LA9"),
        Identifier("nhs_number", nhs_number(4)),
        Identifier("upn", upn(1)),
    ]
    keys, rejected = usable_keys(identifiers)
    assert keys == (
        f"nhs_number:{nhs_number(4)}",
        f"upn:{upn(1)}",
        f"upn:{upn(2)}",
        "la_person_id:LA9",
        "police_id:PX1",
    )
    assert rejected == ()


def test_usable_keys_deduplicates_and_reports_rejects() -> None:
    number = nhs_number(4)
    keys, rejected = usable_keys(
        [
            Identifier("nhs_number", number),
            Identifier("NHS_NUMBER", f"{number[:3]} {number[3:]}"),
            Identifier("nhs_number", bad_check_digit(number)),
            Identifier("shoe_size", "3"),
        ]
    )
    assert keys == (f"nhs_number:{number}",)
    assert [(r.scheme, r.reason) for r in rejected] == [
        ("nhs_number", "bad_check_digit"),
        ("shoe_size", "unknown_scheme"),
    ]


def test_canonical_key_prefers_the_nhs_number() -> None:
    nhs = f"nhs_number:{nhs_number(9)}"
    assert canonical_key([f"upn:{upn(1)}", "la_person_id:LA1", nhs]) == nhs


# --- person_id -----------------------------------------------------------------------


def test_person_id_is_stable_for_one_secret() -> None:
    key = f"nhs_number:{nhs_number(1)}"
    assert person_id(key, SECRET) == person_id(key, SECRET)


def test_person_id_differs_with_a_different_secret() -> None:
    key = f"nhs_number:{nhs_number(1)}"
    assert person_id(key, SECRET) != person_id(key, b"another-deployment-key")


def test_person_id_does_not_contain_the_identifier() -> None:
    for n in range(20):
        number = nhs_number(n)
        pid = person_id(f"nhs_number:{number}", SECRET)
        assert number not in pid
        assert number[3:] not in pid


# --- resolve (one record at a time, against the resolver's tables) ------------------


class Store:
    """The resolver's tables, updated as the resolver step does (``core.resolver``)."""

    def __init__(self) -> None:
        self.person_of: dict[str, str] = {}
        self.keys_of: dict[str, list[str]] = {}
        self.merges: list[tuple[str, str]] = []

    def apply(self, keys: Iterable[str]) -> str:
        resolution = resolve(
            keys,
            self.person_of,
            {p: tuple(k) for p, k in self.keys_of.items()},
            SECRET,
        )
        for key, pid in resolution.assign.items():
            self.person_of[key] = pid
        self.keys_of[resolution.person_id] = list(resolution.keys)
        for from_id, _into_id in resolution.merged:
            self.keys_of.pop(from_id, None)
        self.merges.extend(resolution.merged)
        return resolution.person_id

    def partition(self) -> dict[str, frozenset[str]]:
        persons: dict[str, set[str]] = {}
        for key, pid in self.person_of.items():
            persons.setdefault(pid, set()).add(key)
        return {pid: frozenset(keys) for pid, keys in persons.items()}


NHS_A = f"nhs_number:{nhs_number(10)}"
NHS_B = f"nhs_number:{nhs_number(11)}"
UPN_A = f"upn:{upn(10)}"
UPN_B = f"upn:{upn(11)}"
LA_A = "la_person_id:LA0010"


def test_a_record_with_no_keys_cannot_be_resolved() -> None:
    with pytest.raises(ValueError, match="at least one usable key"):
        resolve([], {}, {}, SECRET)


def test_a_new_key_makes_a_new_person() -> None:
    store = Store()
    pid = store.apply([UPN_A])
    assert pid == person_id(UPN_A, SECRET)
    assert store.partition() == {pid: frozenset({UPN_A})}
    assert store.merges == []


def test_the_same_key_resolves_to_the_same_person() -> None:
    store = Store()
    first = store.apply([UPN_A])
    second = store.apply([UPN_A])
    assert first == second
    assert store.merges == []


def test_a_record_with_both_identifiers_links_two_persons_and_reports_the_merge() -> None:
    store = Store()
    by_nhs = store.apply([NHS_A])
    by_upn = store.apply([UPN_A])
    assert by_nhs != by_upn
    linked = store.apply([NHS_A, UPN_A])
    # The NHS number outranks the UPN, so the person known by it survives.
    assert linked == by_nhs
    assert store.merges == [(by_upn, by_nhs)]
    assert store.partition() == {by_nhs: frozenset({NHS_A, UPN_A})}
    assert store.keys_of == {by_nhs: [NHS_A, UPN_A]}


def test_a_better_identifier_renames_a_person_and_reports_it_as_a_merge() -> None:
    store = Store()
    old = store.apply([UPN_A, LA_A])
    new = store.apply([UPN_A, NHS_A])
    assert new == person_id(NHS_A, SECRET) != old
    assert store.merges == [(old, new)]
    assert store.partition() == {new: frozenset({NHS_A, UPN_A, LA_A})}


def test_a_record_can_merge_more_than_two_persons_at_once() -> None:
    store = Store()
    ids = {store.apply([k]) for k in (UPN_A, UPN_B, LA_A)}
    into = store.apply([UPN_A, UPN_B, LA_A])
    assert into == person_id(UPN_A, SECRET)
    assert sorted(store.merges) == sorted((pid, into) for pid in ids - {into})


def test_resolve_does_not_modify_the_tables_it_is_given() -> None:
    person_of = {NHS_A: "P1"}
    keys_of = {"P1": (NHS_A,)}
    resolve([NHS_A, UPN_A], person_of, keys_of, SECRET)
    assert person_of == {NHS_A: "P1"}
    assert keys_of == {"P1": (NHS_A,)}


KEY_POOL = (
    NHS_A,
    NHS_B,
    UPN_A,
    UPN_B,
    f"upn:{upn(12)}",
    LA_A,
    "la_person_id:LA0011",
    "police_id:PX0010",
    "police_id:PX0011",
)
records = st.lists(
    st.frozensets(st.sampled_from(KEY_POOL), min_size=1, max_size=3), min_size=1, max_size=8
)


def connected_components(recs: list[frozenset[str]]) -> set[frozenset[str]]:
    components: list[set[str]] = []
    for rec in recs:
        touching = [c for c in components if c & rec]
        merged = set(rec).union(*touching)
        components = [c for c in components if not c & rec] + [merged]
    return {frozenset(c) for c in components}


@settings(max_examples=200, deadline=None)
@given(recs=records, data=st.data())
def test_final_persons_do_not_depend_on_arrival_order(
    recs: list[frozenset[str]], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(recs))
    first, second = Store(), Store()
    for rec in recs:
        first.apply(rec)
    for rec in shuffled:
        second.apply(rec)
    assert first.partition() == second.partition()
    # The persons are the connected components of the records, named by canonical key.
    expected = {person_id(canonical_key(c), SECRET): c for c in connected_components(recs)}
    assert first.partition() == expected
    # The resolver's reverse table is exact: no stale persons, no missing keys.
    for store in (first, second):
        assert {p: frozenset(k) for p, k in store.keys_of.items()} == expected
