"""Creating the hub's topics with the partitions and retention the design needs.

Run before the worker starts, so every topic exists with the right shape before anything
is sent to it (the local broker does not auto-create topics, and neither should
production). Changelog topics are created by Faust itself, compacted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: TID251 - this package is the Kafka seam
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: TID251 - this package is the Kafka seam
from aiokafka.client import AIOKafkaClient, CoordinationType  # noqa: TID251 - this package is the Kafka seam
from aiokafka.errors import KafkaError, TopicAlreadyExistsError  # noqa: TID251 - this package is the Kafka seam
from aiokafka.protocol.api import Request, RequestStruct, Response  # noqa: TID251 - this package is the Kafka seam
from aiokafka.protocol.types import Array, Int16, Int32, Schema, String  # noqa: TID251 - this package is the Kafka seam

from involvement_hub.errors import HubError
from involvement_hub.kafka.client import client_options
from involvement_hub.kafka.topics import TopicNames, changelog_partitions
from involvement_hub.limits import PRODUCE_LIMIT_BYTES
from involvement_hub.settings import Settings

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
    # The hub's order is the order records reached Kafka: the broker stamps each ingest
    # record as it appends it, whatever time the agency's producer put on it.
    ingest = {**month, "message.timestamp.type": "LogAppendTime"}
    specs = [TopicSpec(t, n, ingest) for t in names.all_ingest]
    specs += [
        TopicSpec(names.quarantine, 1, {**month, **_HUB_MESSAGES}),
        TopicSpec(names.identity, 1, {**month, **_HUB_MESSAGES}),
        TopicSpec(names.identity_log, 1, forever),
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


def changelog_specs(settings: Settings) -> dict[str, int]:
    """The tables' changelog topics and their partitions, as Faust names them."""
    return changelog_partitions(settings)


async def ensure_changelogs(settings: Settings) -> list[str]:
    """Create the tables' changelog topics as Faust would (compacted), so that Faust finds
    them there when it starts. Left to Faust, a worker could start consuming before they
    were in its metadata: it then ignored them ("Ignoring missing topic") and failed every
    table write with PartitionsMismatch (seen by CI's chaos run on a loaded machine)."""
    wanted = changelog_specs(settings)
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
            response = await admin.create_topics(missing)
            for name, code, *rest in response.topic_errors:
                if code not in (0, TopicAlreadyExistsError.errno):
                    raise HubError(f"cannot create topic {name}: error {code} {rest}")
        return [t.name for t in missing]
    finally:
        await admin.close()


async def wait_for_topics(
    settings: Settings,
    expected: Mapping[str, int],
    *,
    timeout: float = 60.0,  # noqa: ASYNC109
    progress: Callable[[str], None] | None = None,
) -> None:
    """Until every topic in ``expected`` has that many partitions, each with a leader.

    A topic the controller has just created reaches the brokers' metadata a moment later;
    a worker that starts before then ignores it."""
    deadline = time.monotonic() + timeout
    said = time.monotonic()
    while True:
        missing = await _not_ready(settings, expected)
        if not missing:
            return
        if time.monotonic() > deadline:
            raise HubError(f"topics still without leaders after {timeout:.0f} s: {missing[:5]}")
        if progress is not None and time.monotonic() - said > 5:
            progress(f"waiting for {len(missing)} topics to have leaders")
            said = time.monotonic()
        await asyncio.sleep(0.2)


async def _not_ready(settings: Settings, expected: Mapping[str, int]) -> list[str]:
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        described = await admin.describe_topics(list(expected))
    finally:
        await admin.close()
    ready = {
        t["topic"]
        for t in described
        if t["error_code"] == 0
        and len(t["partitions"]) == expected[t["topic"]]
        and all(p["leader"] >= 0 for p in t["partitions"])
    }
    return sorted(set(expected) - ready)


class _LeaveGroupResponseV3(Response):  # type: ignore[misc]
    API_KEY = 13
    API_VERSION = 3
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        (
            "members",
            Array(
                ("member_id", String("utf-8")),
                ("group_instance_id", String("utf-8")),
                ("error_code", Int16),
            ),
        ),
    )


class _LeaveGroupRequestV3(RequestStruct):  # type: ignore[misc]
    API_KEY = 13
    API_VERSION = 3
    RESPONSE_TYPE = _LeaveGroupResponseV3
    SCHEMA = Schema(
        ("group_id", String("utf-8")),
        ("members", Array(("member_id", String("utf-8")), ("group_instance_id", String("utf-8")))),
    )


class _LeaveAsStaticMember(Request[_LeaveGroupRequestV3]):  # type: ignore[misc]
    """LeaveGroup v3 (KIP-345), which aiokafka lacks: a static member leaves by instance id."""

    API_KEY = 13

    def __init__(self, group_id: str, instance_id: str) -> None:
        self._group_id = group_id
        self._instance_id = instance_id

    def build(self, request_struct_class: type[_LeaveGroupRequestV3]) -> _LeaveGroupRequestV3:
        # An empty member id: the coordinator finds the member by its instance id.
        return request_struct_class(self._group_id, [("", self._instance_id)])


async def leave_group(settings: Settings, group_id: str, instance_id: str) -> None:
    """Take a stopped static member out of its group at once.

    A static member keeps its partitions for a session timeout after it stops, so that a
    worker restarted after a crash gets them straight back. A worker that is stopped on
    purpose leaves instead: the others take its partitions over now, and tools that need an
    empty group (resetting offsets for a replay) do not have to wait.
    """
    client = AIOKafkaClient(**client_options(settings), client_id=f"{group_id}-leave")
    try:
        await client.bootstrap()
        node = await client.coordinator_lookup(CoordinationType.GROUP, group_id)
        response = await client.send(node, _LeaveAsStaticMember(group_id, instance_id))
    except KafkaError as exc:
        raise HubError(f"could not leave consumer group {group_id}: {exc}") from exc
    finally:
        await client.close()
    codes = [response.error_code] + [member[2] for member in response.members]
    # A member already gone (its session expired) is not an error here.
    failed = [code for code in codes if code not in (0, _UNKNOWN_MEMBER_ID)]
    if failed:
        raise HubError(f"could not leave consumer group {group_id}: Kafka error {failed[0]}")


_UNKNOWN_MEMBER_ID = 25


async def delete_topics(settings: Settings) -> int:
    """Delete a scenario's topics and its worker's changelogs, keeping the broker small."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        mine = [
            t
            for t in await admin.list_topics()
            if t.startswith(settings.topic_prefix) or t.startswith(f"{settings.app_id}-")
        ]
        if mine:
            await admin.delete_topics(mine)
        return len(mine)
    finally:
        await admin.close()
