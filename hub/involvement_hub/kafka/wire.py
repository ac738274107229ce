"""JSON for the hub's internal topics and tables, derived from the core's dataclasses.

Internal messages are the core's frozen dataclasses. This module turns them into JSON-ready
values and back by reading their type hints once per class, so there is no hand-written
serializer to drift from the model. Unions of several dataclasses carry their class name
in an ``"@"`` key. Faust sees only bytes (``value_serializer="raw"``), so a malformed
internal message surfaces here as a ``ValueError`` that the adapter can handle, never
inside Faust's codec machinery.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import datetime as dt
import enum
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

T = TypeVar("T")
Decoder = Callable[[Any], Any]
Encoder = Callable[[Any], Any]
_CLASS_KEY = "@"


def to_data(value: Any, hint: Any = None) -> Any:
    """A JSON-ready form of ``value``, read as type ``hint`` (default: its own class)."""
    return encoder_for(hint if hint is not None else type(value))(value)


def dumps(value: Any, cls: Any = None) -> bytes:
    """Serialise ``value`` as ``cls`` (a dataclass, or a union of them, which is tagged)."""
    return orjson.dumps(to_data(value, cls))


def loads(cls: Any, raw: bytes | str) -> Any:
    """Parse bytes written by :func:`dumps` into ``cls`` (a dataclass or union of them)."""
    try:
        return decoder_for(cls)(orjson.loads(raw))
    except (KeyError, TypeError, AttributeError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"not a valid {getattr(cls, '__name__', cls)}: {exc!r}") from exc


def from_data(cls: type[T], data: Any) -> T:
    result: T = decoder_for(cls)(data)
    return result


_FIELDS: dict[Any, tuple[dataclasses.Field[Any], ...]] = {}
_DECODERS: dict[Any, Decoder] = {}
_ENCODERS: dict[Any, Encoder] = {}


def _fields(cls: Any) -> tuple[dataclasses.Field[Any], ...]:
    try:
        return _FIELDS[cls]
    except KeyError:
        fields = _FIELDS[cls] = dataclasses.fields(cls)
        return fields


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def encoder_for(hint: Any) -> Encoder:
    """A function from values of ``hint`` to JSON data, built once per type."""
    try:
        return _ENCODERS[hint]
    except KeyError:
        encoder = _ENCODERS[hint] = _build_encoder(hint)
        return encoder


def _build_encoder(hint: Any) -> Encoder:
    if _is_union(hint):
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(members) == 1:
            inner = encoder_for(members[0])
            return lambda v: None if v is None else inner(v)

        def tagged(value: Any) -> Any:
            if value is None:
                return None
            return {_CLASS_KEY: type(value).__name__, **encoder_for(type(value))(value)}

        return tagged
    origin = typing.get_origin(hint)
    if origin in (tuple, frozenset, list):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        if len(args) == 1:
            item = encoder_for(args[0])
            return lambda v: [item(x) for x in v]
        parts = [encoder_for(a) for a in args]
        return lambda v: [p(x) for p, x in zip(parts, v, strict=True)]
    if origin in (dict, collections.abc.Mapping):
        value_encoder = encoder_for(typing.get_args(hint)[1])
        return lambda v: {str(k): value_encoder(x) for k, x in v.items()}
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        fields = [(f.name, encoder_for(hints[f.name])) for f in _fields(hint)]
        return lambda v: {name: enc(getattr(v, name)) for name, enc in fields}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return lambda v: v.value
    if hint in (dt.datetime, dt.date):
        return lambda v: v.isoformat()
    return _identity


def decoder_for(hint: Any) -> Decoder:
    """A function from JSON data to ``hint``, built once per type."""
    try:
        return _DECODERS[hint]
    except KeyError:
        decoder = _DECODERS[hint] = _build(hint)
        return decoder


def _build(hint: Any) -> Decoder:
    if _is_union(hint):
        return _union_decoder(hint)
    origin = typing.get_origin(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            item = decoder_for(args[0])
            return lambda data: tuple(item(v) for v in data)
        parts = tuple(decoder_for(a) for a in args)
        return lambda data: tuple(p(v) for p, v in zip(parts, data, strict=True))
    if origin is frozenset:
        (arg,) = typing.get_args(hint)
        item = decoder_for(arg)
        return lambda data: frozenset(item(v) for v in data)
    if origin in (dict, collections.abc.Mapping):
        _, value_hint = typing.get_args(hint)
        value = decoder_for(value_hint)
        return lambda data: {k: value(v) for k, v in data.items()}
    if dataclasses.is_dataclass(hint):
        return _dataclass_decoder(hint)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint
    if hint is dt.datetime:
        return dt.datetime.fromisoformat
    if hint is dt.date:
        return dt.date.fromisoformat
    if hint is Any:
        return _identity
    if hint in (str, int, float, bool, type(None)):
        return _checked(hint)
    raise TypeError(f"wire: no decoder for {hint!r}")


def _checked(hint: type) -> Decoder:
    # JSON's true is not a number here, though Python's bool is an int.
    accepted: tuple[type, ...] = (int, float) if hint is float else (hint,)

    def check(data: Any) -> Any:
        if not isinstance(data, accepted) or (hint is not bool and isinstance(data, bool)):
            raise TypeError(f"expected {hint.__name__}, got {type(data).__name__}")
        return data

    return check


def _identity(data: Any) -> Any:
    return data


def _dataclass_decoder(cls: Any) -> Decoder:
    hints = typing.get_type_hints(cls)
    fields = [(f.name, decoder_for(hints[f.name])) for f in _fields(cls) if f.init]

    def decode(data: Any) -> Any:
        if _CLASS_KEY in data and data[_CLASS_KEY] != cls.__name__:
            raise TypeError(f"expected {cls.__name__}, got {data[_CLASS_KEY]}")
        return cls(**{name: dec(data[name]) for name, dec in fields if name in data})

    return decode


def _union_decoder(hint: Any) -> Decoder:
    args = typing.get_args(hint)
    optional = type(None) in args
    members: list[Any] = [a for a in args if a is not type(None)]
    if len(members) == 1:
        inner = decoder_for(members[0])
        return lambda data: None if data is None else inner(data)
    classes = [m for m in members if isinstance(m, type) and dataclasses.is_dataclass(m)]
    by_name: dict[str, Decoder] = {m.__name__: decoder_for(m) for m in classes}
    if len(by_name) != len(members):
        raise TypeError(f"wire: unions must be of dataclasses: {hint!r}")

    def decode(data: Any) -> Any:
        if data is None and optional:
            return None
        return by_name[data[_CLASS_KEY]](data)

    return decode
