"""The identity resolver (core/resolver.py): deterministic links, probable matches held for a
data steward, and the same final partition whatever order records arrive in.

Synthetic people only: NHS numbers and UPNs from ``involvement_hub_devtools.synthetic``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from involvement_hub.core.identity import canonical_key, person_id
from involvement_hub.core.messages import (
    IdentityMessage,
    Merge,
    PersonEvent,
    StewardDecision,
    ToResolve,
)
from involvement_hub.core.model import (
    Address,
    Envelope,
    Identifier,
    LifeEvent,
    LifeEventKind,
    PersonRef,
    RelatedPerson,
    RelationshipToSubject,
    Source,
    Urgency,
)
from involvement_hub.core.resolver import (
    CandidateRecord,
    DecisionRecord,
    MergeRecord,
    ResolverStep,
    ResolverTables,
    on_identity_message,
)
from involvement_hub_devtools.synthetic import nhs_number, upn

SECRET = b"resolver-test-key"
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
DOB = dt.date(2016, 5, 5)
NHS = nhs_number(11)
UPN = upn(11)
NHS_KEY = f"nhs_number:{NHS}"
UPN_KEY = f"upn:{UPN}"
_ids = itertools.count(1)
T = TypeVar("T")


def tables() -> ResolverTables:
    return ResolverTables({}, {}, {}, {}, {}, {}, {})


def ref(
    *identifiers: tuple[str, str],
    given: str | None = "Kit",
    family: str | None = "Ashdown",
    dob: dt.date | None = DOB,
    postcode: str | None = None,
) -> PersonRef:
    return PersonRef(
        identifiers=tuple(Identifier(s, v) for s, v in identifiers),
        given_name=given,
        family_name=family,
        date_of_birth=dob,
        address=Address(postcode=postcode) if postcode else None,
    )


def about(subject: PersonRef, *related: tuple[PersonRef, RelationshipToSubject]) -> ToResolve:
    envelope = Envelope(
        f"ev-{next(_ids)}", NOW, NOW, Source("oakfield-primary", "mis", "REF-1"), subject
    )
    return ToResolve(
        LifeEvent(
            envelope,
            LifeEventKind.SCHOOL_EXCLUSION,
            Urgency.ROUTINE,
            related=tuple(RelatedPerson(p, r) for p, r in related),
        ),
        NOW,
    )


def decide(candidate: str, *, confirm: bool = True) -> StewardDecision:
    return StewardDecision(candidate, confirm, "steward-1", "checked the records", NOW)


def run(state: ResolverTables, *messages: IdentityMessage) -> list[ResolverStep]:
    return [on_identity_message(m, state, SECRET, NOW) for m in messages]


def pid_of(*keys: str) -> str:
    return person_id(canonical_key(keys), SECRET)


def log_of(steps: Iterable[ResolverStep], kind: type[T]) -> list[T]:
    return [r for s in steps for r in s.log if isinstance(r, kind)]


# --- deterministic linking ----------------------------------------------------------------


def test_a_new_person_gets_the_pseudonym_of_their_best_key() -> None:
    state = tables()
    (step,) = run(state, about(ref(("upn", UPN), ("nhs_number", NHS))))
    ((key, message),) = step.forward
    assert isinstance(message, PersonEvent)
    assert key == message.person_id == pid_of(NHS_KEY)
    assert state.person_of == {NHS_KEY: key, UPN_KEY: key}
    assert sorted(state.keys_of[key]) == sorted([NHS_KEY, UPN_KEY])
    assert NHS not in key
    assert step.log == []


def test_a_record_with_both_identifiers_links_two_known_persons() -> None:
    state = tables()
    health, school, both = run(
        state,
        about(ref(("nhs_number", NHS))),
        about(ref(("upn", UPN), given="Christopher")),
        about(ref(("nhs_number", NHS), ("upn", UPN))),
    )
    survivor = pid_of(NHS_KEY)
    merged = pid_of(UPN_KEY)
    assert health.forward[0][0] == survivor
    assert school.forward[0][0] == merged
    # The merge goes first, to the merged person's own partition, then the event.
    assert [(k, type(m)) for k, m in both.forward] == [(merged, Merge), (survivor, PersonEvent)]
    assert both.forward[0][1] == Merge(merged, survivor)
    (record,) = log_of([both], MergeRecord)
    assert (record.from_id, record.into_id, record.cause) == (merged, survivor, "shared_identifier")
    assert state.person_of == {NHS_KEY: survivor, UPN_KEY: survivor}
    assert merged not in state.keys_of
    assert merged not in state.profiles
    assert state.by_birthday[DOB.isoformat()] == [survivor]


def test_the_upn_known_first_is_merged_into_the_nhs_number_whatever_the_order() -> None:
    for order in itertools.permutations(
        [ref(("nhs_number", NHS)), ref(("upn", UPN)), ref(("nhs_number", NHS), ("upn", UPN))]
    ):
        state = tables()
        run(state, *(about(r) for r in order))
        assert set(state.keys_of) == {pid_of(NHS_KEY)}


def test_a_related_persons_identifiers_can_merge_the_subject() -> None:
    parent = ref(("nhs_number", nhs_number(12)), given="Morgan", dob=dt.date(1990, 1, 1))
    state = tables()
    run(state, about(ref(("upn", UPN))))
    # The subject is known by its UPN; a related person record then carries the NHS
    # number and the UPN together: the event must be forwarded under the survivor's id.
    (step,) = run(
        state,
        about(parent, (ref(("nhs_number", NHS), ("upn", UPN)), RelationshipToSubject.CHILD)),
    )
    event = step.forward[-1][1]
    assert isinstance(event, PersonEvent)
    assert event.related == ((pid_of(NHS_KEY), "CHILD"),)


def test_identifiers_are_normalised_before_linking() -> None:
    state = tables()
    spaced = f"{NHS[:3]} {NHS[3:6]} {NHS[6:]}"
    first, second, third = run(
        state,
        about(ref(("nhs_number", spaced))),
        about(ref(("NHS_Number ", NHS), given=None)),
        about(ref(("upn", UPN.lower()), ("nhs_number", f"{NHS[:5]}-{NHS[5:]}"))),
    )
    ids = {s.forward[-1][0] for s in (first, second, third)}
    assert ids == {pid_of(NHS_KEY)}
    assert set(state.person_of) == {NHS_KEY, UPN_KEY}
    assert log_of([first, second, third], MergeRecord) == []


def test_an_invalid_nhs_number_is_not_used_for_linking() -> None:
    wrong = NHS[:-1] + str((int(NHS[-1]) + 1) % 10)
    state = tables()
    first, second = run(
        state,
        about(ref(("nhs_number", NHS))),
        about(ref(("nhs_number", wrong), ("upn", UPN), given="Robin")),
    )
    assert [(r.scheme, r.reason) for r in second.rejected] == [("nhs_number", "bad_check_digit")]
    assert f"nhs_number:{wrong}" not in state.person_of
    assert second.forward[-1][0] == pid_of(UPN_KEY) != first.forward[-1][0]
    assert log_of([second], MergeRecord) == []


@pytest.mark.parametrize(
    ("identifier", "reason"),
    [
        (("nhs_number", "123"), "bad_format"),
        (("upn", "not-a-upn"), "bad_format"),
        (("passport", "X1"), "unknown_scheme"),
    ],
)
def test_unusable_identifiers_are_reported(identifier: tuple[str, str], reason: str) -> None:
    (step,) = run(tables(), about(ref(identifier, ("upn", UPN))))
    assert [r.reason for r in step.rejected] == [reason]


# --- probable matches ---------------------------------------------------------------------

# The same child recorded by three agencies, each with its own identifier only.
CHRISTOPHER = ref(("nhs_number", NHS), given="Christopher", postcode="ZZ99 1AA")
KIT = ref(("upn", UPN), given="Kit")
KIT_TYPO = ref(("la_person_id", "NSC-P-0011"), given="Kit", family="Ashdwon")
LA_KEY = "la_person_id:NSCP0011"


def three_agencies(state: ResolverTables) -> list[CandidateRecord]:
    steps = run(state, about(CHRISTOPHER), about(KIT), about(KIT_TYPO))
    assert log_of(steps, MergeRecord) == []
    assert {s.forward[-1][0] for s in steps} == {pid_of(NHS_KEY), pid_of(UPN_KEY), pid_of(LA_KEY)}
    assert not any(isinstance(m, Merge) for s in steps for _, m in s.forward)
    return log_of(steps, CandidateRecord)


def test_name_variants_without_a_shared_identifier_are_candidates_never_merges() -> None:
    state = tables()
    candidates = three_agencies(state)
    pairs = {frozenset((c.candidate.person_a, c.candidate.person_b)) for c in candidates}
    assert pairs == {
        frozenset((pid_of(NHS_KEY), pid_of(UPN_KEY))),
        frozenset((pid_of(NHS_KEY), pid_of(LA_KEY))),
        frozenset((pid_of(UPN_KEY), pid_of(LA_KEY))),
    }
    assert set(state.candidates) == {c.candidate.candidate_id for c in candidates}
    assert len(state.keys_of) == 3
    for record in candidates:
        assert "date_of_birth" in record.candidate.evidence
        assert "given_name" in record.candidate.evidence


def test_a_candidate_is_raised_once() -> None:
    state = tables()
    first = three_agencies(state)
    again = run(state, about(KIT), about(CHRISTOPHER), about(KIT_TYPO))
    assert log_of(again, CandidateRecord) == []
    assert len(state.candidates) == len(first)


def test_confirming_merges_and_later_events_reach_one_person() -> None:
    state = tables()
    candidates = {
        frozenset((c.candidate.person_a, c.candidate.person_b)): c.candidate.candidate_id
        for c in three_agencies(state)
    }
    nhs_upn = candidates[frozenset((pid_of(NHS_KEY), pid_of(UPN_KEY)))]
    upn_la = candidates[frozenset((pid_of(UPN_KEY), pid_of(LA_KEY)))]

    (first,) = run(state, decide(nhs_upn))
    (second,) = run(state, decide(upn_la))

    survivor = pid_of(NHS_KEY)
    merges = log_of([first, second], MergeRecord)
    assert [(m.from_id, m.into_id, m.cause, m.candidate_id) for m in merges] == [
        (pid_of(UPN_KEY), survivor, "steward_confirmed", nhs_upn),
        (pid_of(LA_KEY), survivor, "steward_confirmed", upn_la),
    ]
    assert [d.outcome for d in log_of([first, second], DecisionRecord)] == ["merged", "merged"]
    assert [m for _, m in first.forward] == [Merge(pid_of(UPN_KEY), survivor)]
    assert set(state.keys_of) == {survivor}
    later = run(state, about(KIT), about(KIT_TYPO), about(CHRISTOPHER))
    assert {s.forward[-1][0] for s in later} == {survivor}
    assert all(len(s.forward) == 1 for s in later)
    # The third candidate is now about one person.
    (third,) = run(state, decide(candidates[frozenset((pid_of(NHS_KEY), pid_of(LA_KEY)))]))
    assert [d.outcome for d in log_of([third], DecisionRecord)] == ["already_one_person"]
    assert third.forward == []


def test_rejecting_keeps_them_apart_and_is_not_asked_again() -> None:
    state = tables()
    run(state, about(CHRISTOPHER))
    (raised,) = log_of(run(state, about(KIT)), CandidateRecord)
    cid = raised.candidate.candidate_id

    (step,) = run(state, decide(cid, confirm=False))

    (decision,) = log_of([step], DecisionRecord)
    assert (decision.outcome, decision.confirm, decision.steward) == (
        "rejected",
        False,
        "steward-1",
    )
    assert step.forward == []
    assert state.decided == {cid: False}
    assert cid not in state.candidates
    again = run(state, about(KIT), about(CHRISTOPHER), about(ref(("upn", UPN), given="Kit")))
    assert log_of(again, CandidateRecord) == []
    assert log_of(again, MergeRecord) == []
    # Confirming a rejected candidate later does nothing: it is no longer open.
    (late,) = run(state, decide(cid))
    assert [d.outcome for d in log_of([late], DecisionRecord)] == ["unknown_candidate"]


def test_a_rejected_pair_is_not_raised_again_when_one_side_learns_an_identifier() -> None:
    # The candidate id hashes min() of each side's keys when raised; a side that later learns
    # an identifier sorting lower ('la_person_id:...' < 'upn:...') would give the same pair a
    # new id. The rejection is remembered by identifier keys, so it still holds.
    state = tables()
    run(state, about(CHRISTOPHER))
    (raised,) = log_of(run(state, about(KIT)), CandidateRecord)
    run(state, decide(raised.candidate.candidate_id, confirm=False))

    again = run(state, about(ref(("upn", UPN), ("la_person_id", "NSC-P-0011"), given="Kit")))

    assert log_of(again, CandidateRecord) == []


def test_an_unknown_candidate_is_logged() -> None:
    state = tables()
    (step,) = run(state, decide("C000000000000000"))
    (decision,) = step.log
    assert isinstance(decision, DecisionRecord)
    assert decision.outcome == "unknown_candidate"
    assert step.forward == []
    assert state.decided == {}


def test_confirming_after_a_shared_identifier_merged_them_is_already_one_person() -> None:
    state = tables()
    run(state, about(CHRISTOPHER))
    (raised,) = log_of(run(state, about(KIT)), CandidateRecord)
    merged = run(state, about(ref(("nhs_number", NHS), ("upn", UPN))))
    assert len(log_of(merged, MergeRecord)) == 1

    (step,) = run(state, decide(raised.candidate.candidate_id))

    assert [d.outcome for d in log_of([step], DecisionRecord)] == ["already_one_person"]
    assert step.forward == []
    assert state.decided[raised.candidate.candidate_id] is True


def test_two_children_with_different_nhs_numbers_are_never_proposed_as_one() -> None:
    state = tables()
    other_nhs = nhs_number(12)
    alike = {"given": "Kit", "family": "Ashdown", "postcode": "ZZ99 1AA"}
    steps = run(
        state,
        about(ref(("nhs_number", NHS), **alike)),
        about(ref(("nhs_number", other_nhs), **alike)),
        about(ref(("upn", UPN), **alike)),
    )
    pairs = {
        frozenset((c.candidate.person_a, c.candidate.person_b))
        for c in log_of(steps, CandidateRecord)
    }
    # Everything else agrees: the UPN-only record is still proposed against each of them.
    assert pairs == {
        frozenset((pid_of(NHS_KEY), pid_of(UPN_KEY))),
        frozenset((pid_of(f"nhs_number:{other_nhs}"), pid_of(UPN_KEY))),
    }


def test_a_person_who_learns_an_nhs_number_is_not_proposed_against_another() -> None:
    state = tables()
    alike = {"given": "Kit", "family": "Ashdown"}
    run(state, about(ref(("nhs_number", NHS), **alike)))
    # The UPN record is proposed first; once it carries another NHS number, the pair with
    # the first child is never raised again for the new keys.
    (first,) = log_of(run(state, about(ref(("upn", UPN), **alike))), CandidateRecord)
    other = nhs_number(12)
    later = run(state, about(ref(("upn", UPN), ("nhs_number", other), **alike)))
    assert log_of(later, CandidateRecord) == []
    assert set(state.candidates) == {first.candidate.candidate_id}


def test_twins_are_not_candidates() -> None:
    state = tables()
    steps = run(
        state,
        about(ref(("nhs_number", NHS), given="Kit", postcode="ZZ99 1AA")),
        about(ref(("nhs_number", nhs_number(13)), given="Robin", postcode="ZZ99 1AA")),
    )
    assert log_of(steps, CandidateRecord) == []


# --- arrival order ------------------------------------------------------------------------

POOL = [
    ("nhs_number", nhs_number(20)),
    ("nhs_number", nhs_number(21)),
    ("upn", upn(20)),
    ("upn", upn(21)),
    ("la_person_id", "LA20"),
    ("police_id", "PD20"),
]
POOL_KEYS = [f"{s}:{v}" for s, v in POOL]


def _components(groups: Iterable[Iterable[int]]) -> list[frozenset[int]]:
    parent = list(range(len(POOL)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    seen: set[int] = set()
    for group in groups:
        members = list(group)
        seen.update(members)
        for other in members[1:]:
            parent[find(other)] = find(members[0])
    by_root: dict[int, set[int]] = {}
    for i in seen:
        by_root.setdefault(find(i), set()).add(i)
    return [frozenset(c) for c in by_root.values()]


def _partition(state: ResolverTables) -> dict[str, frozenset[str]]:
    return {pid: frozenset(keys) for pid, keys in state.keys_of.items()}


def _check_partition(state: ResolverTables, groups: Iterable[Iterable[int]]) -> None:
    expected = {
        pid_of(*(POOL_KEYS[i] for i in c)): frozenset(POOL_KEYS[i] for i in c)
        for c in _components(groups)
    }
    assert _partition(state) == expected
    for pid, keys in expected.items():
        assert all(state.person_of[k] == pid for k in keys)
    assert {p for ps in state.by_birthday.values() for p in ps} <= set(expected)


records = st.lists(
    st.tuples(
        st.sets(st.integers(0, len(POOL) - 1), min_size=1, max_size=2),
        st.sampled_from(["Kit", "Christopher", "Robin", None]),
        st.sampled_from(["Ashdown", "Ashdwon", "Pike"]),
        st.sampled_from([DOB, dt.date(2016, 5, 6)]),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=150, deadline=None, database=None)
@given(records=records, data=st.data())
def test_the_partition_and_ids_do_not_depend_on_arrival_order(
    records: list[tuple[set[int], str | None, str, dt.date]], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(records))
    results = []
    for order in (records, shuffled):
        state = tables()
        for keys, given_name, family, dob in order:
            run(
                state,
                about(
                    ref(*(POOL[i] for i in sorted(keys)), given=given_name, family=family, dob=dob)
                ),
            )
        _check_partition(state, [keys for keys, *_ in records])
        results.append(state)
    first, second = results
    assert first.person_of == second.person_of
    assert {p: set(k) for p, k in first.keys_of.items()} == {
        p: set(k) for p, k in second.keys_of.items()
    }
    # Nothing is ever merged on a probable match alone.
    assert len(first.keys_of) == len(_components([keys for keys, *_ in records]))


def _confirm_pairs(state: ResolverTables, pairs: list[tuple[int, int]]) -> None:
    """A steward confirms, for each pair of identifiers, an open candidate linking their
    persons (as ``hub identity candidates`` would list it)."""
    for a, b in pairs:
        owners = {state.person_of.get(POOL_KEYS[a]), state.person_of.get(POOL_KEYS[b])}
        if None in owners or len(owners) < 2:
            continue
        for cid, candidate in sorted(state.candidates.items()):
            sides = {state.person_of[k] for k in (*candidate.keys_a, *candidate.keys_b)}
            if sides == owners:
                run(state, decide(cid))
                break
        else:
            pytest.fail(f"no open candidate links {POOL_KEYS[a]} and {POOL_KEYS[b]}")


def _proposable(groups: list[set[int]], pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The pairs whose persons, once every record is in, do not hold different NHS numbers."""
    person = {i: c for c in _components(groups) for i in c}

    def nhs(i: int) -> set[str]:
        return {POOL_KEYS[j] for j in person[i] if POOL[j][0] == "nhs_number"}

    return [
        (a, b)
        for a, b in pairs
        if person[a] == person[b] or not (nhs(a) and nhs(b)) or nhs(a) & nhs(b)
    ]


