"""A data steward's decision on a probable match, sent to the resolver as an event.

The decision goes onto the ordered identity topic like any other identity input, so it is
applied in order with the events around it, recorded in the identity log, and replayed
with everything else.
"""

from __future__ import annotations

import datetime as dt

from involvement_hub.core.messages import IdentityMessage, StewardDecision
from involvement_hub.kafka import wire
from involvement_hub.kafka.io import Outgoing, publish
from involvement_hub.kafka.topics import TopicNames
from involvement_hub.settings import Settings


async def send_decision(
    settings: Settings, candidate_id: str, *, confirm: bool, steward: str, reason: str
) -> None:
    decision = StewardDecision(candidate_id, confirm, steward, reason, dt.datetime.now(dt.UTC))
    topic = TopicNames.from_settings(settings).identity
    await publish(settings, [Outgoing(topic, wire.dumps(decision, IdentityMessage))])
