"""Avro single-object encoding: the bytes that travel between agencies and the hub.

A message is ``C3 01``, the 8-byte little-endian CRC-64-AVRO fingerprint of the writer
schema's canonical form, then the Avro binary body. Every ``*.v<N>.avsc`` file in the schema
folder is a known writer schema; the highest version of each record name is the reader
schema, so an agency on an older version is read into the current shape.

Decoding is the hub's first line of defence, so it is bounded:

* the message size is capped before anything is parsed;
* a schema is refused at load time if an array or map could hold items that take zero
  bytes, so every item claimed by a count must consume input and a hostile count runs out
  of bytes instead of memory or time;
* a schema is refused at load time if a named type contains itself: fastavro's compiled
  reader recurses on the C stack, so a deeply nested message would crash the process
  rather than raise ``RecursionError``;
* before fastavro reads a body, :mod:`.binary` walks it against the writer schema: every
  encoding Avro allows is accepted (arrays and maps in any blocks, longer-than-needed
  varints), and what fastavro would misread (a negative union or enum index, read from the
  end of the list) or cannot hold (a date after 9999-12-31) is refused, naming the field;
* ``MemoryError`` and ``RecursionError`` are caught alongside ``Exception``.

This is the only module that imports fastavro.
"""

from __future__ import annotations

import io
import json
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import fastavro  # noqa: TID251 - this module is the codec seam
import fastavro.validation  # noqa: TID251

from .binary import Check, Malformed, compile_body
from .compatibility import incompatibilities
from .errors import DecodeError, EncodeError, IncompatibleSchemaError, SchemaError
from .fingerprint import fingerprint

MAGIC = b"\xc3\x01"
HEADER_SIZE = 10
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024
_FILE_NAME = re.compile(r"^(?P<stem>[a-z][a-z0-9_]*)\.v(?P<version>[1-9][0-9]*)\.avsc$")

# Fixed tokens for DecodeError.reason: they become metric label values and quarantine
# headers, so they are few and never carry payload content.
TOO_LARGE = "too_large"
BAD_MAGIC = "bad_magic"
TRUNCATED_HEADER = "truncated_header"
UNKNOWN_SCHEMA = "unknown_schema"
MALFORMED_BODY = "malformed_body"
TRAILING_BYTES = "trailing_bytes"
DECODE_REASONS = (
    TOO_LARGE,
    BAD_MAGIC,
    TRUNCATED_HEADER,
    UNKNOWN_SCHEMA,
    MALFORMED_BODY,
    TRAILING_BYTES,
)