@settings(max_examples=150, deadline=None, database=None)
@given(
    groups=st.lists(
        st.sets(st.integers(0, len(POOL) - 1), min_size=1, max_size=2), min_size=1, max_size=7
    ),
    pairs=st.lists(st.tuples(st.integers(0, len(POOL) - 1), st.integers(0, len(POOL) - 1))),
    data=st.data(),
)
def test_steward_confirmations_give_the_same_partition_for_any_arrival_order(
    groups: list[set[int]], pairs: list[tuple[int, int]], data: st.DataObject
) -> None:
    # Every record looks like the same child (same name and birthday), so every two persons
    # are a candidate unless they hold different NHS numbers: confirmations then link exactly
    # the pairs the steward chose among those proposed. Which persons hold different NHS
    # numbers once every record is in does not depend on the order (the test above).
    known = set().union(*groups)
    pairs = [(a, b) for a, b in pairs if a in known and b in known]
    proposed = _proposable(groups, pairs)
    orders = [
        (groups, proposed),
        (data.draw(st.permutations(groups)), data.draw(st.permutations(proposed))),
    ]
    finals = []
    for order, confirmations in orders:
        state = tables()
        for keys in order:
            run(state, about(ref(*(POOL[i] for i in sorted(keys)))))
        _confirm_pairs(state, list(confirmations))
        _check_partition(state, [*groups, *proposed])
        finals.append(_partition(state))
    assert finals[0] == finals[1]
