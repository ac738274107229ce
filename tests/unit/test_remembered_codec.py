"""The ordered stage keeps decoded state values at hand: read again, not decoded again."""

from __future__ import annotations

from involvement_hub.core.matching import Profile
from involvement_hub.streaming.tables import ValueCodec, dataclass_codec, remembered


def counting() -> tuple[ValueCodec[Profile], list[bytes]]:
    inner = dataclass_codec(Profile)
    decoded: list[bytes] = []

    def decode(raw: bytes) -> Profile:
        decoded.append(raw)
        value: Profile = inner.decode(raw)
        return value

    return ValueCodec(inner.encode, decode), decoded


def test_the_same_bytes_read_again_or_after_the_write_are_not_decoded_again() -> None:
    codec, decoded = counting()
    memo = remembered(codec, 4)
    ash = Profile(given=("Ash",), dates_of_birth=("2019-02-03",))
    raw = memo.encode(ash)
    assert memo.decode(raw) is ash  # written, then read: never decoded
    other = codec.encode(Profile(given=("Rowan",)))
    first = memo.decode(other)
    assert memo.decode(other) is first
    assert decoded == [other]


def test_equal_bytes_in_another_object_are_decoded_as_they_are() -> None:
    codec, decoded = counting()
    memo = remembered(codec, 4)
    raw = codec.encode(Profile(given=("Rowan",)))
    copy = bytes(bytearray(raw))
    assert copy is not raw
    assert memo.decode(raw) == memo.decode(copy) == Profile(given=("Rowan",))
    assert decoded == [raw, copy]


def test_it_keeps_only_the_most_recently_used() -> None:
    codec, decoded = counting()
    memo = remembered(codec, 2)
    a, b, c = (codec.encode(Profile(given=(name,))) for name in ("A", "B", "C"))
    memo.decode(a)
    memo.decode(b)
    memo.decode(a)  # used again: b is now the least recent
    memo.decode(c)  # b goes
    assert memo.decode(a) == Profile(given=("A",))
    assert memo.decode(b) == Profile(given=("B",))
    assert decoded == [a, b, c, b]
