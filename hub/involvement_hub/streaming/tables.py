"""Faust tables seen as mappings of the core's values.

Every table stores bytes that this module encodes: given a value type, Faust would treat it
as one of its models and fail to rebuild it from the changelog (a restarted worker then
hangs in recovery). Keys are text.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from involvement_hub.kafka import wire
from involvement_hub.limits import check_fits

V = TypeVar("V")


@dataclass(frozen=True)
class ValueCodec(Generic[V]):
    encode: Callable[[V], bytes]
    decode: Callable[[bytes], V]


str_codec: ValueCodec[str] = ValueCodec(lambda v: v.encode("utf-8"), lambda b: b.decode("utf-8"))
json_codec: ValueCodec[Any] = ValueCodec(
    lambda v: json.dumps(v, separators=(",", ":")).encode("utf-8"), json.loads
)


class Encoded(MutableMapping[str, V]):
    """A Faust table of bytes seen as a mapping of decoded values."""

    def __init__(self, table: Any, codec: ValueCodec[V]) -> None:
        self._table = table
        self._codec = codec

    def __getitem__(self, key: str) -> V:
        return self._codec.decode(self._table[key])

    def get(self, key: str, default: Any = None) -> Any:
        raw = self._table.get(key)
        return default if raw is None else self._codec.decode(raw)

    def __setitem__(self, key: str, value: V) -> None:
        encoded = self._codec.encode(value)
        # A table write is a changelog message: one too large would crash the producer.
        check_fits(f"table {getattr(self._table, 'name', '?')}", key.encode("utf-8"), encoded)
        self._table[key] = encoded

    def __delitem__(self, key: str) -> None:
        del self._table[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


def dataclass_codec(cls: Any) -> ValueCodec[Any]:
    """Values of a core dataclass (or union of them), as the internal JSON of ``wire``."""
    return ValueCodec(lambda v: wire.dumps(v, cls), lambda b: wire.loads(cls, b))


def remembered(codec: ValueCodec[V], size: int) -> ValueCodec[V]:
    """``codec``, keeping the values of the ``size`` byte strings it last decoded or made.

    A table in memory hands back the very bytes object it was given, so a value read again,
    or read after this worker wrote it, is known by the object's identity and not decoded
    again (a store that makes new bytes at every read only misses). Only for immutable
    values (frozen dataclasses of tuples): every reader gets the same object.
    """
    memo: OrderedDict[int, tuple[bytes, V]] = OrderedDict()

    def remember(raw: bytes, value: V) -> None:
        # Keeping ``raw`` keeps its id from being reused while it is here.
        memo[id(raw)] = (raw, value)
        if len(memo) > size:
            memo.popitem(last=False)  # the least recently used

    def encode(value: V) -> bytes:
        raw = codec.encode(value)
        remember(raw, value)
        return raw

    def decode(raw: bytes) -> V:
        known = memo.get(id(raw))
        if known is not None and known[0] is raw:
            memo.move_to_end(id(raw))
            return known[1]
        value = codec.decode(raw)
        remember(raw, value)
        return value

    return ValueCodec(encode, decode)