@dataclass(frozen=True, slots=True)
class KnownSchema:
    """One version of one record schema."""

    name: str  # short record name, e.g. "Involvement"
    fullname: str
    version: int
    fingerprint: int
    source: Mapping[str, Any]
    parsed: Any  # fastavro's parsed form
    # The body's structural check (binary.py), compiled once when the schema is loaded.
    check_body: Check = field(compare=False, repr=False)

    @property
    def header(self) -> bytes:
        return MAGIC + struct.pack("<Q", self.fingerprint)


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded message: which record type, which writer version, and the record."""

    name: str
    writer_version: int
    record: dict[str, Any]


def _min_size(schema: Any, named: dict[str, Any], visiting: frozenset[str]) -> int:
    """The fewest bytes one value of ``schema`` can take in Avro binary."""
    if isinstance(schema, list):
        return 1 + min((_min_size(b, named, visiting) for b in schema), default=0)
    if isinstance(schema, str):
        if schema in named:
            if schema in visiting:
                return 1
            return _min_size(named[schema], named, visiting | {schema})
        return {"null": 0, "float": 4, "double": 8}.get(schema, 1)
    kind = schema["type"]
    if kind == "record" or kind == "error":
        return sum(_min_size(f["type"], named, visiting) for f in schema["fields"])
    if kind == "fixed":
        return int(schema["size"])
    if kind in ("enum", "array", "map"):
        return 1
    return _min_size(kind, named, visiting)


def _check_bounded(schema: Any, named: dict[str, Any], where: str) -> None:
    """Refuse arrays and maps whose items can be empty (a count could claim billions)."""
    if isinstance(schema, list):
        for branch in schema:
            _check_bounded(branch, named, where)
        return
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if kind in ("record", "error"):
        for field in schema["fields"]:
            _check_bounded(field["type"], named, f"{where}.{field['name']}")
    elif kind == "array":
        if _min_size(schema["items"], named, frozenset()) == 0:
            raise SchemaError(f"{where}: array items can be encoded in zero bytes")
        _check_bounded(schema["items"], named, f"{where}[]")
    elif kind == "map":
        _check_bounded(schema["values"], named, f"{where}{{}}")
    elif isinstance(kind, (dict, list)):
        _check_bounded(kind, named, where)


def _check_not_recursive(schema: Any, named: dict[str, Any], enclosing: frozenset[int]) -> None:
    """Refuse a record that contains itself, directly or through other named types."""
    if isinstance(schema, str):
        target = named.get(schema)
        if target is not None and id(target) in enclosing:
            raise SchemaError(f"{schema} contains itself; recursive types are not accepted")
        if target is not None:
            _check_not_recursive(target, named, enclosing)
        return
    if isinstance(schema, list):
        for branch in schema:
            _check_not_recursive(branch, named, enclosing)
        return
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if kind in ("record", "error"):
        inside = enclosing | {id(schema)}
        for field in schema.get("fields", ()):
            _check_not_recursive(field["type"], named, inside)
    elif kind == "array":
        _check_not_recursive(schema["items"], named, enclosing)
    elif kind == "map":
        _check_not_recursive(schema["values"], named, enclosing)
    elif isinstance(kind, (dict, list)) or (isinstance(kind, str) and kind in named):
        _check_not_recursive(kind, named, enclosing)


def _collect_named(schema: Any, namespace: str | None, out: dict[str, Any]) -> None:
    if isinstance(schema, list):
        for branch in schema:
            _collect_named(branch, namespace, out)
        return
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if kind in ("record", "error", "enum", "fixed"):
        name = schema["name"]
        ns = schema.get("namespace", namespace)
        full = name if "." in name or not ns else f"{ns}.{name}"
        out[full] = schema
        out.setdefault(name, schema)
        inner = full.rsplit(".", 1)[0] if "." in full else None
        for field in schema.get("fields", []):
            _collect_named(field["type"], inner, out)
    elif kind == "array":
        _collect_named(schema["items"], namespace, out)
    elif kind == "map":
        _collect_named(schema["values"], namespace, out)
    elif isinstance(kind, (dict, list)):
        _collect_named(kind, namespace, out)


def load_schema(source: Mapping[str, Any], version: int, origin: str) -> KnownSchema:
    """Parse and check one writer schema; ``origin`` names it in errors."""
    if source.get("type") != "record":
        raise SchemaError(f"{origin}: a top-level schema must be a record")
    # Parse first: fastavro reports most structural mistakes (a field without a type, an
    # array without items) before the walks below index into them.
    try:
        parsed: Any = fastavro.parse_schema(dict(source))
    except Exception as exc:  # fastavro raises several unrelated types here
        raise SchemaError(f"{origin}: {exc}") from exc
    named: dict[str, Any] = {}
    _collect_named(source, None, named)
    _check_bounded(source, named, source.get("name", "?"))
    _check_not_recursive(source, named, frozenset())
    try:
        check_body = compile_body(source)
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise SchemaError(f"{origin}: cannot check bodies of this schema: {exc}") from exc
    fullname = str(parsed["name"])
    return KnownSchema(
        name=fullname.rsplit(".", 1)[-1],
        fullname=fullname,
        version=version,
        fingerprint=fingerprint(source),
        source=source,
        parsed=parsed,
        check_body=check_body,
    )


class SchemaRegistry:
    """Every known writer schema by fingerprint, and the reader schema for each record.

    A set in which some version of a record cannot read an earlier one, or be read by it,
    is refused (:class:`IncompatibleSchemaError`): the newest version reads every message,
    whichever version an agency still sends, and a hub not yet upgraded reads the newest.
    """

    def __init__(self, schemas: Iterable[KnownSchema]) -> None:
        self._by_fingerprint: dict[int, KnownSchema] = {}
        self._versions: dict[str, list[KnownSchema]] = {}
        numbers: set[tuple[str, int]] = set()
        for schema in schemas:
            if (schema.fullname, schema.version) in numbers:
                raise SchemaError(f"two files define {schema.fullname} v{schema.version}")
            numbers.add((schema.fullname, schema.version))
            self._by_fingerprint.setdefault(schema.fingerprint, schema)
            self._versions.setdefault(schema.name, []).append(schema)
        if not self._versions:
            raise SchemaError("no schemas found")
        for versions in self._versions.values():
            versions.sort(key=lambda v: v.version)
        self._current = {
            name: max(versions, key=lambda v: v.version)
            for name, versions in self._versions.items()
        }
        problems = incompatibilities(s for v in self._versions.values() for s in v)
        if problems:
            raise IncompatibleSchemaError(tuple(problems))

    @classmethod
    def from_directory(cls, folder: Path) -> SchemaRegistry:
        if not folder.is_dir():
            raise SchemaError(f"schema folder not found: {folder}")
        return cls(_load_files((p.name, p.read_text("utf-8")) for p in folder.iterdir()))

    @classmethod
    def packaged(cls) -> SchemaRegistry:
        """The schemas shipped with this package (the repository's ``schemas/``)."""
        folder = resources.files(__package__).joinpath("schemas")
        files = ((p.name, p.read_text("utf-8")) for p in folder.iterdir() if p.is_file())
        return cls(_load_files(files))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._current))

    def current(self, name: str) -> KnownSchema:
        """The newest version of a record, by short or full name."""
        short = name.rsplit(".", 1)[-1]
        try:
            return self._current[short]
        except KeyError:
            known = ", ".join(self.names)
            raise SchemaError(f"unknown record type {name!r}; known: {known}") from None

    def versions(self, name: str) -> tuple[KnownSchema, ...]:
        """Every version of a record, oldest first, by short or full name."""
        return tuple(self._versions[self.current(name).name])

    def by_fingerprint(self, value: int) -> KnownSchema | None:
        return self._by_fingerprint.get(value)

    def all(self) -> tuple[KnownSchema, ...]:
        return tuple(self._by_fingerprint.values())


