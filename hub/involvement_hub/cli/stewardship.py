"""A data steward's decision on a probable match, sent to the resolver as an event.

The decision goes onto the ordered identity topic like any other identity input, so it is
applied in order with the events around it, recorded in the identity log, and replayed
with everything else.
"""

from __future__ import annotations

import datetime as dt

from aiokafka import AIOKafkaProducer

from involvement_hub.core.messages import IdentityMessage, StewardDecision
from involvement_hub.kafka import wire
from involvement_hub.kafka.client import client_options
from involvement_hub.kafka.topics import TopicNames
from involvement_hub.settings import Settings


async def send_decision(
    settings: Settings, candidate_id: str, *, confirm: bool, steward: str, reason: str
) -> None:
    decision = StewardDecision(candidate_id, confirm, steward, reason, dt.datetime.now(dt.UTC))
    producer = AIOKafkaProducer(**client_options(settings), enable_idempotence=True, acks="all")
    await producer.start()
    try:
        topic = TopicNames.from_settings(settings).identity
        await producer.send_and_wait(topic, wire.dumps(decision, IdentityMessage))
    finally:
        await producer.stop()
