"""The agency side of the involvement hub: encode events and publish them to the hub.

Install it without the hub (``pip install ./producers``); it needs only aiokafka and
fastavro::

    async with AgencyPublisher("broker:9092", agency_id="northshire-police") as pub:
        await pub.publish(record, "LifeEvent")

The codec and the publisher are imported on first use: ``involvement_hub_producer.errors``
(the root of the hub's error tree) then needs neither fastavro nor aiokafka, so the hub's
pure core can share the root and still import nothing but the standard library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    ContractError,
    DecodeError,
    EncodeError,
    HubError,
    IncompatibleSchemaError,
    SchemaError,
)

if TYPE_CHECKING:
    from .codec import Decoded, KnownSchema, SchemaRegistry, decode, encode
    from .json_form import from_json, to_json
    from .publisher import (
        AgencyPublisher,
        PublishError,
        encode_for_agency,
        ingest_topic,
        record_key,
    )

# Each lazily imported name and the module it comes from.
_LAZY = {
    "Decoded": "codec",
    "KnownSchema": "codec",
    "SchemaRegistry": "codec",
    "decode": "codec",
    "encode": "codec",
    "from_json": "json_form",
    "to_json": "json_form",
    "AgencyPublisher": "publisher",
    "PublishError": "publisher",
    "encode_for_agency": "publisher",
    "ingest_topic": "publisher",
    "record_key": "publisher",
}

__all__ = [
    "AgencyPublisher",
    "ContractError",
    "DecodeError",
    "Decoded",
    "EncodeError",
    "HubError",
    "IncompatibleSchemaError",
    "KnownSchema",
    "PublishError",
    "SchemaError",
    "SchemaRegistry",
    "decode",
    "encode",
    "encode_for_agency",
    "from_json",
    "ingest_topic",
    "record_key",
    "to_json",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
