"""Avro schema resolution as a check: can a reader read everything a writer may write?

The rules are those of the Avro 1.11 specification ("Schema Resolution"), as Apache Avro's
Java ``SchemaCompatibility`` applies them:

* records, enums and fixed match by unqualified name, or by a reader alias naming the
  writer's full name; a fixed also needs the same size;
* record fields match by name, or by one of the reader field's aliases; a reader field the
  writer does not write needs a default; a writer field the reader lacks is skipped;
* an enum symbol the reader lacks is an error unless the reader's enum has a default;
* every branch of a writer union must be readable; a reader union needs one branch that
  reads the writer's value;
* arrays and maps resolve their items and values;
* int is read as long, float or double; long as float or double; float as double;
  string and bytes as each other. Logical types are read as their underlying type.

A new version of a record must be *fully* compatible with every earlier one: it reads what
they wrote (agencies still on an older version keep sending it), and they read what it
writes (a hub rolled back, or any reader that has not upgraded, meets messages written with
the newer version). :func:`incompatibilities` checks both ways for every pair, not only
neighbours: v3 may agree with v2 and v2 with v1 while v3 cannot read v1.

Standard library only, like ``fingerprint``: it looks at the schemas' JSON, not at
fastavro's parsed form, so it needs no codec to say why a schema set is refused.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Protocol

from .fingerprint import PRIMITIVES

_NAMED = frozenset({"record", "error", "enum", "fixed"})
_STRUCTURED = _NAMED | {"array", "map"}
# Writer type -> the reader types that read it without loss of meaning (the spec's promotions).
_PROMOTIONS: Mapping[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a reader cannot read what a writer may write."""

    path: str  # where, from the reader's record: "LifeEvent.related[].person.identifiers"
    what: str  # in plain words, naming the reader and the writer

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"


