"""Probable matches: the same person recorded twice without a shared identifier.

Two persons whose records agree on a date of birth and on enough else (a given name or its
common variant, a family name within one typo, a postcode) are a *candidate* for a data
steward to confirm or reject. A candidate is never routed on: only a confirmation merges.
Given names that are known on both sides and differ are treated as different people, so
twins (same date of birth, family name and postcode) are not proposed; nor are two persons
holding different values of an identifier a person has only one of (two valid NHS numbers),
however alike their records.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .identity import ONE_PER_PERSON
from .model import PersonRef

_MAX_VALUES = 5  # per field of a profile: enough for variants, bounded for hostile input

# Common English given-name variants. Each group is one name for matching purposes.
_VARIANT_GROUPS = (
    ("alexander", "alex", "alexandra", "sasha", "sandy"),
    ("christopher", "chris", "kit", "christy"),
    ("christina", "christine", "chrissie", "tina"),
    ("william", "will", "bill", "billy", "liam"),
    ("elizabeth", "liz", "lizzie", "beth", "eliza", "betty"),
    ("robert", "rob", "robbie", "bob", "bobby"),
    ("samuel", "sam", "sammy"),
    ("samantha", "sam", "sammie"),
    ("joseph", "joe", "joey"),
    ("joanne", "jo", "joanna", "joann"),
    ("katherine", "kate", "katie", "kathryn", "catherine", "cath", "kathy"),
    ("michael", "mike", "mikey", "mick"),
    ("daniel", "dan", "danny"),
    ("james", "jim", "jimmy", "jamie"),
    ("thomas", "tom", "tommy"),
    ("margaret", "maggie", "meg", "peggy"),
    ("rebecca", "becky", "becca"),
    ("jennifer", "jen", "jenny"),
    ("matthew", "matt"),
    ("benjamin", "ben", "benji"),
    ("charlotte", "lottie", "charlie"),
    ("charles", "charlie", "chas"),
    ("edward", "ed", "eddie", "ted"),
    ("olivia", "liv", "livvy"),
    ("isabella", "isabel", "izzy", "bella"),
    ("nicholas", "nick", "nicky"),
    ("anthony", "tony"),
    ("jonathan", "jon", "jonny"),
    ("victoria", "vicky", "tori"),
    ("richard", "rich", "rick", "ricky"),
    ("henry", "harry", "hal"),
    ("abigail", "abi", "abby"),
    ("frederick", "fred", "freddie"),
    ("jacob", "jake"),
    ("ellis", "elliot", "elliott"),
)
_VARIANTS: dict[str, frozenset[int]] = {}
for _index, _group in enumerate(_VARIANT_GROUPS):
    for _name in _group:
        _VARIANTS[_name] = _VARIANTS.get(_name, frozenset()) | {_index}

_NOT_LETTERS = re.compile(r"[^a-z\- ']+")
# Letters that Unicode decomposition does not reduce to a base letter.
_TRANSLITERATE = str.maketrans(
    {
        "ø": "o",
        "Ø": "o",
        "æ": "ae",
        "Æ": "ae",
        "ł": "l",
        "Ł": "l",
        "ß": "ss",
        "đ": "d",
        "Đ": "d",
        "þ": "th",
        "Þ": "th",
        "œ": "oe",
        "Œ": "oe",
        "ı": "i",
    }
)


def normalise_name(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.translate(_TRANSLITERATE))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return " ".join(_NOT_LETTERS.sub(" ", plain).split())


def normalise_postcode(postcode: str) -> str:
    return "".join(postcode.split()).upper()


def within_one_edit(a: str, b: str) -> bool:
    """Damerau-Levenshtein distance at most one (one typo, including a swap)."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diffs = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        return (
            len(diffs) == 2
            and diffs[1] == diffs[0] + 1
            and a[diffs[0]] == b[diffs[1]]
            and a[diffs[1]] == b[diffs[0]]
        )
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1 :]


def similar_given(a: str, b: str) -> bool:
    if a == b:
        return True
    if _VARIANTS.get(a, frozenset()) & _VARIANTS.get(b, frozenset()):
        return True
    return min(len(a), len(b)) >= 4 and within_one_edit(a, b)


def similar_family(a: str, b: str) -> bool:
    if a == b:
        return True
    if min(len(a), len(b)) >= 4 and within_one_edit(a, b):
        return True
    # Double-barrelled names recorded by one part ("Ashdown-Reyes" and "Reyes").
    parts_a, parts_b = set(re.split(r"[- ]", a)), set(re.split(r"[- ]", b))
    return bool((len(parts_a) > 1 or len(parts_b) > 1) and parts_a & parts_b)


@dataclass(frozen=True, slots=True)
class Profile:
    """What is known of a person besides identifiers: evidence for probable matches only."""

    given: tuple[str, ...] = ()
    family: tuple[str, ...] = ()
    dates_of_birth: tuple[str, ...] = ()
    postcodes: tuple[str, ...] = ()


