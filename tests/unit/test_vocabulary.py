"""The emails' words: the shipped vocabulary covers every code, and a bad file stops the hub."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from involvement_hub.config import load_policy, load_vocabulary
from involvement_hub.core.model import LawfulBasis, RelationshipKind, ServiceCategory, ServiceLevel
from involvement_hub.core.vocabulary import (
    INVOLVEMENT_KEYS,
    Vocabulary,
    VocabularyError,
    parse_vocabulary,
)
from involvement_hub.errors import ConfigError
from involvement_hub.settings import DEFAULT_AGENCIES

REPO = Path(__file__).resolve().parents[2]
WORDS = load_vocabulary(REPO / "governance" / "vocabulary.toml")
POLICY = load_policy(REPO / "governance" / "policy.toml")


def test_every_kind_the_policy_routes_has_words() -> None:
    routed = {k for k, entry in POLICY.kinds.items() if entry.recipient_roles}

    assert routed - set(WORDS.kinds) == set()


@pytest.mark.parametrize(
    ("section", "codes"),
    [
        ("categories", {c.value for c in ServiceCategory}),
        ("levels", {v.value for v in ServiceLevel}),
        ("lawful_bases", {b.value for b in LawfulBasis}),
        ("relationships", {r.value for r in RelationshipKind}),
        ("involvement", set(INVOLVEMENT_KEYS)),
    ],
)
def test_every_code_of_a_section_has_words(section: str, codes: set[str]) -> None:
    assert set(getattr(WORDS, section)) == codes


def test_every_agency_the_hub_knows_has_a_name_and_a_contact() -> None:
    for agency in DEFAULT_AGENCIES:
        assert WORDS.agencies[agency].name
        assert WORDS.agencies[agency].contact


def test_suspension_is_the_word_for_a_fixed_term_exclusion() -> None:
    assert WORDS.detail("SCHOOL_EXCLUSION", "exclusion_type", "fixed_term") == (
        "Type",
        "suspension",
    )
    assert WORDS.detail("SCHOOL_EXCLUSION", "unreviewed_key", "x") is None


def test_without_words_a_code_is_made_readable() -> None:
    plain = Vocabulary()

    assert plain.agency("riverside-academy") == "Riverside Academy"
    assert plain.kind("HOSPITAL_ADMISSION") == "Hospital admission"
    assert plain.level("TARGETED") == "targeted"


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        ({"kinds": {"NOT_A_KIND": "x"}}, "'NOT_A_KIND' is not a code the hub knows"),
        ({"levels": {"TARGETED": ""}}, "must be text"),
        ({"agencies": {"a": {"contact": "x"}}}, "needs 'name'"),
        ({"colours": {}}, "unknown section 'colours'"),
        ({"details": {"SCHOOL_EXCLUSION": {"days": {"label": "Days", "values": 3}}}}, "values"),
    ],
)
def test_a_bad_vocabulary_is_refused_with_the_reason(data: dict[str, Any], complaint: str) -> None:
    with pytest.raises(VocabularyError, match=complaint) as refused:
        parse_vocabulary(data)

    assert isinstance(refused.value, ConfigError)  # so the hub will not start (exit 2)
