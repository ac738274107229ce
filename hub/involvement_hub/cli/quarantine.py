"""The quarantine, for the people who fix what went into it: ``hub quarantine list|replay``.

Every quarantined message keeps its original bytes and key, with headers saying where it
came from and why (``hub-reason``, ``hub-detail``, ``hub-source-topic``, ...) -- unless it
was too large to copy or could not be read at all (``hub-payload`` is then ``dropped`` or
``not-read``, see ``quarantine_note``): those are listed but never replayed. Once the
cause is fixed -- a schema deployed, a policy entry added, an agency's bug mended -- a
replay publishes the messages back to the topics they came from, to be processed again.
Replays are safe to repeat: events are idempotent by their ids and alerts by theirs.

A replay remembers how far it got (a consumer group of its own), so the next replay starts
after it; ``--from-start`` goes over everything again.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from involvement_hub.kafka.io import Outgoing, commit_positions, publish, read_to_end
from involvement_hub.kafka.quarantine_note import KEPT, Header
from involvement_hub.kafka.topics import TopicNames
from involvement_hub.settings import Settings


@dataclass(frozen=True, slots=True)
class Quarantined:
    offset: int
    partition: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]

    @property
    def reason(self) -> str:
        return self.headers.get(Header.REASON, "?")

    @property
    def source_topic(self) -> str:
        return self.headers.get(Header.SOURCE_TOPIC, "")

    @property
    def replayable(self) -> bool:
        """Whether the note holds the original message (notes from before ``hub-payload``
        existed always did)."""
        return self.value is not None and self.headers.get(Header.PAYLOAD, KEPT) == KEPT

    def agency(self, names: TopicNames) -> str:
        return names.agency_of(self.source_topic) or "-"


def replay_group(settings: Settings) -> str:
    return f"{settings.app_id}-quarantine-replay"


async def read(settings: Settings, *, from_start: bool) -> tuple[list[Quarantined], dict[int, int]]:
    """Quarantined messages (after the last replay unless ``from_start``), and the end
    offset read to in each partition."""
    topic = TopicNames.from_settings(settings).quarantine
    records, ends = await read_to_end(
        settings, topic, group=replay_group(settings), from_start=from_start
    )
    found = [
        Quarantined(
            r.offset,
            r.partition,
            r.key,
            r.value,
            {k: v.decode("utf-8", "replace") for k, v in r.headers},
        )
        for r in records
    ]
    return found, ends


def summary(messages: list[Quarantined], names: TopicNames) -> str:
    if not messages:
        return "The quarantine holds nothing new."
    counts = Counter((m.agency(names), m.reason) for m in messages)
    lines = [f"{len(messages)} quarantined messages:"]
    lines += [f"  {n:6d}  {agency:<28} {reason}" for (agency, reason), n in counts.most_common()]
    lines.append("Most recent:")
    for m in messages[-10:]:
        when = m.headers.get(Header.QUARANTINED_AT, "?")
        detail = m.headers.get(Header.DETAIL, "")
        lines.append(f"  offset {m.offset} at {when}: {m.reason} from {m.source_topic} - {detail}")
    return "\n".join(lines)


async def replay(
    settings: Settings,
    messages: list[Quarantined],
    ends: dict[int, int],
    *,
    reason: str | None,
    agency: str | None,
    progress: Callable[[str], None],
) -> int:
    """Publish the chosen messages back to their source topics; remember how far we got."""
    names = TopicNames.from_settings(settings)
    chosen = [
        m
        for m in messages
        if m.source_topic
        and m.replayable
        and (reason is None or m.reason == reason)
        and (agency is None or m.agency(names) == agency)
    ]
    stamp = dt.datetime.now(dt.UTC).isoformat().encode()
    await publish(
        settings,
        (
            Outgoing(
                m.source_topic,
                m.value,
                m.key,
                (
                    (
                        Header.REPLAYED_FROM,
                        f"{names.quarantine}[{m.partition}]@{m.offset}".encode(),
                    ),
                    (Header.REPLAYED_AT, stamp),
                ),
            )
            for m in chosen
        ),
    )
    # Remember how far the replay got, but never past a message its filters left out: a
    # later replay with other filters must still find it. (A note without the message can
    # never be replayed, so it holds nothing back.)
    marks = dict(ends)
    picked = {(m.partition, m.offset) for m in chosen}
    for m in messages:
        if m.replayable and (m.partition, m.offset) not in picked:
            marks[m.partition] = min(marks.get(m.partition, m.offset), m.offset)
    await commit_positions(settings, names.quarantine, replay_group(settings), marks)
    progress(
        f"replayed {len(chosen)} of {len(messages)} quarantined messages to their source topics"
    )
    return len(chosen)
