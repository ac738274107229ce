"""The local mailbox: a real SMTP server (aiosmtpd) that keeps each message as a file.

The demo and the tests send alerts to it through the same SMTP client production uses.
Each accepted message is written atomically to ``<folder>/<received-ms>-<n>.eml``, with the
envelope recipients in an ``X-Mailbox-Rcpt-To`` header added on top, and only then
acknowledged with 250: a message the hub believes delivered is always on disk. A mailbox
can also refuse some recipients with 550 at RCPT (the fault harness's "mail server refuses
one practitioner"). This is the only module that imports aiosmtpd.
"""

from __future__ import annotations

import itertools
import os
import ssl
import time
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller  # noqa: TID251 - this module is the mailbox seam

RCPT_HEADER = "X-Mailbox-Rcpt-To"


class MailboxHandler:
    """aiosmtpd handler writing every message to ``folder``; ``refuse``d addresses get 550."""

    def __init__(self, folder: Path, refuse: frozenset[str] = frozenset()) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.refuse = frozenset(a.lower() for a in refuse)
        self._counter = itertools.count()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        # A permanent refusal of one mailbox, as a real server says "no such user": the
        # client must escalate rather than retry.
        if address.lower() in self.refuse:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        stamp = time.time_ns() // 1_000_000
        name = f"{stamp}-{os.getpid()}-{next(self._counter):06d}.eml"
        header = f"{RCPT_HEADER}: {', '.join(envelope.rcpt_tos)}\r\n".encode()
        content = envelope.original_content or envelope.content
        tmp = self.folder / f".{name}.tmp"
        tmp.write_bytes(header + content)
        os.replace(tmp, self.folder / name)
        return "250 Message accepted for delivery"


class DiscardHandler:
    """Accepts and counts messages without keeping them: a sink for benchmarks."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 Message accepted"


class Mailbox:
    """A running local SMTP server; use as a context manager or call start/stop.

    With ``tls_context`` it offers STARTTLS (and can require it); without, it is plain.
    """

    def __init__(
        self,
        folder: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 2525,
        tls_context: ssl.SSLContext | None = None,
        require_starttls: bool = False,
        discard: bool = False,
        refuse: frozenset[str] = frozenset(),
    ) -> None:
        self.folder = folder
        self.handler: MailboxHandler | DiscardHandler = (
            DiscardHandler() if discard else MailboxHandler(folder, refuse)
        )
        self._controller = Controller(
            self.handler,
            hostname=host,
            port=port,
            tls_context=tls_context,
            require_starttls=require_starttls,
            # The hub's alerts are small; refuse anything large rather than fill the disk.
            data_size_limit=1024 * 1024,
        )

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> Mailbox:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def read_mailbox(folder: Path) -> list[EmailMessage]:
    """Every message in the folder, oldest first."""
    return list(_iter_messages(folder))


def _iter_messages(folder: Path) -> Iterator[EmailMessage]:
    if not folder.is_dir():
        return
    parser = BytesParser(policy=policy.default)
    for path in sorted(folder.glob("*.eml")):
        message = parser.parsebytes(path.read_bytes())
        assert isinstance(message, EmailMessage)
        yield message
