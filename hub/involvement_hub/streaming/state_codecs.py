"""How the ordered stage's state and journal are stored in ``hub-state``: one codec per part
of the state (by key prefix), and the journal entry's stored form."""

from __future__ import annotations

import dataclasses
from typing import Any

from involvement_hub.core.family import PersonState
from involvement_hub.core.household import HouseholdState
from involvement_hub.core.matching import MatchCandidate, Profile
from involvement_hub.core.messages import ToResolve
from involvement_hub.core.ordered import Codec, JournalEntry, Outputs, journal_key
from involvement_hub.kafka import wire
from involvement_hub.kafka.topics import STATE_TABLE
from involvement_hub.limits import check_fits
from involvement_hub.streaming.tables import (
    ValueCodec,
    dataclass_codec,
    json_codec,
    remembered,
    str_codec,
)


def _codec(codec: ValueCodec[Any]) -> Codec:
    return Codec(encode=codec.encode, decode=codec.decode)


# How many decoded profiles, persons and households the ordered stage keeps at hand, each:
# decoding state values was a fifth of its time. Measured in process over the benchmark's
# population (31,920 records), paired runs: 361-400 us a record without, 318-340 with.
REMEMBERED = 16_384
# How each part of the ordered stage's state is kept in the state table.
STATE_CODECS: dict[str, Codec] = {
    "identity-person-of": _codec(str_codec),
    "identity-keys-of": _codec(json_codec),
    "identity-profiles": _codec(remembered(dataclass_codec(Profile), REMEMBERED)),
    "identity-by-birthday": _codec(json_codec),
    "identity-candidates": _codec(dataclass_codec(MatchCandidate)),
    "identity-decided": _codec(json_codec),
    "identity-rejected": _codec(json_codec),
    "persons": _codec(remembered(dataclass_codec(PersonState), REMEMBERED)),
    "households": _codec(remembered(dataclass_codec(HouseholdState), REMEMBERED)),
    "sources": _codec(json_codec),
    "frontiers": _codec(str_codec),
    "queues": _codec(json_codec),
    "waiting": _codec(dataclass_codec(ToResolve)),
}


@dataclasses.dataclass(frozen=True, slots=True)
class _JournalRecord:
    """A journal entry as stored: every value the step wrote is UTF-8 text (JSON)."""

    position: int
    writes: tuple[tuple[str, str | None], ...]
    outputs: Outputs
    last: int = -1


def encode_journal(entry: JournalEntry[bytes]) -> bytes:
    """Checked against the producer's limit here, before the step writes anything: a step
    too large to record is refused whole (the event is quarantined), never half applied."""
    writes = tuple((k, None if v is None else v.decode("utf-8")) for k, v in entry.writes)
    raw = wire.dumps(_JournalRecord(entry.position, writes, entry.outputs, entry.last))
    check_fits(STATE_TABLE, journal_key(entry.position).encode(), raw)
    return raw


def decode_journal(raw: bytes) -> JournalEntry[bytes]:
    record: _JournalRecord = wire.loads(_JournalRecord, raw)
    writes = tuple((k, None if v is None else v.encode("utf-8")) for k, v in record.writes)
    return JournalEntry(record.position, writes, record.outputs, record.last)
