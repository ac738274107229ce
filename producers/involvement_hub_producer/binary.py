"""The Avro binary body, checked byte by byte against its writer schema before it is read.

fastavro reads some bytes no Avro writer produces as something they do not say: it takes a
negative union or enum index from the end of the list, a boolean byte of 2 as true, an
eleven-byte varint, an ``int`` beyond 32 bits, and it ignores the byte size of a block. It
also fails on values it cannot turn into Python (a date after 9999-12-31) with only an
exception type. This walk accepts every encoding the specification allows and refuses the
rest with the field that is wrong and why:

* ``int`` and ``long`` are zig-zag varints of at most 5 and 10 bytes whose value fits 32 and
  64 bits; a longer-than-needed varint (``80 00`` for zero) is legal, as Java reads it;
* a boolean is the byte 0 or 1; a string is UTF-8; a length is never negative, and never
  more than the bytes left;
* a union or enum index lies within the list; a map's keys are all different;
* arrays and maps come in any number of blocks ending with a zero count. A negative count
  is followed by the block's size in bytes, which must be what the block takes. Every item
  takes at least one byte (the codec refuses other schemas), so a count larger than the
  bytes left is refused before anything is read;
* a logical type's value must be one Python holds: dates and timestamps within years
  1-9999, times within a day, a decimal within its precision, a uuid string a UUID.

A refusal names the record and field path (``LifeEvent.related[1].person.date_of_birth``;
a map's entries are numbered too, ``LifeEvent.details{2}``, since their keys are payload)
and gives numbers, lengths and positions only, never a string's content.

Standard library only. The schema is compiled once, when the codec loads it, into closures:
a record's fields, nested records included, become one flat list of steps, so checking a
record costs about as much as fastavro's reading it (less than the re-encoding it replaced).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

# A step reads one value starting at a position in the body and returns where it ends.
Step = Callable[[bytes, int], int]
# A map entry also gets the keys of the map's earlier entries.
Entry = Callable[[bytes, int, set[bytes]], int]
Check = Callable[[bytes], int]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_MS_PER_DAY = 86_400_000


def _span(unit: dt.timedelta) -> tuple[int, int]:
    """The first and last instants a datetime holds, in ``unit`` from the epoch."""
    first = dt.datetime.min.replace(tzinfo=dt.UTC)
    last = dt.datetime.max.replace(tzinfo=dt.UTC)
    return (first - _EPOCH) // unit, (last - _EPOCH) // unit


# The values Python's date, datetime and time hold, in each logical type's unit.
_RANGES = {
    "date": (1 - _EPOCH_ORDINAL, dt.date.max.toordinal() - _EPOCH_ORDINAL),
    "time-millis": (0, _MS_PER_DAY - 1),
    "time-micros": (0, _MS_PER_DAY * 1000 - 1),
    "timestamp-millis": _span(dt.timedelta(milliseconds=1)),
    "timestamp-micros": _span(dt.timedelta(microseconds=1)),
    "local-timestamp-millis": _span(dt.timedelta(milliseconds=1)),
    "local-timestamp-micros": _span(dt.timedelta(microseconds=1)),
}
# fastavro converts a logical type only on this base type; on any other it is a plain value.
_BASE = {
    "date": "int",
    "time-millis": "int",
    "time-micros": "long",
    "timestamp-millis": "long",
    "timestamp-micros": "long",
    "local-timestamp-millis": "long",
    "local-timestamp-micros": "long",
}
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_PLACEHOLDER = re.compile(r"\[\]|\{\}")


class Malformed(ValueError):
    """The body does not follow its writer schema, or holds a value Python cannot.

    ``path`` is the static field path, with ``[]`` for an array item and ``{}`` for a map
    entry; the positions of the items a failure lies inside are filled in as it unwinds.
    """

    def __init__(self, path: str, why: str) -> None:
        super().__init__(path, why)
        self.path = path
        self.why = why
        self.positions: list[int] = []  # innermost first

    def __str__(self) -> str:
        positions = iter(reversed(self.positions))

        def fill(match: re.Match[str]) -> str:
            position = next(positions, None)
            text = match.group()
            return text if position is None else f"{text[0]}{position}{text[1]}"

        return f"{_PLACEHOLDER.sub(fill, self.path)}: {self.why}"


def _varint(data: bytes, pos: int, most: int, path: str) -> tuple[int, int]:
    """An unsigned base-128 varint of at most ``most`` bytes: (value, end)."""
    raw = 0
    for shift in range(0, 7 * most, 7):
        byte = data[pos]
        pos += 1
        raw |= (byte & 0x7F) << shift
        if byte < 0x80:
            return raw, pos
    raise Malformed(path, f"a varint longer than {most} bytes")


def _read_long(data: bytes, pos: int, path: str) -> tuple[int, int]:
    byte = data[pos]
    if byte < 0x80:
        return (byte >> 1) ^ -(byte & 1), pos + 1
    raw, pos = _varint(data, pos, 10, path)
    if raw >> 64:
        raise Malformed(path, "a varint beyond 64 bits")
    return (raw >> 1) ^ -(raw & 1), pos


def _read_int(data: bytes, pos: int, path: str) -> tuple[int, int]:
    byte = data[pos]
    if byte < 0x80:
        return (byte >> 1) ^ -(byte & 1), pos + 1
    raw, pos = _varint(data, pos, 5, path)
    if raw >> 32:
        raise Malformed(path, "an int beyond 32 bits")
    return (raw >> 1) ^ -(raw & 1), pos


def _boolean(path: str) -> Step:
    def step(data: bytes, pos: int) -> int:
        byte = data[pos]
        if byte > 1:
            raise Malformed(path, f"a boolean byte of {byte}, not 0 or 1")
        return pos + 1

    return step


def _number(kind: str, logical: str | None, path: str) -> Step:
    read = _read_int if kind == "int" else _read_long
    if logical is None or _BASE.get(logical) != kind:

        def plain(data: bytes, pos: int) -> int:
            return read(data, pos, path)[1]

        return plain
    low, high = _RANGES[logical]

    def bounded(data: bytes, pos: int) -> int:
        value, pos = read(data, pos, path)
        if value < low or value > high:
            raise Malformed(path, _out_of_range(logical, value, low))
        return pos

    return bounded


def _out_of_range(logical: str, value: int, low: int) -> str:
    if logical.startswith("time-"):
        return f"{logical} {value} is not a time of day, which the hub cannot represent"
    unit = " (days from 1970-01-01)" if logical == "date" else ""
    side = "before 0001-01-01" if value < low else "after 9999-12-31"
    return f"{logical} {value}{unit} is {side}, which the hub cannot represent"


def _sized(size: int, what: str, path: str) -> Step:
    def step(data: bytes, pos: int) -> int:
        end = pos + size
        if end > len(data):
            raise Malformed(path, f"a {what} of {size} bytes, but only {len(data) - pos} remain")
        return end

    return step


def _length(data: bytes, pos: int, what: str, path: str) -> tuple[int, int]:
    """A length and where its bytes start, refused if negative or past the end."""
    size, pos = _read_long(data, pos, path)
    if size < 0:
        raise Malformed(path, f"a {what} of negative length {size}")
    if size > len(data) - pos:
        raise Malformed(path, f"a {what} of {size} bytes, but only {len(data) - pos} remain")
    return size, pos


def _string(path: str, is_uuid: bool) -> Step:
    def step(data: bytes, pos: int) -> int:
        byte = data[pos]
        if byte < 0x80 and not byte & 1 and (byte >> 1) < len(data) - pos:
            end = pos + 1 + (byte >> 1)  # the usual short string, its length in one byte
            pos += 1
        else:
            size, pos = _length(data, pos, "string", path)
            end = pos + size
        try:
            text = data[pos:end].decode()
        except UnicodeDecodeError:
            raise Malformed(path, "a string that is not valid UTF-8") from None
        if is_uuid:
            try:
                uuid.UUID(text)
            except ValueError:
                raise Malformed(path, "a uuid string that is not a UUID") from None
        return end

    return step


def _decimal(precision: int, path: str) -> Callable[[bytes], None]:
    # Compared with a power of ten, not counted in str(): a 256 KiB unscaled value would
    # pass Python's limit on digits converted to text, and take quadratic time doing so.
    bound = 10**precision

    def check(unscaled: bytes) -> None:
        if abs(int.from_bytes(unscaled, "big", signed=True)) >= bound:
            # fastavro would round it to the precision, silently reading another number.
            raise Malformed(path, f"a decimal of more digits than its precision, {precision}")

    return check


def _bytes(path: str, precision: int | None) -> Step:
    decimal = None if precision is None else _decimal(precision, path)

    def step(data: bytes, pos: int) -> int:
        size, pos = _length(data, pos, "byte string", path)
        if decimal is not None:
            decimal(data[pos : pos + size])
        return pos + size

    return step


def _fixed(size: int, precision: int | None, path: str) -> Step:
    sized = _sized(size, "fixed", path)
    if precision is None:
        return sized
    decimal = _decimal(precision, path)

    def step(data: bytes, pos: int) -> int:
        end = sized(data, pos)
        decimal(data[pos:end])
        return end

    return step


def _index(what: str, count: int, path: str) -> Callable[[bytes, int], tuple[int, int]]:
    """Read a union branch or enum position, refused outside 0..count-1 (either side)."""

    def read(data: bytes, pos: int) -> tuple[int, int]:
        index, pos = _read_int(data, pos, path)
        if index < 0 or index >= count:
            raise Malformed(path, f"{what.format(index=index, count=count)} (0 to {count - 1})")
        return index, pos

    return read


def _enum(name: str, symbols: int, path: str) -> Step:
    read = _index(f"enum position {{index}}, but {name} has {{count}} symbols", symbols, path)

    def step(data: bytes, pos: int) -> int:
        return read(data, pos)[1]

    return step


def _union(branches: tuple[Step | None, ...], path: str) -> Step:
    read = _index("union branch {index}, but the union has {count} branches", len(branches), path)

    def step(data: bytes, pos: int) -> int:
        index, pos = read(data, pos)
        branch = branches[index]
        return pos if branch is None else branch(data, pos)

    return step


def _blocks(item: Step | None, entry: Entry | None, item_path: str, path: str) -> Step:
    """Arrays and maps: blocks of entries until a zero count; ``item`` reads an array's
    item, ``entry`` a map's key and value."""

    def step(data: bytes, pos: int) -> int:
        position = 0
        keys: set[bytes] = set()
        while True:
            count, pos = _read_long(data, pos, path)
            if count == 0:
                return pos
            end = -1
            if count < 0:
                count = -count
                size, pos = _read_long(data, pos, path)
                left = len(data) - pos
                if size < 0 or size > left:
                    raise Malformed(
                        path, f"a block said to take {size} bytes, but only {left} remain"
                    )
                end = pos + size
            # Every entry takes a byte at least: a larger count is a lie, however the rest reads.
            if end >= 0 and count > end - pos:
                raise Malformed(path, f"a block of {count} entries in {end - pos} bytes")
            if count > len(data) - pos:
                left = len(data) - pos
                raise Malformed(path, f"a block of {count} entries, but only {left} bytes remain")
            start = pos
            try:
                if item is not None:
                    for _ in range(count):
                        pos = item(data, pos)
                        position += 1
                elif entry is not None:
                    for _ in range(count):
                        pos = entry(data, pos, keys)
                        position += 1
            except Malformed as exc:
                exc.positions.append(position)
                raise
            except IndexError:
                raise _ended(item_path, position) from None
            if end >= 0 and pos != end:
                raise Malformed(
                    path, f"a block said to take {end - start} bytes takes {pos - start}"
                )

    return step


