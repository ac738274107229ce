"""Whatever arrives, what the hub writes stays within what its producer may send: quarantine
notes copy nothing large and no agency header, outputs are measured before they are sent,
and a null value has a reason of its own."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from involvement_hub.cli.quarantine import Quarantined
from involvement_hub.config import load_config
from involvement_hub.core.reasons import Reason
from involvement_hub.errors import ConfigError, OversizeMessage, SettingsError
from involvement_hub.kafka.admin import topic_specs
from involvement_hub.kafka.client import check_codecs
from involvement_hub.kafka.quarantine_note import Note, Source, note_for, unreadable_note
from involvement_hub.kafka.topics import TopicNames
from involvement_hub.limits import (
    MAX_DECODED_BYTES,
    PRODUCE_LIMIT_BYTES,
    QUARANTINE_DETAIL_CAP_CHARS,
    QUARANTINE_KEY_CAP_BYTES,
    check_fits,
    record_size,
)
from involvement_hub.settings import Settings
from involvement_hub.streaming.ingest import Quarantine, examine
from involvement_hub.streaming.tables import Encoded, str_codec

REPO = Path(__file__).resolve().parents[2]
AT = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)
SOURCE = Source("ingest.northshire-police", 3, 41)
CAP = 256 * 1024


def _note(
    key: bytes | None,
    value: bytes | None,
    headers: Any = None,
    *,
    reason: str = "bad_magic",
    detail: str = "starts with 0000",
) -> Note:
    return note_for(
        SOURCE, key, value, headers, reason=reason, detail=detail, at=AT, max_payload_bytes=CAP
    )


def _text(headers: dict[str, bytes]) -> dict[str, str]:
    return {k: v.decode() for k, v in headers.items()}


def test_a_small_message_is_kept_whole_for_replay() -> None:
    note = _note(b"INC-1", b"\x00\x01garbage")
    assert (note.key, note.value) == (b"INC-1", b"\x00\x01garbage")
    headers = _text(note.headers)
    assert headers["hub-payload"] == "kept"
    assert headers["hub-reason"] == "bad_magic"
    assert headers["hub-source-topic"] == SOURCE.topic
    assert (headers["hub-source-partition"], headers["hub-source-offset"]) == ("3", "41")
    assert headers["hub-source-size"] == str(len(b"\x00\x01garbage"))
    # Exactly str and bytes: aiokafka's record builder refuses a str subclass as a name.
    assert {(type(k), type(v)) for k, v in note.headers.items()} == {(str, bytes)}


def test_a_too_large_message_is_noted_without_its_payload_but_with_where_it_is() -> None:
    value = b"x" * (CAP + 1)
    note = _note(b"INC-2", value, reason="too_large")
    assert note.key is None
    assert note.value == b""
    headers = _text(note.headers)
    assert headers["hub-payload"] == "dropped"
    assert headers["hub-source-size"] == str(CAP + 1)
    assert headers["hub-source-key-size"] == "5"
    assert (headers["hub-source-topic"], headers["hub-source-partition"]) == (SOURCE.topic, "3")
    assert headers["hub-source-offset"] == "41"
    assert record_size(note.key, note.value, note.headers) < 4096


def test_a_huge_key_drops_the_payload_too() -> None:
    note = _note(b"k" * (QUARANTINE_KEY_CAP_BYTES + 1), b"small")
    assert (note.key, note.value) == (None, b"")
    assert note.headers["hub-payload"] == b"dropped"


def test_agency_headers_are_never_copied_only_measured() -> None:
    huge = [("trace", b"t" * 100_000), ("x-agency", b"abc")]
    note = _note(b"INC-3", b"garbage", huge)
    assert all(name.startswith("hub-") for name in note.headers)
    assert note.headers["hub-source-header-bytes"] == str(100_005 + 8 + 3).encode()
    assert _note(b"k", b"v", {"a": b"bc"}).headers["hub-source-header-bytes"] == b"3"


def test_a_null_value_is_noted_as_null() -> None:
    note = _note(b"INC-4", None, reason=Reason.EMPTY_VALUE)
    assert note.value == b""  # a producer refuses a record with neither key nor value
    assert note.key == b"INC-4"
    assert _note(None, None, reason=Reason.EMPTY_VALUE).value == b""
    assert note.headers["hub-payload"] == b"null"
    assert note.headers["hub-source-size"] == b"0"


def test_a_detail_quoting_the_payload_is_capped() -> None:
    note = _note(b"k", b"v", detail="payload claims " + "a" * 100_000)
    assert len(note.headers["hub-detail"]) == QUARANTINE_DETAIL_CAP_CHARS


def test_the_largest_kept_note_fits_the_producer() -> None:
    note = note_for(
        SOURCE,
        b"k" * QUARANTINE_KEY_CAP_BYTES,
        b"v" * MAX_DECODED_BYTES,
        None,
        reason="r" * 40,
        detail="d" * 10_000,
        at=AT,
        max_payload_bytes=MAX_DECODED_BYTES,
    )
    assert note.headers["hub-payload"] == b"kept"
    check_fits("hub.quarantine", note.key, note.value, note.headers)


def test_an_unreadable_batch_note_says_which_offsets() -> None:
    note = unreadable_note(SOURCE, 44, "UnsupportedCodecError", AT)
    assert (note.key, note.value) == (None, b"")
    headers = _text(note.headers)
    assert headers["hub-reason"] == "unreadable_batch"
    assert headers["hub-payload"] == "not-read"
    assert (headers["hub-source-offset"], headers["hub-source-last-offset"]) == ("41", "44")


def test_check_fits_refuses_what_the_producer_would() -> None:
    check_fits("t", b"k", b"v" * (PRODUCE_LIMIT_BYTES - 2048))
    with pytest.raises(OversizeMessage) as caught:
        check_fits("hub.person", b"k", b"v" * PRODUCE_LIMIT_BYTES)
    assert caught.value.topic == "hub.person"
    assert caught.value.size > caught.value.limit == PRODUCE_LIMIT_BYTES
    with pytest.raises(OversizeMessage):
        check_fits("t", None, b"v", {"h": b"x" * PRODUCE_LIMIT_BYTES})


def test_a_table_write_too_large_for_its_changelog_is_refused_before_it_is_made() -> None:
    table: dict[str, bytes] = {}
    encoded = Encoded(table, str_codec)
    encoded["small"] = "fine"
    with pytest.raises(OversizeMessage):
        encoded["huge"] = "x" * PRODUCE_LIMIT_BYTES
    assert table == {"small": b"fine"}


@pytest.mark.parametrize("raw", [None, b""])
def test_a_null_or_empty_value_is_quarantined_as_empty_value(raw: bytes | None) -> None:
    settings = Settings(
        policy_file=REPO / "governance" / "policy.toml", subscriptions_dir=REPO / "subscriptions"
    )
    config = load_config(settings)
    result = examine(
        raw,
        topic_agency="northshire-police",
        registry=config.registry,
        policy=config.policy,
        max_bytes=CAP,
    )
    assert isinstance(result, Quarantine)
    assert result.reason == Reason.EMPTY_VALUE


def test_the_decode_cap_must_leave_room_for_the_quarantine_note() -> None:
    Settings(max_message_bytes=MAX_DECODED_BYTES).validate()
    for wrong in (0, MAX_DECODED_BYTES + 1, 2 * PRODUCE_LIMIT_BYTES):
        with pytest.raises(SettingsError, match="HUB_MAX_MESSAGE_BYTES"):
            Settings(max_message_bytes=wrong).validate()


def test_the_hub_topics_take_the_hub_producer_limit_and_ingest_keeps_the_broker_one() -> None:
    settings = Settings()
    names = TopicNames.from_settings(settings)
    for spec in topic_specs(settings):
        limit = spec.config.get("max.message.bytes")
        if spec.name in names.all_ingest:
            assert limit is None
        else:
            assert limit == str(PRODUCE_LIMIT_BYTES), spec.name


def test_every_kafka_codec_is_installed() -> None:
    check_codecs()


def test_a_missing_codec_stops_the_worker_from_starting(monkeypatch: pytest.MonkeyPatch) -> None:
    from aiokafka import codec  # noqa: TID251 - tests write and read raw records

    monkeypatch.setattr(codec, "has_lz4", lambda: False)
    with pytest.raises(ConfigError, match="lz4"):
        check_codecs()


def test_notes_without_the_message_are_listed_but_never_replayed() -> None:
    kept = Quarantined(1, 0, b"k", b"v", {"hub-payload": "kept"})
    older = Quarantined(2, 0, b"k", b"v", {})
    dropped = Quarantined(3, 0, None, b"", {"hub-payload": "dropped"})
    null = Quarantined(4, 0, b"k", b"", {"hub-payload": "null"})
    assert [m.replayable for m in (kept, older, dropped, null)] == [True, True, False, False]
