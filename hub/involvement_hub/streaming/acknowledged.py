"""Delivery's durability: tables and topic sends whose acknowledgement by the broker the
delivery service waits for (``delivery.service.Durable``), retrying a write or send the
producer failed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

import faust  # noqa: TID251 - the streaming package is the faust seam

from involvement_hub.core.alerts import Alert
from involvement_hub.core.messages import AlertTopicMessage
from involvement_hub.kafka import wire

log = logging.getLogger(__name__)


class TrackedTable(faust.Table[Any, Any]):
    """A table that keeps the changelog send of each key's latest write, to be awaited.

    A table write only queues its changelog message; delivery must know when the broker has
    acknowledged an outbox entry before it talks to the mail server.
    """

    # Past this many writes nobody awaited (held alerts, bookkeeping), the settled ones go.
    _KEEP = 4096

    def __post_init__(self) -> None:
        super().__post_init__()
        self.latest: dict[Any, Any] = {}

    def send_changelog(self, partition: Any, key: Any, value: Any, *args: Any, **kw: Any) -> Any:
        future = super().send_changelog(partition, key, value, *args, **kw)
        if len(self.latest) >= self._KEEP:
            self.latest = {k: f for k, f in self.latest.items() if not f.done()}
        self.latest[key] = future
        return future


class Acknowledged:
    """Delivery's :class:`~involvement_hub.delivery.service.Durable` on Kafka."""

    # A failed changelog send is written again after this many seconds, doubling up to the cap.
    RETRY_S = (0.5, 30.0)

    def __init__(self, tables: list[TrackedTable], alerts_topic: Any) -> None:
        self._tables = tables
        self._alerts_topic = alerts_topic

    async def recorded(self, key: str) -> None:
        for table in self._tables:

            def write_again(failed: Any, table: TrackedTable = table) -> Any:
                # Unless a newer write of the key came meanwhile (then wait for that one).
                if table.latest.get(key) is failed:
                    raw = table.get(key)
                    if raw is None:
                        del table[key]
                    else:
                        table[key] = raw
                return table.latest.get(key)

            done = await self._until_acknowledged(
                table.latest.get(key), write_again, "outbox record"
            )
            if done is not None and table.latest.get(key) is done:
                del table.latest[key]

    async def queued(self, alerts: Sequence[Alert]) -> None:
        for alert in alerts:

            def send(_failed: Any = None, alert: Alert = alert) -> Any:
                return self._alerts_topic.send_soon(
                    key=alert.recipient_id.encode(), value=wire.dumps(alert, AlertTopicMessage)
                )

            await self._until_acknowledged(send(), send, "derived alert")

    async def _until_acknowledged(self, future: Any, again: Callable[[Any], Any], what: str) -> Any:
        """Await ``future``; while Kafka refuses it, wait (doubling) and send ``again``.
        Nothing is sent by mail until the record is safe. Returns the future that was
        acknowledged (None if there was nothing to wait for)."""
        delay = self.RETRY_S[0]
        while future is not None:
            try:
                await future
                return future
            except Exception as exc:  # aiokafka raises several types for a failed send
                log.warning(
                    "%s not acknowledged (%s); sending it again in %.1f s",
                    what,
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.RETRY_S[1])
                future = again(future)
        return None
