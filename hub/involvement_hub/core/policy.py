"""The governance policy (IG-1): for each event kind, on what basis the hub may tell whom.

The policy is data (``governance/policy.toml``), owned by the information governance
officer, loaded and validated when the hub starts: an invalid file stops the hub with a
message that names the problem. An event kind with no entry is quarantined, never routed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from .errors import PolicyError
from .model import (
    InvolvementChange,
    LawfulBasis,
    LifeEventKind,
    RelationshipChange,
    ServiceCategory,
    SubscriptionChange,
    Urgency,
)

E = TypeVar("E", bound=StrEnum)


class ContentLevel(StrEnum):
    """How much an alert may say (IG-4). Each level includes the one before it."""

    # Field by field: core.content.SHOWN.
    EMPTY = "EMPTY"  # only that one of your cases has an update, how urgent, and why you
    # plus what kind of change, when, who reported it and how to reach them, a suggested
    # next step, who else was told, and the team around the child
    REFERENCE = "REFERENCE"
    SUMMARY = "SUMMARY"  # plus the details of the event (what changed, for an involvement)

    def includes(self, other: ContentLevel) -> bool:
        order = list(ContentLevel)
        return order.index(self) >= order.index(other)


class RecipientRole(StrEnum):
    """Why a practitioner may be a recipient at all (IG-2)."""

    LEAD_PRACTITIONER = "LEAD_PRACTITIONER"  # leads an active involvement with the child
    TEAM_MEMBER = "TEAM_MEMBER"  # holds another active involvement with the child
    # asked to be told, with a stated reason; told only while also holding an active
    # involvement with the child (self-subscription alone never qualifies)
    EXPLICIT_SUBSCRIBER = "EXPLICIT_SUBSCRIBER"


class Link(StrEnum):
    """How the person an event is about relates to the person whose team is told.

    ``PARENT`` reads: the event is about a parent of the child. Family edges are stored
    the same way round on the partition of the person the event is about.
    """

    SELF = "SELF"  # the event is about the child
    PARENT = "PARENT"
    CHILD = "CHILD"
    SIBLING = "SIBLING"
    PARTNER = "PARTNER"
    PARENTS_PARTNER = "PARENTS_PARTNER"  # a parent's (or carer's) partner
    CARER = "CARER"
    CARED_FOR = "CARED_FOR"
    HOUSEHOLD_MEMBER = "HOUSEHOLD_MEMBER"


# A person reached through several links is told through the closest only: in this order.
CLOSEST_FIRST = (
    Link.PARENT,
    Link.CARER,
    Link.SIBLING,
    Link.PARENTS_PARTNER,
    Link.PARTNER,
    Link.HOUSEHOLD_MEMBER,
    Link.CHILD,
    Link.CARED_FOR,
)


def all_kinds() -> tuple[str, ...]:
    """Every event kind an agency can send: policy must decide on each it wants routed."""
    involvement = [f"INVOLVEMENT_{c.value}" for c in InvolvementChange]
    relationship = [f"RELATIONSHIP_{c.value}" for c in RelationshipChange]
    subscription = [f"SUBSCRIPTION_{c.value}" for c in SubscriptionChange]
    return (*involvement, *(k.value for k in LifeEventKind), *relationship, *subscription)


@dataclass(frozen=True, slots=True)
class KindPolicy:
    kind: str
    lawful_basis: LawfulBasis
    recipient_roles: frozenset[RecipientRole]
    service_categories: frozenset[ServiceCategory]
    content_level: ContentLevel
    urgency: Urgency
    fan_out: frozenset[Link]
    # What the recipient might do next, in plain words (shown from REFERENCE up).
    next_step: str | None = None
    # Catch-up on late links: a recipient linked to the child after an event of this kind
    # (a lead joining, a family link or household recorded, two records merged) is told of
    # it if it happened at most this many days before the link formed. 0: never.
    catch_up_days: int = 0


@dataclass(frozen=True, slots=True)
class Policy:
    version: str
    grace_period: dt.timedelta
    kinds: Mapping[str, KindPolicy]
    # Agencies whose mere involvement is sensitive (a drug and alcohol service, a sexual
    # health clinic): an event they send reveals them as much as an involvement would.
    sensitive_agencies: frozenset[str] = frozenset()
    # The longest catch_up_days of any kind: how long a person's recent events are kept.
    _longest_catch_up: dt.timedelta = field(
        init=False, repr=False, compare=False, default=dt.timedelta(0)
    )

    def for_kind(self, kind: str) -> KindPolicy | None:
        return self.kinds.get(kind)

    def catch_up(self, kind: str) -> dt.timedelta:
        """How far back a late link catches up on events of ``kind`` (zero: not at all)."""
        entry = self.kinds.get(kind)
        return dt.timedelta(days=entry.catch_up_days if entry is not None else 0)

    @property
    def longest_catch_up(self) -> dt.timedelta:
        return self._longest_catch_up

    def __post_init__(self) -> None:
        longest = max((e.catch_up_days for e in self.kinds.values()), default=0)
        object.__setattr__(self, "_longest_catch_up", dt.timedelta(days=longest))


def parse_policy(data: Mapping[str, Any], origin: str = "policy") -> Policy:
    _only(data, {"version", "grace_period_days", "sensitive_agencies", "kind"}, origin)
    version = data.get("version")
    if not isinstance(version, str) or not version.strip():
        raise PolicyError(f"{origin}: 'version' must be a non-empty string")
    grace = data.get("grace_period_days", 14)
    if not isinstance(grace, int) or isinstance(grace, bool) or not 0 <= grace <= 365:
        raise PolicyError(f"{origin}: 'grace_period_days' must be a whole number 0-365")
    kinds_raw = data.get("kind", {})
    if not isinstance(kinds_raw, Mapping) or not kinds_raw:
        raise PolicyError(f"{origin}: needs at least one [kind.<KIND>] table")
    known = set(all_kinds())
    kinds = {}
    for kind, entry in kinds_raw.items():
        where = f"{origin}: [kind.{kind}]"
        if kind not in known:
            raise PolicyError(
                f"{where}: unknown event kind; known kinds: {', '.join(sorted(known))}"
            )
        kinds[kind] = _kind(kind, entry, where)
    sensitive = _list(data.get("sensitive_agencies", []), origin, "sensitive_agencies")
    if not all(isinstance(a, str) and a for a in sensitive):
        raise PolicyError(f"{origin}: 'sensitive_agencies' must be a list of agency ids")
    return Policy(version.strip(), dt.timedelta(days=grace), kinds, frozenset(sensitive))


_KIND_KEYS = {
    "lawful_basis",
    "recipient_roles",
    "service_categories",
    "content_level",
    "urgency",
    "fan_out",
    "next_step",
    "catch_up_days",
}


def _kind(kind: str, entry: Any, where: str) -> KindPolicy:
    if not isinstance(entry, Mapping):
        raise PolicyError(f"{where}: must be a table")
    _only(entry, _KIND_KEYS, where)
    for required in ("lawful_basis", "recipient_roles", "content_level", "urgency"):
        if required not in entry:
            raise PolicyError(f"{where}: missing '{required}'")
    categories = entry.get("service_categories", "ALL")
    return KindPolicy(
        kind=kind,
        lawful_basis=_enum(LawfulBasis, entry["lawful_basis"], where, "lawful_basis"),
        recipient_roles=frozenset(
            _enum(RecipientRole, r, where, "recipient_roles")
            for r in _list(entry["recipient_roles"], where, "recipient_roles")
        ),
        service_categories=frozenset(ServiceCategory)
        if categories == "ALL"
        else frozenset(
            _enum(ServiceCategory, c, where, "service_categories")
            for c in _list(categories, where, "service_categories")
        ),
        content_level=_enum(ContentLevel, entry["content_level"], where, "content_level"),
        urgency=_enum(Urgency, entry["urgency"], where, "urgency"),
        fan_out=frozenset(
            _enum(Link, r, where, "fan_out")
            for r in _list(entry.get("fan_out", []), where, "fan_out")
        ),
        next_step=_text(entry.get("next_step"), where, "next_step"),
        catch_up_days=_catch_up_days(kind, entry.get("catch_up_days", 0), where),
    )


def _catch_up_days(kind: str, value: Any, where: str) -> int:
    days = _days(value, where, "catch_up_days")
    if days and kind not in {k.value for k in LifeEventKind}:
        raise PolicyError(
            f"{where}: 'catch_up_days' is for life events only: a new team member sees the "
            "team, and a relationship or subscription is news only when it happens"
        )
    return days


MAX_CATCH_UP_DAYS = 90


def _days(value: Any, where: str, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_CATCH_UP_DAYS:
        raise PolicyError(f"{where}: '{key}' must be a whole number 0-{MAX_CATCH_UP_DAYS}")
    return value


def _text(value: Any, where: str, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 300:
        raise PolicyError(f"{where}: '{key}' must be a sentence of at most 300 characters")
    return value.strip()


def _only(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise PolicyError(
            f"{where}: unknown key '{unknown[0]}'; allowed: {', '.join(sorted(allowed))}"
        )


def _list(value: Any, where: str, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise PolicyError(f"{where}: '{key}' must be a list")
    return value


def _enum(cls: type[E], value: Any, where: str, key: str) -> E:
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(m.value for m in cls)
        raise PolicyError(f"{where}: {key} {value!r} is not one of {allowed}") from None
