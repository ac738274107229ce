"""The mailer seam: what delivery needs from a mail transport, and an in-memory twin.

The real transport is :class:`involvement_hub.delivery.smtp.SmtpMailer`; unit tests use
:class:`MemoryMailer`, which can be told to fail, to exercise retry and escalation without
a server. Integration tests always use a real SMTP server.
"""

from __future__ import annotations

from collections import deque
from email.message import Message
from typing import Protocol

from involvement_hub.errors import DeliveryError


class Mailer(Protocol):
    async def send(self, message: Message) -> None:
        """Hand one message to the mail server; return only after its 250.

        Raises :class:`TransientDeliveryError` or :class:`PermanentDeliveryError`.
        """

    async def close(self) -> None:
        """Release connections; the mailer may be used again afterwards."""


class MemoryMailer:
    """Keeps sent messages in ``sent``; raises queued ``failures`` first, one per send."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.failures: deque[DeliveryError] = deque()

    async def send(self, message: Message) -> None:
        if self.failures:
            raise self.failures.popleft()
        self.sent.append(message)

    async def close(self) -> None:
        return None