def _qualify(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _namespace_of(fullname: str) -> str | None:
    return fullname.rpartition(".")[0] or None


class _Names:
    """The named types one schema defines, by full name, so references can be followed."""

    def __init__(self, schema: Any) -> None:
        self.defined: dict[str, Mapping[str, Any]] = {}
        self._collect(schema, None)

    def _collect(self, schema: Any, namespace: str | None) -> None:
        if isinstance(schema, list):
            for branch in schema:
                self._collect(branch, namespace)
            return
        if not isinstance(schema, Mapping):
            return
        kind = schema.get("type")
        if isinstance(kind, str) and kind in _NAMED:
            full = self.fullname(schema, namespace)
            self.defined.setdefault(full, schema)
            for field in schema.get("fields", ()):
                self._collect(field["type"], _namespace_of(full))
        elif kind == "array":
            self._collect(schema["items"], namespace)
        elif kind == "map":
            self._collect(schema["values"], namespace)
        elif isinstance(kind, (list, Mapping)):
            self._collect(kind, namespace)

    @staticmethod
    def fullname(schema: Mapping[str, Any], namespace: str | None) -> str:
        return _qualify(str(schema["name"]), schema.get("namespace", namespace))

    def resolve(self, schema: Any, namespace: str | None) -> tuple[Any, str | None]:
        """``schema`` with a name followed to its definition and ``{"type": ...}`` wrappers
        removed, and the namespace its own unqualified name is relative to."""
        while isinstance(schema, Mapping) and not _structured(schema):
            schema = schema.get("type")  # a primitive with attributes, or a wrapped type
        if not isinstance(schema, str) or schema in PRIMITIVES:
            return schema, namespace
        full = _qualify(schema, namespace)
        if full not in self.defined and schema in self.defined:
            full = schema  # defined in no namespace, referred to from inside one
        if full not in self.defined:
            raise ValueError(f"unknown type name {schema!r}")
        return self.defined[full], _namespace_of(full)


def _structured(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    return isinstance(kind, str) and kind in _STRUCTURED


def _kind(schema: Any) -> str:
    """A resolved schema's type: a primitive, record, enum, fixed, array, map or union."""
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return "union"
    return "record" if schema["type"] == "error" else str(schema["type"])


def _describe(schema: Any) -> str:
    kind = _kind(schema)
    if kind in ("record", "enum", "fixed"):
        return f"{kind} {str(schema['name']).rpartition('.')[2]}"
    return {"array": "an array", "map": "a map", "union": "a union"}.get(kind, kind)


class _Resolution:
    """One reader schema against one writer schema."""

    def __init__(self, reader: Any, writer: Any, reader_label: str, writer_label: str) -> None:
        self.reader_names = _Names(reader)
        self.writer_names = _Names(writer)
        self.r = reader_label
        self.w = writer_label
        # Pairs of named types being compared further up: a type that contains itself is
        # compatible unless something else proves otherwise (as in Avro's own checker).
        self.in_progress: set[tuple[str, str]] = set()

    def check(
        self, reader: Any, r_ns: str | None, writer: Any, w_ns: str | None, path: str
    ) -> list[Problem]:
        reader, r_ns = self.reader_names.resolve(reader, r_ns)
        writer, w_ns = self.writer_names.resolve(writer, w_ns)
        if isinstance(writer, list):
            # Whichever branch the writer took, the reader must read it.
            return _unique(p for b in writer for p in self.check(reader, r_ns, b, w_ns, path))
        if isinstance(reader, list):
            return self._reader_union(reader, r_ns, writer, w_ns, path)
        r_kind, w_kind = _kind(reader), _kind(writer)
        if r_kind != w_kind:
            if r_kind in _PROMOTIONS.get(w_kind, ()):
                return []
            return [self._mismatch(reader, writer, path)]
        if r_kind == "array":
            return self.check(reader["items"], r_ns, writer["items"], w_ns, f"{path}[]")
        if r_kind == "map":
            return self.check(reader["values"], r_ns, writer["values"], w_ns, f"{path}{{}}")
        if r_kind not in ("record", "enum", "fixed"):
            return []
        r_full, w_full = _Names.fullname(reader, r_ns), _Names.fullname(writer, w_ns)
        if not self._names_match(reader, r_full, w_full):
            return [self._renamed(reader, w_full, path)]
        if r_kind == "fixed":
            return self._fixed(reader, writer, path)
        if r_kind == "enum":
            return self._enum(reader, writer, path)
        if (r_full, w_full) in self.in_progress:
            return []
        self.in_progress.add((r_full, w_full))
        try:
            return self._record(reader, r_full, writer, w_full, path)
        finally:
            self.in_progress.discard((r_full, w_full))

    def _names_match(self, reader: Mapping[str, Any], r_full: str, w_full: str) -> bool:
        if r_full.rpartition(".")[2] == w_full.rpartition(".")[2]:
            return True
        aliases = {_qualify(str(a), _namespace_of(r_full)) for a in reader.get("aliases", ())}
        return w_full in aliases

    def _mismatch(self, reader: Any, writer: Any, path: str) -> Problem:
        return Problem(
            path,
            f"{self.w} writes {_describe(writer)}, which {self.r} cannot read as "
            f"{_describe(reader)}",
        )

    def _renamed(self, reader: Any, w_full: str, path: str) -> Problem:
        return Problem(
            path,
            f"{self.w} writes {w_full}, and {self.r}'s {_describe(reader)} has neither that "
            "name nor an alias for it",
        )

    def _reader_union(
        self, reader: list[Any], r_ns: str | None, writer: Any, w_ns: str | None, path: str
    ) -> list[Problem]:
        closest: list[Problem] | None = None
        for branch in reader:
            problems = self.check(branch, r_ns, writer, w_ns, path)
            if not problems:
                return []
            if closest is None and self._same_type(branch, r_ns, writer, w_ns):
                closest = problems
        if closest is not None:
            # The branch meant for the writer's value: its own reasons say more than "no branch".
            return closest
        branches = ", ".join(_describe(self.reader_names.resolve(b, r_ns)[0]) for b in reader)
        return [
            Problem(
                path,
                f"{self.w} writes {_describe(writer)}, which none of {self.r}'s branches "
                f"({branches}) reads",
            )
        ]

    def _same_type(self, branch: Any, r_ns: str | None, writer: Any, w_ns: str | None) -> bool:
        resolved, ns = self.reader_names.resolve(branch, r_ns)
        if _kind(resolved) != _kind(writer):
            return False
        if _kind(resolved) not in ("record", "enum", "fixed"):
            return True
        return self._names_match(
            resolved, _Names.fullname(resolved, ns), _Names.fullname(writer, w_ns)
        )

    def _fixed(
        self, reader: Mapping[str, Any], writer: Mapping[str, Any], path: str
    ) -> list[Problem]:
        if int(reader["size"]) == int(writer["size"]):
            return []
        return [
            Problem(
                path,
                f"{self.w} writes {writer['size']} bytes for {_describe(writer)}, and {self.r} "
                f"reads {reader['size']}",
            )
        ]

    def _enum(
        self, reader: Mapping[str, Any], writer: Mapping[str, Any], path: str
    ) -> list[Problem]:
        known = set(reader["symbols"])
        missing = [s for s in writer["symbols"] if s not in known]
        if not missing or reader.get("default") in known:
            return []
        listed = ", ".join(missing)
        return [
            Problem(
                path,
                f"{self.w} may write {listed}, which {self.r}'s {_describe(reader)} does not "
                "have, and that enum has no default",
            )
        ]

    def _record(
        self,
        reader: Mapping[str, Any],
        r_full: str,
        writer: Mapping[str, Any],
        w_full: str,
        path: str,
    ) -> list[Problem]:
        r_ns, w_ns = _namespace_of(r_full), _namespace_of(w_full)
        by_name = {str(f["name"]): f for f in writer["fields"]}
        problems: list[Problem] = []
        for field in reader["fields"]:
            where = f"{path}.{field['name']}"
            names = [field["name"], *field.get("aliases", ())]
            matches = [by_name[n] for n in dict.fromkeys(names) if n in by_name]
            if len(matches) > 1:
                found = ", ".join(str(m["name"]) for m in matches)
                problems.append(
                    Problem(
                        where, f"its name and aliases match several of {self.w}'s fields ({found})"
                    )
                )
            elif matches:
                problems += self.check(field["type"], r_ns, matches[0]["type"], w_ns, where)
            elif "default" not in field:
                problems.append(Problem(where, self._unwritten(field)))
        return problems

    def _unwritten(self, field: Mapping[str, Any]) -> str:
        aliases = ", ".join(str(a) for a in field.get("aliases", ()))
        written = (
            f"writes no field of that name or its aliases ({aliases})"
            if aliases
            else ("does not write it")
        )
        return f"{self.r} has this field without a default, and {self.w} {written}"


def _unique(problems: Iterable[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def reading_problems(
    reader: Mapping[str, Any],
    writer: Mapping[str, Any],
    *,
    reader_label: str = "the reader",
    writer_label: str = "the writer",
) -> list[Problem]:
    """Why ``reader`` cannot read every value written with ``writer``; empty when it can.

    Both are schemas as parsed JSON (the contents of an ``.avsc`` file); the labels name them
    in the messages ("v2 writes ..., which v1 cannot read as ...").
    """
    resolution = _Resolution(reader, writer, reader_label, writer_label)
    top = str(reader.get("name", "?")).rpartition(".")[2]
    return resolution.check(reader, None, writer, None, top)


class Version(Protocol):
    """One version of one record schema (the codec's ``KnownSchema`` is one)."""

    @property
    def name(self) -> str: ...  # the record's unqualified name: versions are grouped by it

    @property
    def version(self) -> int: ...

    @property
    def source(self) -> Mapping[str, Any]: ...


def incompatibilities(versions: Iterable[Version]) -> list[str]:
    """Every way a version of a record cannot read an earlier version, or be read by it.

    Each line names the record, the two versions and the field: ``LifeEvent v1 -> v2:
    LifeEvent.urgency: v2 may write CRITICAL, which v1's enum Urgency does not have, ...``.
    """
    by_record: dict[str, list[Version]] = defaultdict(list)
    for version in versions:
        by_record[version.name].append(version)
    lines: list[str] = []
    for name in sorted(by_record):
        ordered = sorted(by_record[name], key=lambda v: v.version)
        for old, new in combinations(ordered, 2):
            lines += (f"{name} v{old.version} -> v{new.version}: {p}" for p in _both_ways(old, new))
    return lines


def _both_ways(old: Version, new: Version) -> Iterator[Problem]:
    old_label, new_label = f"v{old.version}", f"v{new.version}"
    yield from reading_problems(
        new.source, old.source, reader_label=new_label, writer_label=old_label
    )
    yield from reading_problems(
        old.source, new.source, reader_label=old_label, writer_label=new_label
    )
