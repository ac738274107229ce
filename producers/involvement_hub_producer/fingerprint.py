"""Avro Parsing Canonical Form and the CRC-64-AVRO fingerprint, in pure Python.

Single-object encoding names the writer schema by the fingerprint of its canonical form, so
this must agree byte for byte with Apache Avro's Java implementation; the test suite checks
it against Avro's own table of canonical forms and fingerprints (tests/data).

It is written here rather than taken from fastavro because fastavro canonicalises only
schemas it can fully parse, and it rightly rejects a boolean default written as a string.
Defaults are not part of the canonical form, so the fingerprint of such a schema is still
well defined; whether the schema can be *used* is the codec's decision, not this module's.
"""

from __future__ import annotations

import json
from typing import Any

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED = frozenset({"record", "error", "enum", "fixed"})
# [ORDER] of the specification: the only attributes kept, in this order.
_KEY_ORDER = ("name", "type", "fields", "symbols", "items", "values", "size")

_EMPTY = 0xC15D213AA4D7A795
_MASK = 0xFFFFFFFFFFFFFFFF


def _make_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY & -(fp & 1))
        table.append(fp & _MASK)
    return tuple(table)


_TABLE = _make_table()


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO of ``data`` as an unsigned 64-bit integer."""
    fp = _EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp


def _fullname(name: str, namespace: str | None) -> str:
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


def _canonical(schema: Any, namespace: str | None, seen: set[str]) -> Any:
    if isinstance(schema, str):
        return schema if schema in PRIMITIVES else _fullname(schema, namespace)
    if isinstance(schema, list):
        return [_canonical(branch, namespace, seen) for branch in schema]
    if not isinstance(schema, dict):
        raise ValueError(f"not an Avro schema: {type(schema).__name__}")
    kind = schema.get("type")
    if isinstance(kind, (dict, list)):
        return _canonical(kind, namespace, seen)
    if kind in PRIMITIVES:
        return kind
    if kind in _NAMED:
        name = schema["name"]
        inner_ns = schema.get("namespace", namespace) if "." not in name else None
        fullname = _fullname(name, inner_ns)
        if "." in fullname:
            inner_ns = fullname.rsplit(".", 1)[0]
        if fullname in seen:
            return fullname
        seen.add(fullname)
        out: dict[str, Any] = {"name": fullname, "type": kind}
        if kind in ("record", "error"):
            out["fields"] = [
                {"name": f["name"], "type": _canonical(f["type"], inner_ns, seen)}
                for f in schema["fields"]
            ]
        elif kind == "enum":
            out["symbols"] = list(schema["symbols"])
        else:
            out["size"] = int(schema["size"])
        return out
    if kind == "array":
        return {"type": "array", "items": _canonical(schema["items"], namespace, seen)}
    if kind == "map":
        return {"type": "map", "values": _canonical(schema["values"], namespace, seen)}
    if isinstance(kind, str):
        return _fullname(kind, namespace)
    raise ValueError(f"schema has no usable 'type': {schema!r:.80}")


def _ordered(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _ordered(value[k]) for k in _KEY_ORDER if k in value}
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return value


def canonical_form(schema: Any) -> str:
    """The Parsing Canonical Form of a schema given as parsed JSON."""
    tree = _ordered(_canonical(schema, None, set()))
    return json.dumps(tree, separators=(",", ":"), ensure_ascii=False)


def fingerprint(schema: Any) -> int:
    """CRC-64-AVRO fingerprint (unsigned) of a schema's canonical form."""
    return crc64_avro(canonical_form(schema).encode("utf-8"))


def to_signed(value: int) -> int:
    """An unsigned 64-bit fingerprint as Java's signed ``long`` (as Avro's tables print it)."""
    return value - (1 << 64) if value >= 1 << 63 else value
