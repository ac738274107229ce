"""The hub's one error tree. Every error raised on purpose is one of these::

    HubError                          (involvement_hub_producer.errors)
     ├── ContractError                the Avro contract with the agencies
     │    ├── SchemaError             a schema file is missing or invalid: the hub will not start
     │    │    └── IncompatibleSchemaError  a new version cannot read, or be read by, an
     │    │                                 earlier one (full compatibility)
     │    ├── EncodeError             a record does not fit its schema: nothing is published
     │    └── DecodeError             unreadable bytes: the message is quarantined
     ├── PublishError                 the broker did not take an agency's event
     ├── ConfigError                  the hub will not start until this is fixed (core.errors)
     │    ├── SettingsError           a HUB_* variable is unknown or malformed
     │    ├── PolicyError             the governance policy file is invalid
     │    └── SubscriptionError       a subscription rule is invalid
     ├── RejectedEvent                a decoded event the hub must not route: quarantined
     │                                (core.errors, with PolicyError and SubscriptionError)
     ├── OversizeMessage              an output too large to produce: its input is quarantined
     ├── DeliveryError                an alert could not be handed to the mail server
     │    ├── TransientDeliveryError  4xx, refused or dropped connection, timeout: retried
     │    ├── PermanentDeliveryError  5xx: escalated, not retried
     │    └── InsecureTransportError  no STARTTLS, or an untrusted certificate: escalated,
     │                                and retried in case the server is fixed
     ├── QueryError                   an operator's question the stored data cannot answer
     │                                (``hub team``, ``audit``, ``identity``, ``delivery``)
     └── LocalKafkaError              the local development broker cannot be fetched or run

Rules: decode errors quarantine, transient delivery errors retry, permanent ones escalate.
Third-party exceptions are wrapped where they enter (``raise X(...) from exc``), and an error's
message never contains payload content, because payloads carry personal data.
"""

from __future__ import annotations

from involvement_hub_producer.errors import (
    ContractError,
    DecodeError,
    EncodeError,
    HubError,
    IncompatibleSchemaError,
    SchemaError,
)
from involvement_hub_producer.publisher import PublishError

from involvement_hub.core.errors import (
    ConfigError,
    PolicyError,
    RejectedEvent,
    SubscriptionError,
)

__all__ = [
    "ConfigError",
    "ContractError",
    "DecodeError",
    "DeliveryError",
    "EncodeError",
    "HubError",
    "IncompatibleSchemaError",
    "InsecureTransportError",
    "LocalKafkaError",
    "OversizeMessage",
    "PermanentDeliveryError",
    "PolicyError",
    "PublishError",
    "QueryError",
    "RejectedEvent",
    "SchemaError",
    "SettingsError",
    "SubscriptionError",
    "TransientDeliveryError",
]


class SettingsError(ConfigError):
    """A ``HUB_*`` environment variable is unknown or cannot be read."""


class OversizeMessage(HubError):
    """A message the hub was about to produce is larger than its producers allow.

    Raised before the message reaches the producer (whose refusal would crash the worker),
    inside the agent's handler, so the event that caused it is quarantined instead.
    """

    def __init__(self, topic: str, size: int, limit: int) -> None:
        super().__init__(f"a {size}-byte message for {topic} exceeds the {limit}-byte limit")
        self.topic = topic
        self.size = size
        self.limit = limit


class DeliveryError(HubError):
    """An alert could not be handed to the mail server."""


class TransientDeliveryError(DeliveryError):
    """Worth retrying: a 4xx reply, a refused or dropped connection, a timeout."""


class PermanentDeliveryError(DeliveryError):
    """Not worth retrying: a 5xx reply."""


class InsecureTransportError(DeliveryError):
    """The server cannot be reached securely (no STARTTLS, untrusted certificate). Nothing
    is sent in clear; the alert is escalated and waits for the server to be fixed."""


class QueryError(HubError):
    """A question the stored data cannot answer (unknown identifier, unreachable broker)."""


class LocalKafkaError(HubError):
    """The local development broker could not be fetched, started or stopped."""
