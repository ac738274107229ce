"""Publishing an agency's events to its own ingest topic.

The producer is idempotent with ``acks="all"``: aiokafka's default is neither, and without
both a retried send can write an event twice or lose it when a broker fails over. The message
key is the source system's case reference, so every event about one case stays in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaProducer  # noqa: TID251 - the agency publisher is the library's Kafka seam
from aiokafka.errors import KafkaError  # noqa: TID251 - the agency publisher is the library's Kafka seam

from .codec import SchemaRegistry, encode
from .errors import EncodeError, HubError

INGEST_PREFIX = "ingest."


class PublishError(HubError):
    """The broker did not accept an event (after the producer's own retries)."""


def ingest_topic(agency_id: str, topic_prefix: str = "") -> str:
    """The topic an agency publishes to: ``[prefix]ingest.<agency_id>``."""
    return f"{topic_prefix}{INGEST_PREFIX}{agency_id}"


def encode_for_agency(
    record: Mapping[str, Any], record_type: str, agency_id: str, registry: SchemaRegistry
) -> bytes:
    """Encode a record of ``agency_id``; a record claiming another agency is refused here,
    because the hub would quarantine it anyway."""
    source = record.get("source")
    claimed = source.get("agency_id") if isinstance(source, Mapping) else None
    if claimed != agency_id:
        raise EncodeError(
            f"source.agency_id is {claimed!r} but this publisher is for {agency_id!r}"
        )
    return encode(record, registry.current(record_type))


def record_key(record: Mapping[str, Any]) -> bytes:
    """The message key: the case reference, so one case's events stay in order."""
    return str(record["source"]["record_ref"]).encode("utf-8")


class AgencyPublisher:
    """Encodes records and publishes them to ``ingest.<agency_id>``.

    ``client_options`` go to :class:`aiokafka.AIOKafkaProducer` unchanged (for example
    ``security_protocol``, ``ssl_context``, ``sasl_mechanism``), except that idempotence
    and ``acks`` cannot be weakened.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        agency_id: str,
        *,
        registry: SchemaRegistry | None = None,
        topic_prefix: str = "",
        **client_options: Any,
    ) -> None:
        for forced in ("enable_idempotence", "acks"):
            if forced in client_options:
                raise ValueError(f"{forced} is fixed by the publisher and cannot be set")
        self.agency_id = agency_id
        self.topic = ingest_topic(agency_id, topic_prefix)
        self.registry = registry or SchemaRegistry.packaged()
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            enable_idempotence=True,
            acks="all",
            **client_options,
        )

    async def start(self) -> None:
        try:
            await self._producer.start()
        except KafkaError as exc:
            raise PublishError(f"cannot reach the broker: {exc}") from exc

    async def stop(self) -> None:
        await self._producer.stop()

    async def __aenter__(self) -> AgencyPublisher:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def encode(self, record: Mapping[str, Any], record_type: str) -> bytes:
        """Encode a record, checking it is this agency's own (else :class:`EncodeError`)."""
        return encode_for_agency(record, record_type, self.agency_id, self.registry)

    async def send(self, record: Mapping[str, Any], record_type: str) -> asyncio.Future[Any]:
        """Queue one record; await the returned future for the broker's acknowledgement."""
        value = self.encode(record, record_type)
        return await self.send_encoded(value, record_key(record))

    async def send_encoded(self, value: bytes, key: bytes) -> asyncio.Future[Any]:
        """Queue bytes from :meth:`encode` under ``key`` (see :func:`record_key`)."""
        try:
            future: asyncio.Future[Any] = await self._producer.send(
                self.topic, value=value, key=key
            )
        except KafkaError as exc:
            raise PublishError(f"send failed: {exc}") from exc
        return future

    async def topic_exists(self) -> bool:
        """Whether this agency's ingest topic exists (the hub or ops create it)."""
        try:
            metadata = await self._producer.client.fetch_all_metadata()
        except KafkaError as exc:
            raise PublishError(f"cannot read cluster metadata: {exc}") from exc
        return self.topic in metadata.topics()

    async def publish(self, record: Mapping[str, Any], record_type: str) -> None:
        """Encode, send and wait until the broker has the record on all in-sync replicas."""
        future = await self.send(record, record_type)
        try:
            await future
        except KafkaError as exc:
            raise PublishError(f"broker rejected the event: {exc}") from exc
