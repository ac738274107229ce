"""The root of the hub's error tree, and the errors of the wire contract.

The whole tree is drawn in :mod:`involvement_hub.errors`; this module holds the part an
agency needs without the hub installed::

    HubError
     └── ContractError            the Avro contract between agencies and the hub
          ├── SchemaError         a schema file is missing, invalid or ambiguous
          │    └── IncompatibleSchemaError   a new version cannot read, or be read by,
          │                                  an earlier version of its record
          ├── EncodeError         a record does not fit its schema (nothing is sent)
          └── DecodeError         bytes from the wire cannot be read (quarantined)

Third-party exceptions (fastavro, json, struct) are wrapped at the boundary with ``from exc``.
"""

from __future__ import annotations


class HubError(Exception):
    """Base of every error the hub or its producer library raises on purpose."""


class ContractError(HubError):
    """The Avro contract between an agency and the hub was not honoured."""


class SchemaError(ContractError):
    """A schema file is missing, unparseable, or two files claim the same version."""


class IncompatibleSchemaError(SchemaError):
    """A version of a record cannot read an earlier version, or be read by it.

    ``problems`` holds one line per reason, each naming the record, the two versions and
    the field (``LifeEvent v1 -> v2: LifeEvent.urgency: ...``).
    """

    def __init__(self, problems: tuple[str, ...]) -> None:
        lines = "".join(f"\n  {p}" for p in problems)
        super().__init__(
            "every version of a record must read, and be read by, the versions before it "
            f"(full compatibility); {len(problems)} problem(s):{lines}"
        )
        self.problems = problems


class EncodeError(ContractError):
    """A record cannot be encoded against its schema; nothing is published for it."""


class DecodeError(ContractError):
    """Bytes cannot be decoded. ``reason`` is a short, fixed token safe for metric labels.

    ``detail`` explains the failure for logs and quarantine headers; it never contains
    payload content, because payloads carry personal data.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
