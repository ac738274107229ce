"""A broker outage in the log as three kinds of line: when it starts, while it lasts, when it ends.

While Kafka is unreachable, aiokafka logs every failed connection, metadata refresh, fetch
and coordinator lookup: about 3,300 ERROR lines for a 30-second outage of one broker,
measured, which bury everything else in the log. :class:`OutageLog` is a logging filter
for the worker's handlers: the first connection error is shown (as the start of the
outage), the rest are counted, not shown, with a progress line every ``every_s``; once no
connection error has been seen for ``quiet_s``, :meth:`OutageLog.tick` writes the end.
Nothing but these connection errors is held back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

# What aiokafka says, in its own words, when it cannot reach a broker.
_CONNECTION_TROUBLE = (
    "Unable connect to node",
    "Unable to update metadata",
    "NodeNotReadyError",
    "KafkaConnectionError",
    "Connect call failed",
    "GroupCoordinatorNotAvailableError",
    "Marking the coordinator dead",
    "Coordinator Request failed",
    "Heartbeat send request failed",
    "Error sending HeartbeatRequest",
    "RequestTimedOutError",
)
_SOURCES = ("aiokafka", "faust.transport")

log = logging.getLogger(__name__)


class OutageLog(logging.Filter):
    def __init__(
        self,
        *,
        every_s: float = 30.0,
        quiet_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.every_s = every_s
        self.quiet_s = quiet_s
        self.clock = clock
        self.started: float | None = None  # when the outage began
        self.last_error = 0.0
        self.last_progress = 0.0
        self.hidden = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith(_SOURCES):
            return True
        text = record.getMessage()
        if not any(marker in text for marker in _CONNECTION_TROUBLE):
            return True
        now = self.clock()
        self.last_error = now
        if self.started is None:
            self.started = self.last_progress = now
            self.hidden = 0
            record.msg = "Kafka unreachable: %s (further connection errors summarised)"
            record.args = (text.strip(),)
            return True
        self.hidden += 1
        if now - self.last_progress >= self.every_s:
            self.last_progress = now
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = "Kafka still unreachable after %.0f s (%d connection errors not shown)"
            record.args = (now - self.started, self.hidden)
            return True
        return False

    def tick(self) -> None:
        """Call every few seconds: ends the outage once the errors have stopped."""
        if self.started is None:
            return
        now = self.clock()
        if now - self.last_error < self.quiet_s:
            return
        lasted = self.last_error - self.started
        log.warning(
            "Kafka reachable again: connection errors stopped after %.0f s (%d not shown)",
            lasted,
            self.hidden,
        )
        self.started = None
        self.hidden = 0

    def install(self, logger: logging.Logger) -> None:
        """Filter every handler of ``logger`` (the root logger, once Faust has set it up)."""
        for handler in logger.handlers:
            handler.addFilter(self)