def _add(values: tuple[str, ...], new: Iterable[str]) -> tuple[str, ...]:
    merged = list(values)
    for value in new:
        if value and value not in merged and len(merged) < _MAX_VALUES:
            merged.append(value)
    return tuple(merged)


def profile_of(ref: PersonRef) -> Profile:
    return Profile(
        given=_add((), [normalise_name(ref.given_name)] if ref.given_name else []),
        family=_add((), [normalise_name(ref.family_name)] if ref.family_name else []),
        dates_of_birth=(ref.date_of_birth.isoformat(),) if ref.date_of_birth else (),
        postcodes=_add(
            (),
            [normalise_postcode(ref.address.postcode)]
            if ref.address and ref.address.postcode
            else [],
        ),
    )


def merge_profiles(a: Profile, b: Profile) -> Profile:
    return Profile(
        given=_add(a.given, b.given),
        family=_add(a.family, b.family),
        dates_of_birth=_add(a.dates_of_birth, b.dates_of_birth),
        postcodes=_add(a.postcodes, b.postcodes),
    )


def evidence(a: Profile, b: Profile) -> tuple[str, ...] | None:
    """Why two profiles are probably one person, or None if they are not."""
    if not set(a.dates_of_birth) & set(b.dates_of_birth):
        return None
    given_known = bool(a.given and b.given)
    given = any(similar_given(x, y) for x in a.given for y in b.given)
    if given_known and not given:
        return None  # different given names: siblings or twins, not one person
    family = any(similar_family(x, y) for x in a.family for y in b.family)
    postcode = bool(set(a.postcodes) & set(b.postcodes))
    if (given and (family or postcode)) or (not given_known and family and postcode):
        found = ["date_of_birth"]
        found += ["given_name"] if given else []
        found += ["family_name"] if family else []
        found += ["postcode"] if postcode else []
        return tuple(found)
    return None


def conflicting_identifiers(keys_a: Iterable[str], keys_b: Iterable[str]) -> tuple[str, ...]:
    """The one-per-person schemes in which the two sides hold values and share none: each
    rules a match out. Keys are ``scheme:value``."""
    a, b = _by_scheme(keys_a), _by_scheme(keys_b)
    shared = ONE_PER_PERSON & a.keys() & b.keys()
    return tuple(sorted(s for s in shared if set(a[s]).isdisjoint(b[s])))


def _by_scheme(keys: Iterable[str]) -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for key in keys:
        scheme, _, value = key.partition(":")
        found[scheme] = (*found.get(scheme, ()), value)
    return found


@dataclass(frozen=True, slots=True)
class Comparison:
    """One field of two persons' records set side by side for a data steward. ``agrees`` is
    the matching rule's verdict on the values each side holds; None if a side holds none."""

    field: str  # "date_of_birth", "given_name", "family_name", "postcode", or a scheme
    agrees: bool | None
    a: tuple[str, ...]
    b: tuple[str, ...]


def _same(x: str, y: str) -> bool:
    return x == y


def compare(
    a: Profile, b: Profile, keys_a: Iterable[str] = (), keys_b: Iterable[str] = ()
) -> tuple[Comparison, ...]:
    """The evidence for and against two persons being one, field by field. Identifiers
    count only against, where they conflict (two persons sharing one would be one already)."""
    rules: tuple[tuple[str, tuple[str, ...], tuple[str, ...], Callable[[str, str], bool]], ...]
    rules = (
        ("date_of_birth", a.dates_of_birth, b.dates_of_birth, _same),
        ("given_name", a.given, b.given, similar_given),
        ("family_name", a.family, b.family, similar_family),
        ("postcode", a.postcodes, b.postcodes, _same),
    )
    found = [
        Comparison(name, any(alike(x, y) for x in xs for y in ys) if xs and ys else None, xs, ys)
        for name, xs, ys, alike in rules
    ]
    keys_a, keys_b = tuple(keys_a), tuple(keys_b)
    ids_a, ids_b = _by_scheme(keys_a), _by_scheme(keys_b)
    found += [
        Comparison(scheme, False, ids_a[scheme], ids_b[scheme])
        for scheme in conflicting_identifiers(keys_a, keys_b)
    ]
    return tuple(found)


@dataclass(frozen=True, slots=True)
class MatchCandidate:
    candidate_id: str
    person_a: str
    person_b: str
    keys_a: tuple[str, ...]
    keys_b: tuple[str, ...]
    evidence: tuple[str, ...]


def candidate_id(keys_a: Iterable[str], keys_b: Iterable[str]) -> str:
    """Stable for the pair whichever side is named first."""
    sides = sorted((min(keys_a), min(keys_b)))
    return "C" + hashlib.sha256("\x1f".join(sides).encode("utf-8")).hexdigest()[:15]
