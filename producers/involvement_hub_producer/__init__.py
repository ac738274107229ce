"""The agency side of the involvement hub: encode events and publish them to the hub.

Install it without the hub (``pip install ./producers``); it needs only aiokafka and
fastavro::

    async with AgencyPublisher("broker:9092", agency_id="northshire-police") as pub:
        await pub.publish(record, "LifeEvent")
"""

from .codec import Decoded, KnownSchema, SchemaRegistry, decode, encode
from .errors import ContractError, DecodeError, EncodeError, HubError, SchemaError
from .json_form import from_json, to_json
from .publisher import (
    AgencyPublisher,
    PublishError,
    encode_for_agency,
    ingest_topic,
    record_key,
)

__all__ = [
    "AgencyPublisher",
    "ContractError",
    "DecodeError",
    "Decoded",
    "EncodeError",
    "HubError",
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
