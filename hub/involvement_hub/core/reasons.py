"""Why a record is quarantined: the one registry of reason tokens.

A token is short, fixed and safe for a metric label (``hub_quarantined_total{reason}``) and
a quarantine header (``hub-reason``); ``hub quarantine replay --reason`` selects by it.
The decoding reasons are raised by the agency library's codec
(``involvement_hub_producer.codec``), which cannot import the hub: they are listed here
too, and ``tests/unit/test_reasons.py`` checks that every token the codec raises is here.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # The bytes (involvement_hub_producer.codec)
    TOO_LARGE = "too_large"
    BAD_MAGIC = "bad_magic"
    TRUNCATED_HEADER = "truncated_header"
    UNKNOWN_SCHEMA = "unknown_schema"
    MALFORMED_BODY = "malformed_body"
    TRAILING_BYTES = "trailing_bytes"
    # The message (streaming.ingest)
    NOT_AN_INGEST_TOPIC = "not_an_ingest_topic"
    EMPTY_VALUE = "empty_value"
    AGENCY_MISMATCH = "agency_mismatch"
    INVALID_RECORD = "invalid_record"
    # The record (core.records) and the policy (core.routing, streaming.ingest)
    UNKNOWN_RECORD_TYPE = "unknown_record_type"
    UNKNOWN_KIND = "unknown_kind"
    NO_USABLE_IDENTIFIER = "no_usable_identifier"
    DETAILS_TOO_LARGE = "details_too_large"
    TOO_MANY_RELATED = "too_many_related"
    SUBSCRIPTION_WITHOUT_REASON = "subscription_without_reason"
    NO_POLICY = "no_policy"
    # What the hub would produce for it (streaming.app)
    OUTPUT_TOO_LARGE = "output_too_large"
    # Records the consumer could not read at all (kafka.quarantine_note)
    UNREADABLE_BATCH = "unreadable_batch"
    # An unexpected error in a stage (streaming.app): the hub's failure, not the agency's
    INTERNAL_ERROR_INGEST = "internal_error_ingest"
    INTERNAL_ERROR_ORDERED = "internal_error_ordered"
    INTERNAL_ERROR_DELIVERY = "internal_error_delivery"

    @classmethod
    def internal_error(cls, stage: str) -> Reason:
        return cls(f"internal_error_{stage}")
