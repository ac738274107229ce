"""The JSON form of the hub's Avro records, as agencies write them by hand or export them.

A JSON record has the Avro record's fields as plain JSON: unions as the bare value or
``null``, enums as their symbol, ``date`` fields as ``"YYYY-MM-DD"`` and timestamps as
ISO-8601 text with a zone offset (``"2026-11-02T09:30:00Z"``) or epoch milliseconds. One
extra key, ``"schema"``, names the record type (``"LifeEvent"``). Conversion is strict:
unknown fields and naive timestamps are errors, so a typo is caught before anything is sent.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Mapping
from typing import Any

from .errors import EncodeError

SCHEMA_KEY = "schema"
# A wrong enum value is quoted back only in the shape of a symbol (upper case, digits,
# underscores): a misspelt symbol is worth showing, but a field filled with anything else
# may hold personal data (a name), and errors never echo that.
_SYMBOL_SHAPED = re.compile(r"^[A-Z][A-Z0-9_]{0,39}$")
_PRIMITIVE = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def from_json(value: Any, schema: Mapping[str, Any]) -> dict[str, Any]:
    """Convert a JSON object (without its ``schema`` key) to an Avro-ready record."""
    named: dict[str, Any] = {}
    result = _convert(value, schema, named, "")
    assert isinstance(result, dict)
    return result


def _convert(value: Any, schema: Any, named: dict[str, Any], path: str) -> Any:
    if isinstance(schema, str):
        if schema in _PRIMITIVE:
            return value
        return _convert(value, named[schema], named, path)
    if isinstance(schema, list):
        if value is None:
            return None
        branches = [b for b in schema if b != "null"]
        if len(branches) != 1:
            raise EncodeError(f"{path or 'record'}: ambiguous union in the JSON form")
        return _convert(value, branches[0], named, path)
    kind = schema["type"]
    if isinstance(kind, (dict, list)):
        return _convert(value, kind, named, path)
    if kind in ("record", "enum", "fixed"):
        named[schema["name"]] = schema
        if "namespace" in schema:
            named[f"{schema['namespace']}.{schema['name']}"] = schema
    if kind == "record":
        return _record(value, schema, named, path)
    if kind == "enum":
        return _enum(value, schema, path)
    if kind == "array" and isinstance(value, list):
        items = schema["items"]
        return [_convert(v, items, named, f"{path}[{i}]") for i, v in enumerate(value)]
    if kind == "map" and isinstance(value, Mapping):
        values = schema["values"]
        return {k: _convert(v, values, named, f"{path}.{k}") for k, v in value.items()}
    logical = schema.get("logicalType")
    if logical == "date" and isinstance(value, str):
        return _date(value, path)
    if logical == "timestamp-millis" and isinstance(value, str):
        return _timestamp(value, path)
    return value


def _record(value: Any, schema: Mapping[str, Any], named: dict[str, Any], path: str) -> Any:
    if not isinstance(value, Mapping):
        raise EncodeError(f"{path or 'record'}: expected an object for {schema['name']}")
    fields = {f["name"]: f for f in schema["fields"]}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        where = f"{path}." if path else ""
        raise EncodeError(f"unknown field {where}{unknown[0]} in {schema['name']}")
    out = {}
    for name, field in fields.items():
        sub = f"{path}.{name}" if path else name
        if name in value:
            out[name] = _convert(value[name], field["type"], named, sub)
        elif "default" in field:
            out[name] = field["default"]
        else:
            raise EncodeError(f"missing required field {sub}")
        if isinstance(field["type"], (dict, list)):
            _remember_named(field["type"], named)
    return out


def _enum(value: Any, schema: Mapping[str, Any], path: str) -> str:
    symbols: list[str] = schema["symbols"]
    if isinstance(value, str) and value in symbols:
        return value
    text = value if isinstance(value, str) else ""
    shown = repr(text) if _SYMBOL_SHAPED.match(text) else f"a {type(value).__name__}"
    close = difflib.get_close_matches(text.upper(), symbols, n=1) if len(text) <= 40 else []
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise EncodeError(f"{path}: {shown} is not one of {', '.join(symbols)}{hint}")


def _remember_named(schema: Any, named: dict[str, Any]) -> None:
    if isinstance(schema, list):
        for branch in schema:
            _remember_named(branch, named)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum", "fixed"):
            named.setdefault(schema["name"], schema)
            for field in schema.get("fields", []):
                _remember_named(field["type"], named)
        elif schema.get("type") == "array":
            _remember_named(schema["items"], named)
        elif schema.get("type") == "map":
            _remember_named(schema["values"], named)


def _date(text: str, path: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise EncodeError(f"{path}: not a date (YYYY-MM-DD)") from exc


def _timestamp(text: str, path: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise EncodeError(f"{path}: not an ISO-8601 timestamp") from exc
    if when.tzinfo is None:
        raise EncodeError(f"{path}: timestamp needs a zone offset, for example 'Z'")
    return when


def to_json(value: Any) -> Any:
    """The inverse for display and files: dates and datetimes back to ISO text."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value
