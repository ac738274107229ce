"""The words an email uses for the hub's codes: agencies, kinds of event, service
categories and levels, lawful bases, relationships, the details an event may carry, and
why an alert was escalated (``governance/vocabulary.toml``).

A reader should never meet a code: an agency id, an enum name or a detail's raw value.
Where the file has no words for a code, a readable form of the code is used (its
underscores and hyphens as spaces), and a detail key the file does not list for the kind
is not shown at all -- an agency's system may send keys nobody has reviewed for email.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .model import LawfulBasis, LifeEventKind, RelationshipKind, ServiceCategory, ServiceLevel

# Kinds an alert can be about besides the life events: changes to the team and the family.
_OTHER_KINDS = (
    "INVOLVEMENT_STARTED",
    "INVOLVEMENT_UPDATED",
    "INVOLVEMENT_ENDED",
    "RELATIONSHIP_STARTED",
    "RELATIONSHIP_ENDED",
)
# The keys of what an involvement event says (core.alerts.Detail keys).
INVOLVEMENT_KEYS = (
    "change",
    "service",
    "service_category",
    "service_level",
    "practitioner",
    "lead",
    "end_reason",
)


class VocabularyError(ConfigError):
    """The vocabulary file is malformed or names codes the hub does not know."""


@dataclass(frozen=True, slots=True)
class Agency:
    name: str
    # How a practitioner reaches the agency about something it reported (a duty desk).
    contact: str | None = None


@dataclass(frozen=True, slots=True)
class DetailWords:
    label: str
    values: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Vocabulary:
    agencies: Mapping[str, Agency] = field(default_factory=dict)
    kinds: Mapping[str, str] = field(default_factory=dict)
    categories: Mapping[str, str] = field(default_factory=dict)
    levels: Mapping[str, str] = field(default_factory=dict)
    lawful_bases: Mapping[str, str] = field(default_factory=dict)
    relationships: Mapping[str, str] = field(default_factory=dict)
    involvement: Mapping[str, str] = field(default_factory=dict)  # labels of its keys
    details: Mapping[str, Mapping[str, DetailWords]] = field(default_factory=dict)
    reasons: Mapping[str, str] = field(default_factory=dict)  # why an alert was escalated

    def agency(self, agency_id: str) -> str:
        known = self.agencies.get(agency_id)
        return known.name if known else readable(agency_id).title()

    def agency_contact(self, agency_id: str) -> str | None:
        known = self.agencies.get(agency_id)
        return known.contact if known else None

    def kind(self, kind: str) -> str:
        return self.kinds.get(kind) or readable(kind).capitalize()

    def category(self, code: str) -> str:
        return self.categories.get(code) or readable(code).lower()

    def level(self, code: str) -> str:
        return self.levels.get(code) or readable(code).lower()

    def lawful_basis(self, code: str) -> str:
        return self.lawful_bases.get(code) or readable(code).lower()

    def relationship(self, code: str) -> str:
        return self.relationships.get(code) or readable(code).lower()

    def reason(self, code: str) -> str:
        return self.reasons.get(code) or readable(code)

    def detail(self, kind: str, key: str, value: str) -> tuple[str, str] | None:
        """A life event's detail as (label, words), or None for a key not listed."""
        words = self.details.get(kind, {}).get(key)
        if words is None:
            return None
        return words.label, words.values.get(value) or readable(value)


def readable(code: str) -> str:
    return code.replace("_", " ").replace("-", " ").strip()


_SECTIONS = {
    "agencies",
    "kinds",
    "categories",
    "levels",
    "lawful_bases",
    "relationships",
    "involvement",
    "details",
    "reasons",
}


def parse_vocabulary(data: Mapping[str, Any], origin: str = "vocabulary") -> Vocabulary:
    unknown = sorted(set(data) - _SECTIONS)
    if unknown:
        raise VocabularyError(
            f"{origin}: unknown section '{unknown[0]}'; allowed: {', '.join(sorted(_SECTIONS))}"
        )
    kinds = {k.value for k in LifeEventKind} | set(_OTHER_KINDS)
    return Vocabulary(
        agencies={
            agency: _agency(entry, f"{origin}: [agencies.{agency}]")
            for agency, entry in _table(data, "agencies", origin).items()
        },
        kinds=_words(data, "kinds", kinds, origin),
        categories=_words(data, "categories", {c.value for c in ServiceCategory}, origin),
        levels=_words(data, "levels", {v.value for v in ServiceLevel}, origin),
        lawful_bases=_words(data, "lawful_bases", {b.value for b in LawfulBasis}, origin),
        relationships=_words(data, "relationships", {r.value for r in RelationshipKind}, origin),
        involvement=_words(data, "involvement", set(INVOLVEMENT_KEYS), origin),
        details={
            kind: _detail_keys(keys, f"{origin}: [details.{kind}]")
            for kind, keys in _checked(
                _table(data, "details", origin), kinds, origin, "details"
            ).items()
        },
        reasons=_words(data, "reasons", None, origin),
    )


def _table(data: Mapping[str, Any], name: str, origin: str) -> Mapping[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, Mapping):
        raise VocabularyError(f"{origin}: [{name}] must be a table")
    return table


def _checked(
    table: Mapping[str, Any], known: set[str] | None, origin: str, name: str
) -> Mapping[str, Any]:
    """``table`` itself, once every code it names is one the hub knows."""
    unknown = sorted(set(table) - known) if known is not None else []
    if unknown:
        raise VocabularyError(f"{origin}: [{name}]: '{unknown[0]}' is not a code the hub knows")
    return table


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise VocabularyError(f"{where}: must be text of 1 to 200 characters")
    return value.strip()


def _words(
    data: Mapping[str, Any], name: str, known: set[str] | None, origin: str
) -> dict[str, str]:
    where = f"{origin}: [{name}]"
    return {
        code: _text(words, f"{where} {code}")
        for code, words in _checked(_table(data, name, origin), known, origin, name).items()
    }


def _agency(entry: Any, where: str) -> Agency:
    if not isinstance(entry, Mapping) or set(entry) - {"name", "contact"} or "name" not in entry:
        raise VocabularyError(f"{where}: needs 'name', and may have 'contact'")
    contact = entry.get("contact")
    return Agency(_text(entry["name"], where), None if contact is None else _text(contact, where))


def _detail_keys(keys: Any, where: str) -> dict[str, DetailWords]:
    if not isinstance(keys, Mapping):
        raise VocabularyError(f"{where}: must be a table of detail keys")
    found = {}
    for key, entry in keys.items():
        at = f"{where} {key}"
        if isinstance(entry, str):
            found[key] = DetailWords(_text(entry, at))
            continue
        if not isinstance(entry, Mapping) or set(entry) - {"label", "values"}:
            raise VocabularyError(f"{at}: a label, or a table with 'label' and 'values'")
        values = entry.get("values", {})
        if not isinstance(values, Mapping):
            raise VocabularyError(f"{at}: 'values' must be a table of code = words")
        found[key] = DetailWords(
            _text(entry.get("label"), at), {v: _text(w, f"{at} {v}") for v, w in values.items()}
        )
    return found
