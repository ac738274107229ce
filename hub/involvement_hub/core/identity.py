"""Who an event is about: identifier normalisation and deterministic identity resolution.

Every strong identifier is normalised to a *key* (``nhs_number:9990001234``). Records that
share any key are the same person; a record whose keys span two known persons merges them.
The hub person id is a keyed pseudonym (HMAC) of the person's *canonical key* -- the
smallest of its keys by scheme rank, then value -- so the final ids depend only on which
keys were linked, never on the order events arrived in. When a person's canonical key
changes (a better identifier arrives, or two persons merge) the old ids are merged into the
new one by a message downstream.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .model import Identifier

NHS_NUMBER = "nhs_number"
UPN = "upn"
LA_PERSON_ID = "la_person_id"
POLICE_ID = "police_id"
# Issued by one agency's own system and meaningful only there: an alert may give a
# recipient the one their own agency sent, to tell children apart. National numbers (NHS
# number, UPN) never leave the hub in an alert.
LOCAL_SCHEMES = frozenset({LA_PERSON_ID, POLICE_ID})
# Lower rank wins when choosing a person's canonical key: the NHS number is the most
# widely shared and carefully validated identifier, the local ids the least.
SCHEME_RANK: Mapping[str, int] = {NHS_NUMBER: 0, UPN: 1, LA_PERSON_ID: 2, POLICE_ID: 3}
STRONG_SCHEMES = frozenset(SCHEME_RANK)
# Schemes that give one person one value, so two different values are two people. Not the
# UPN (a pupil may hold a temporary UPN and later a permanent one) nor the local ids (one
# council's two records of one child are exactly what a data steward is asked to join).
ONE_PER_PERSON = frozenset({NHS_NUMBER})

_UPN = re.compile(r"^[A-Z][0-9]{11}[0-9A-Z]$")
_SEPARATORS = re.compile(r"[\s-]+")
_MAX_VALUE = 64


class InvalidIdentifier(ValueError):
    """An identifier that cannot be used for linking; ``reason`` is a fixed token."""

    def __init__(self, scheme: str, reason: str) -> None:
        super().__init__(f"{scheme}: {reason}")
        self.scheme = scheme
        self.reason = reason


def nhs_check_digit(body: str) -> int | None:
    """The NHS number's modulus-11 check digit for its first nine digits (weights 10..2),
    or None where a check value of 10 makes every number with that body invalid."""
    total = sum(int(d) * w for d, w in zip(body, range(10, 1, -1), strict=True))
    check = (11 - total % 11) % 11
    return None if check == 10 else check


def nhs_number_is_valid(digits: str) -> bool:
    """Ten digits whose last is the modulus-11 check digit of the nine before it."""
    if len(digits) != 10 or not digits.isdigit():
        return False
    return nhs_check_digit(digits[:9]) == int(digits[9])


def normalise(identifier: Identifier) -> Identifier:
    """The linking form of an identifier, or :class:`InvalidIdentifier`."""
    scheme = identifier.scheme.strip().lower()
    if scheme not in STRONG_SCHEMES:
        raise InvalidIdentifier(scheme or "?", "unknown_scheme")
    value = _SEPARATORS.sub("", identifier.value).upper()
    if not value or len(value) > _MAX_VALUE:
        raise InvalidIdentifier(scheme, "bad_format")
    if scheme == NHS_NUMBER and not nhs_number_is_valid(value):
        well_formed = len(value) == 10 and value.isdigit()
        raise InvalidIdentifier(scheme, "bad_check_digit" if well_formed else "bad_format")
    if scheme == UPN and not _UPN.match(value):
        raise InvalidIdentifier(scheme, "bad_format")
    return Identifier(scheme, value)


def usable_keys(
    identifiers: Iterable[Identifier],
) -> tuple[tuple[str, ...], tuple[InvalidIdentifier, ...]]:
    """Sorted distinct linking keys, and the identifiers that could not be used."""
    keys: set[str] = set()
    rejected: list[InvalidIdentifier] = []
    for identifier in identifiers:
        try:
            keys.add(normalise(identifier).key)
        except InvalidIdentifier as exc:
            rejected.append(exc)
    return tuple(sorted(keys, key=_rank)), tuple(rejected)


def _rank(key: str) -> tuple[int, str]:
    scheme, _, value = key.partition(":")
    return SCHEME_RANK.get(scheme, 99), value


def canonical_key(keys: Iterable[str]) -> str:
    return min(keys, key=_rank)


def person_id(canonical: str, secret: bytes) -> str:
    """A stable pseudonym: reveals nothing of the identifier without the secret."""
    digest = hmac.new(secret, canonical.encode("utf-8"), hashlib.sha256).digest()
    return "P" + base64.b32encode(digest[:15]).decode("ascii")


@dataclass(frozen=True, slots=True)
class Resolution:
    """What the resolver decided for one record, for the adapter to apply.

    ``person_id`` is who the record is about. ``assign`` maps every key of that person to
    it (new keys, and keys of merged persons). ``merged`` lists ``(from_id, into_id)``
    pairs for persons whose state must move to ``person_id``.
    """

    person_id: str
    keys: tuple[str, ...]
    assign: Mapping[str, str]
    merged: tuple[tuple[str, str], ...]


def resolve(
    keys: Iterable[str],
    person_of: Mapping[str, str],
    keys_of: Mapping[str, Sequence[str]],
    secret: bytes,
) -> Resolution:
    """Link a record's keys to the known persons that share any of them.

    ``person_of`` maps key -> person id and ``keys_of`` person id -> its keys (the
    resolver's tables, read-only here).
    """
    record_keys = set(keys)
    if not record_keys:
        raise ValueError("a record needs at least one usable key")
    known = {person_of[k] for k in record_keys if k in person_of}
    all_keys = set(record_keys)
    for other in known:
        all_keys.update(keys_of.get(other, ()))
    pid = person_id(canonical_key(all_keys), secret)
    assign = {k: pid for k in all_keys if person_of.get(k) != pid}
    merged = tuple(sorted((other, pid) for other in known if other != pid))
    return Resolution(pid, tuple(sorted(all_keys, key=_rank)), assign, merged)