def _ended(path: str, position: int) -> Malformed:
    exc = Malformed(path, "the body ends inside this field")
    exc.positions.append(position)
    return exc


def _map_entry(value: Step | None, path: str) -> Entry:
    def step(data: bytes, pos: int, keys: set[bytes]) -> int:
        size, pos = _length(data, pos, "key", path)
        key = data[pos : pos + size]
        try:
            key.decode()
        except UnicodeDecodeError:
            raise Malformed(path, "a key that is not valid UTF-8") from None
        # fastavro keeps the last value of a repeated key (Java too): the map would be read
        # as less than it says. Equal UTF-8 strings are equal bytes.
        if key in keys:
            raise Malformed(path, "a key an earlier entry of the map has")
        keys.add(key)
        return pos + size if value is None else value(data, pos + size)

    return step


def _record(steps: list[tuple[str, Step]]) -> Step:
    fields = tuple(steps)

    def step(data: bytes, pos: int) -> int:
        field = ""
        try:
            for field, read in fields:  # noqa: B007 - `field` names a truncation below
                pos = read(data, pos)
        except IndexError:
            raise Malformed(field, "the body ends inside this field") from None
        return pos

    return step


class _Compiler:
    """Turns a schema (its JSON form) into steps, resolving named types as Avro does."""

    def __init__(self) -> None:
        self.named: dict[str, Mapping[str, Any]] = {}

    def fields(self, schema: Any, namespace: str | None, path: str) -> Iterator[tuple[str, Step]]:
        """The steps of one value, a record's fields flattened; none for ``null``."""
        schema, namespace = self.resolve(schema, namespace)
        if isinstance(schema, Mapping) and schema.get("type") in ("record", "error"):
            for field in schema["fields"]:
                yield from self.fields(field["type"], namespace, f"{path}.{field['name']}")
            return
        step = self.step(schema, namespace, path)
        if step is not None:
            yield path, step

    def record(self, schema: Any, namespace: str | None, path: str) -> Step:
        return _record(list(self.fields(schema, namespace, path)))

    def resolve(self, schema: Any, namespace: str | None) -> tuple[Any, str | None]:
        """A reference replaced by its definition; a definition remembered; the namespace
        its fields are named in."""
        while isinstance(schema, Mapping) and isinstance(schema.get("type"), (Mapping, list)):
            schema = schema["type"]  # {"type": {...}} is the inner schema
        if isinstance(schema, Mapping) and isinstance(schema.get("type"), str):
            if schema["type"] in ("record", "error", "enum", "fixed"):
                full = _fullname(schema["name"], schema.get("namespace", namespace))
                self.named[full] = schema
                return schema, _namespace_of(full)
            if schema["type"] not in _PRIMITIVES and schema["type"] not in ("array", "map"):
                return self.resolve(schema["type"], namespace)
            return schema, namespace
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            for full in (_fullname(schema, namespace), schema):
                if full in self.named:
                    return self.named[full], _namespace_of(full)
            raise ValueError(f"unknown type {schema!r}")
        return schema, namespace

    def step(self, schema: Any, namespace: str | None, path: str) -> Step | None:
        schema, namespace = self.resolve(schema, namespace)
        if isinstance(schema, list):
            return _union(tuple(self.step(b, namespace, path) for b in schema), path)
        if isinstance(schema, str):
            return self.primitive(schema, None, path)
        kind = schema["type"]
        if kind in ("record", "error"):
            return self.record(schema, namespace, path)
        if kind == "enum":
            return _enum(str(schema["name"]).rpartition(".")[2], len(schema["symbols"]), path)
        if kind == "fixed":
            return _fixed(int(schema["size"]), _precision(schema), path)
        if kind == "array":
            item_path = f"{path}[]"
            items = self.step(schema["items"], namespace, item_path)
            if items is None:  # refused by the codec: an item would take no bytes
                raise ValueError(f"{path}: array of null")
            return _blocks(items, None, item_path, path)
        if kind == "map":
            entry_path = f"{path}{{}}"
            values = self.step(schema["values"], namespace, entry_path)
            return _blocks(None, _map_entry(values, entry_path), entry_path, path)
        return self.primitive(kind, schema, path)

    @staticmethod
    def primitive(kind: str, schema: Mapping[str, Any] | None, path: str) -> Step | None:
        logical = schema.get("logicalType") if schema is not None else None
        if kind == "null":
            return None
        if kind == "boolean":
            return _boolean(path)
        if kind in ("int", "long"):
            return _number(kind, logical if isinstance(logical, str) else None, path)
        if kind == "float":
            return _sized(4, "float", path)
        if kind == "double":
            return _sized(8, "double", path)
        if kind == "string":
            return _string(path, is_uuid=logical == "uuid")
        if kind == "bytes":
            return _bytes(path, _precision(schema) if schema is not None else None)
        raise ValueError(f"{path}: unknown type {kind!r}")


def _precision(schema: Mapping[str, Any]) -> int | None:
    precision = schema.get("precision")
    if schema.get("logicalType") == "decimal" and isinstance(precision, int):
        return precision
    return None


def _fullname(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _namespace_of(fullname: str) -> str | None:
    return fullname.rpartition(".")[0] or None


def compile_body(schema: Mapping[str, Any]) -> Check:
    """A function that checks one body against ``schema`` (a record, in its JSON form) and
    returns the number of bytes the record takes, or raises :class:`Malformed`.

    ``schema`` is one the codec loads: every array item takes a byte at least, and no
    named type contains itself, so the walk's depth is the schema's.
    """
    name = str(schema["name"]).rpartition(".")[2]
    record = _Compiler().record(schema, schema.get("namespace"), name)

    def check(data: bytes) -> int:
        return record(data, 0)

    return check