def _file_order(item: tuple[str, str]) -> tuple[str, int, str]:
    """By record file stem, then numerically by version (v10 after v2)."""
    match = _FILE_NAME.match(item[0])
    return (match["stem"], int(match["version"]), "") if match else ("", 0, item[0])


def _load_files(files: Iterable[tuple[str, str]]) -> list[KnownSchema]:
    loaded = []
    for file_name, text in sorted(files, key=_file_order):
        if not file_name.endswith(".avsc"):
            continue
        match = _FILE_NAME.match(file_name)
        if match is None:
            raise SchemaError(f"{file_name}: schema files are named <name>.v<N>.avsc")
        try:
            source = json.loads(text)
        except ValueError as exc:
            raise SchemaError(f"{file_name}: not valid JSON: {exc}") from exc
        loaded.append(load_schema(source, int(match["version"]), file_name))
    return loaded


def encode(record: Mapping[str, Any], schema: KnownSchema) -> bytes:
    """Validate and encode one record with single-object framing."""
    try:
        fastavro.validation.validate(record, schema.parsed, raise_errors=True)
        out = io.BytesIO()
        out.write(schema.header)
        fastavro.schemaless_writer(out, schema.parsed, dict(record))
    except fastavro.validation.ValidationError as exc:
        raise EncodeError(_validation_message(exc)) from exc
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise EncodeError(f"{schema.name}: {type(exc).__name__} while encoding") from exc
    return out.getvalue()


_VALUE_IN_MESSAGE = re.compile(r" is <.*?> of type ", re.DOTALL)


