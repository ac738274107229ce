"""The root of the hub's error tree, and the errors of the wire contract.

The whole tree is drawn in :mod:`involvement_hub.errors`; this module holds the part an
agency needs without the hub installed::

    HubError
     └── ContractError            the Avro contract between agencies and the hub
          ├── SchemaError         a schema file is missing, invalid or ambiguous
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
