"""Creating the hub's topics with the partitions and retention the design needs.

Run before the worker starts, so every topic exists with the right shape before anything
is sent to it (the local broker does not auto-create topics, and neither should
production). Changelog topics are created by Faust itself, compacted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from involvement_hub.errors import HubError
from involvement_hub.kafka_client import client_options
from involvement_hub.limits import PRODUCE_LIMIT_BYTES
from involvement_hub.settings import Settings
from involvement_hub.topics import TopicNames

_DAY_MS = 24 * 3600 * 1000
# Every topic the hub writes takes the largest message the hub's producers send, whatever
# the broker's default (message.max.bytes, 1,048,588 unless changed). Ingest topics keep
# the broker's limit: that is the agencies' contract, and the hub reads whatever it allows.
_HUB_MESSAGES = {"max.message.bytes": str(PRODUCE_LIMIT_BYTES)}


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    config: Mapping[str, str]


def topic_specs(settings: Settings) -> tuple[TopicSpec, ...]:
    names = TopicNames.from_settings(settings)
    n = settings.partitions
    # IG-6: alert payloads live only as long as delivery needs (retries span hours, a
    # restart may replay a day); the audit is append-only and kept indefinitely.
    short = {"retention.ms": str(7 * _DAY_MS), **_HUB_MESSAGES}
    month = {"retention.ms": str(30 * _DAY_MS)}
    forever = {"retention.ms": "-1", **_HUB_MESSAGES}
    specs = [TopicSpec(t, n, month) for t in names.all_ingest]
    specs += [
        TopicSpec(names.quarantine, 1, {**month, **_HUB_MESSAGES}),
        TopicSpec(names.identity, 1, {**month, **_HUB_MESSAGES}),
        TopicSpec(names.identity_log, 1, forever),
        TopicSpec(names.household, n, short),
        TopicSpec(names.person, n, short),
        TopicSpec(names.alerts, n, short),
        TopicSpec(names.delivery, n, {"retention.ms": str(90 * _DAY_MS), **_HUB_MESSAGES}),
        TopicSpec(names.audit, n, forever),
    ]
    return tuple(specs)


async def ensure_topics(settings: Settings, *, replication_factor: int = 1) -> list[str]:
    """Create any missing hub topic; returns the names created."""
    admin = AIOKafkaAdminClient(**client_options(settings), request_timeout_ms=15000)
    try:
        await admin.start()
    except KafkaError as exc:
        raise HubError(f"cannot reach Kafka at {settings.bootstrap}: {exc}") from exc
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in topic_specs(settings) if s.name not in existing]
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        s.name,
                        num_partitions=s.partitions,
                        replication_factor=replication_factor,
                        topic_configs=dict(s.config),
                    )
                    for s in missing
                ]
            )
            for name, code, *rest in response.topic_errors:
                # Another worker may have created the topic between our list and create.
                if code not in (0, TopicAlreadyExistsError.errno):
                    raise HubError(f"cannot create topic {name}: error {code} {rest}")
        return [s.name for s in missing]
    finally:
        await admin.close()


async def partitions_of(settings: Settings, topics: list[str]) -> list[TopicPartition]:
    """The partitions of each existing topic in ``topics`` (missing topics are left out)."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return [
        TopicPartition(t["topic"], p["partition"])
        for t in described
        if t["error_code"] == 0
        for p in sorted(t["partitions"], key=lambda p: p["partition"])
    ]


async def group_lag(settings: Settings, group: str, topics: list[str]) -> int:
    """Messages in ``topics`` that consumer group ``group`` has not yet committed."""
    partitions = await partitions_of(settings, topics)
    if not partitions:
        return 0
    admin = AIOKafkaAdminClient(**client_options(settings))
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        ends = await consumer.end_offsets(partitions)
        lag = 0
        for tp, end in ends.items():
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            lag += max(end - done, 0)
        return lag
    finally:
        await consumer.stop()
        await admin.close()


async def ensure_changelogs(settings: Settings) -> None:
    """Create the tables' changelog topics as Faust would (compacted), before a bulk load
    writes into them; Faust finds them already there when it starts."""
    n = settings.partitions
    identity = [
        "identity-person-of",
        "identity-keys-of",
        "identity-profiles",
        "identity-by-birthday",
        "identity-candidates",
        "identity-decided",
        "identity-rejected",
    ]
    wanted = {f"{settings.app_id}-{t}-changelog": 1 for t in identity}
    for table in ("persons", "households", "outbox", "delivery-due", "digests"):
        wanted[f"{settings.app_id}-{table}-changelog"] = n
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name,
                num_partitions=p,
                replication_factor=settings.replication_factor,
                topic_configs={"cleanup.policy": "compact", **_HUB_MESSAGES},
            )
            for name, p in wanted.items()
            if name not in existing
        ]
        if missing:
            await admin.create_topics(missing)
    finally:
        await admin.close()