def _validation_message(exc: Exception) -> str:
    """fastavro's messages quote the offending value, which may be personal data, and the
    whole expected schema; this names the field and what it expects instead."""
    errors = getattr(exc, "errors", None) or [str(exc)]
    return "; ".join(_one_error(e) for e in errors)


def _one_error(error: Any) -> str:
    if not isinstance(error, fastavro.validation.ValidationErrorData):
        return _VALUE_IN_MESSAGE.sub(" has a value of type ", str(error))
    if error.datum is None:
        return f"{error.field}: missing, expected {_expected(error.schema)}"
    return f"{error.field}: a {type(error.datum).__name__}, expected {_expected(error.schema)}"


def _expected(schema: Any) -> str:
    """What a schema accepts, in a few words."""
    if isinstance(schema, list):
        return " or ".join(_expected(branch) for branch in schema)
    if isinstance(schema, dict):
        kind = schema.get("type")
        if kind == "enum":
            return f"one of {', '.join(schema['symbols'])}"
        if kind in ("record", "fixed"):
            return f"a {schema['name'].rpartition('.')[2]} {kind}"
        if kind == "array":
            return f"an array of {_expected(schema['items'])}"
        if kind == "map":
            return f"a map of {_expected(schema['values'])}"
        return str(schema.get("logicalType") or _expected(kind))
    return str(schema)


def decode(
    data: bytes,
    registry: SchemaRegistry,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> Decoded:
    """Decode one single-object-encoded message into its current reader schema.

    Raises :class:`DecodeError` with a fixed ``reason`` token; never anything else.
    """
    if len(data) > max_bytes:
        raise DecodeError(TOO_LARGE, f"{len(data)} bytes exceeds the {max_bytes}-byte limit")
    if len(data) < HEADER_SIZE:
        if data[:2] != MAGIC[: len(data)]:
            raise DecodeError(BAD_MAGIC, "does not start with C3 01")
        raise DecodeError(TRUNCATED_HEADER, f"{len(data)} bytes is shorter than the header")
    if data[:2] != MAGIC:
        raise DecodeError(BAD_MAGIC, f"starts with {data[:2].hex()} rather than c301")
    (value,) = struct.unpack_from("<Q", data, 2)
    writer = registry.by_fingerprint(value)
    if writer is None:
        raise DecodeError(UNKNOWN_SCHEMA, f"no known schema has fingerprint {value:016x}")
    reader = registry.current(writer.name)
    payload = data[HEADER_SIZE:]
    # fastavro reads bytes no Avro writer produces as something they do not say (a negative
    # union or enum index from the end of the list) and fails on values Python cannot hold
    # with no field named; the walk against the writer schema refuses both first.
    try:
        end = writer.check_body(payload)
        if end != len(payload):
            left = len(payload) - end
            raise DecodeError(TRAILING_BYTES, f"{left} bytes left after the {writer.name} record")
        resolve_into = None if reader is writer else reader.parsed
        record = fastavro.schemaless_reader(io.BytesIO(payload), writer.parsed, resolve_into)
    except DecodeError:
        raise
    except Malformed as exc:
        raise DecodeError(MALFORMED_BODY, f"{writer.name} v{writer.version}: {exc}") from exc
    except (Exception, MemoryError, RecursionError) as exc:
        raise DecodeError(
            MALFORMED_BODY, f"{writer.name} v{writer.version}: {type(exc).__name__}"
        ) from exc
    if not isinstance(record, dict):
        raise DecodeError(MALFORMED_BODY, f"{writer.name}: body is not a record")
    return Decoded(writer.name, writer.version, record)


def decode_unchecked(data: bytes, registry: SchemaRegistry) -> dict[str, Any]:
    """Plain fastavro decoding with no guards: the benchmark's baseline, never the hub's."""
    (value,) = struct.unpack_from("<Q", data, 2)
    writer = registry.by_fingerprint(value)
    if writer is None:
        raise DecodeError(UNKNOWN_SCHEMA, f"no known schema has fingerprint {value:016x}")
    record: Any = fastavro.schemaless_reader(io.BytesIO(data[HEADER_SIZE:]), writer.parsed, None)
    return dict(record)
