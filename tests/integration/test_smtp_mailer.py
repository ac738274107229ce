"""The SMTP mailer against real SMTP servers: aiosmtpd in-process, on free ports.

Each server runs in its own thread (aiosmtpd's Controller) and is stopped by its fixture.
STARTTLS uses a throwaway CA from trustme, so the hub's certificate check is exercised for
real: trusted through ``smtp_ca_file``, refused with the system's CAs. Synthetic people only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller  # noqa: TID251 - tests run their own SMTP servers
from aiosmtpd.smtp import SMTP  # noqa: TID251 - to count connections per server
from involvement_hub.core.alerts import Alert
from involvement_hub.delivery.message import build_message
from involvement_hub.delivery.smtp import SmtpMailer
from involvement_hub.errors import (
    DeliveryError,
    InsecureTransportError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from involvement_hub.settings import Secret, Settings
from involvement_hub_devtools.mailbox import RCPT_HEADER, Mailbox, read_mailbox
from involvement_hub_devtools.processes import free_port
from support.alerts import an_alert

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"
MAIL_FROM = "involvement-hub@hub.northshire.example"
NOW = dt.datetime(2026, 11, 3, 15, 0, tzinfo=dt.UTC)


def alert(n: int = 0) -> Alert:
    return an_alert(
        at=NOW,
        alert_id=f"{n:032x}",
        event_key=f"oakfield-primary/oakfield-excl-{n:06d}",
        recipient_id="northshire-social-care/SW-0043",
        recipient_email="jo.placeholder@northshire.example",
        recipient_name="Jo Placeholder",
        case_ref="CM-2026-004711",
        rule_id="rule-07",
        policy_version="2026-11",
    )


def message(n: int = 0) -> Any:
    return build_message(alert(n), MAIL_FROM, NOW)


def settings(port: int, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "smtp_host": HOST,
        "smtp_port": port,
        "smtp_security": "plain",
        "smtp_timeout_s": 5.0,
        "mail_from": MAIL_FROM,
    }
    values.update(overrides)
    return Settings(**values)


class Recorder:
    """An aiosmtpd handler that keeps what it accepts, or answers with a fixed reply."""

    def __init__(self, *, rcpt_reply: str | None = None, data_replies: list[str] | None = None):
        self.rcpt_reply = rcpt_reply
        self.data_replies = list(data_replies or [])
        self.received: list[tuple[list[str], bytes, bool]] = []  # (rcpt_tos, content, tls)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_replies:
            return self.data_replies.pop(0)
        self.received.append((list(envelope.rcpt_tos), envelope.content, session.ssl is not None))
        return "250 Message accepted for delivery"


class CountingController(Controller):  # type: ignore[misc]
    """Counts connections: aiosmtpd builds one SMTP protocol object per connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions: list[SMTP] = []

    def factory(self) -> SMTP:
        session = super().factory()
        self.sessions.append(session)
        return session

    @property
    def connections(self) -> int:
        return len(self.sessions)

    async def wait_all_closed(self) -> bool:
        """True once the server has seen every client connection end (within 5 s)."""
        deadline = time.monotonic() + 5.0
        while any(s.transport is not None for s in self.sessions):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True


StartServer = Callable[..., CountingController]


@pytest.fixture
def smtp_server() -> Iterator[StartServer]:
    """Starts aiosmtpd servers on free ports; stops every one after the test."""
    started: list[CountingController] = []

    def start(handler: Any, **smtp_options: Any) -> CountingController:
        controller = CountingController(handler, hostname=HOST, port=free_port(), **smtp_options)
        controller.start()
        started.append(controller)
        # start() opens one connection of its own to check the server answers.
        controller.sessions.clear()
        return controller

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST).configure_cert(context)
    return context


def open_sockets_to(port: int) -> list[socket.socket]:
    """This process's sockets still open to ``port``, found without turning the event loop:
    a socket whose close waits for a later turn would be missed by any check that awaits."""
    found = []
    for obj in gc.get_objects():
        if isinstance(obj, socket.socket) and obj.fileno() != -1:
            try:
                peer = obj.getpeername()
            except OSError:
                continue
            if isinstance(peer, tuple) and peer[1] == port:
                found.append(obj)
    return found


async def send_with(config: Settings, *messages: Any) -> None:
    mailer = SmtpMailer(config)
    try:
        for msg in messages:
            await mailer.send(msg)
    finally:
        await mailer.close()


async def test_plain_delivery_to_the_mailbox_writes_the_message(tmp_path: Path) -> None:
    folder = tmp_path / "mailbox"
    with Mailbox(folder, host=HOST, port=free_port()) as box:
        await send_with(settings(box.port), message(7))

    (received,) = read_mailbox(folder)
    assert received["To"] == "jo.placeholder@northshire.example"
    assert received[RCPT_HEADER] == "jo.placeholder@northshire.example"
    assert received["Message-ID"] == f"<{alert(7).alert_id}@hub.northshire.example>"


async def test_starttls_with_the_deployment_ca_delivers_over_tls(
    smtp_server: StartServer, server_tls: ssl.SSLContext, ca_file: Path
) -> None:
    handler = Recorder()
    server = smtp_server(handler, tls_context=server_tls, require_starttls=True)

    await send_with(
        settings(server.port, smtp_security="starttls", smtp_ca_file=ca_file), message()
    )

    assert len(handler.received) == 1
    rcpt_tos, content, over_tls = handler.received[0]
    assert rcpt_tos == ["jo.placeholder@northshire.example"]
    assert over_tls
    assert f"<{alert().alert_id}@hub.northshire.example>".encode() in content


async def test_starttls_refuses_a_certificate_the_system_cas_do_not_trust(
    smtp_server: StartServer, server_tls: ssl.SSLContext
) -> None:
    handler = Recorder()
    server = smtp_server(handler, tls_context=server_tls, require_starttls=True)

    with pytest.raises(DeliveryError) as caught:
        await send_with(settings(server.port, smtp_security="starttls"), message())

    assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)
    assert handler.received == []
    # Closed when the error is raised, not on some later turn of the loop (which a worker
    # stopping, or a test ending, never takes): a socket left to the garbage collector.
    assert open_sockets_to(server.port) == []


async def test_an_untrusted_certificate_is_an_insecure_transport(
    smtp_server: StartServer, server_tls: ssl.SSLContext
) -> None:
    server = smtp_server(Recorder(), tls_context=server_tls, require_starttls=True)

    with pytest.raises(InsecureTransportError):
        await send_with(settings(server.port, smtp_security="starttls"), message())


async def test_starttls_mode_refuses_a_server_that_does_not_offer_it(
    smtp_server: StartServer,
) -> None:
    handler = Recorder()
    server = smtp_server(handler)

    with pytest.raises(InsecureTransportError, match="STARTTLS"):
        await send_with(settings(server.port, smtp_security="starttls"), message())

    assert handler.received == []
    assert open_sockets_to(server.port) == []


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("421 4.3.2 service shutting down", TransientDeliveryError),
        ("451 4.3.0 local error in processing", TransientDeliveryError),
        ("550 5.1.1 mailbox unavailable", PermanentDeliveryError),
        ("554 5.7.1 rejected by policy", PermanentDeliveryError),
    ],
)
async def test_a_reply_to_data_is_classified_by_its_code(
    smtp_server: StartServer, reply: str, error: type[DeliveryError]
) -> None:
    handler = Recorder(data_replies=[reply])
    server = smtp_server(handler)

    with pytest.raises(error, match=reply[:3]):
        await send_with(settings(server.port), message())

    assert handler.received == []


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("450 4.2.1 mailbox busy, try later", TransientDeliveryError),
        ("550 5.1.1 mailbox unavailable", PermanentDeliveryError),
    ],
)
async def test_a_refused_recipient_is_classified_by_its_code(
    smtp_server: StartServer, reply: str, error: type[DeliveryError]
) -> None:
    handler = Recorder(rcpt_reply=reply)
    server = smtp_server(handler)

    with pytest.raises(error, match=reply[:3]):
        await send_with(settings(server.port), message())

    assert handler.received == []


async def test_a_refused_connection_is_transient() -> None:
    with pytest.raises(TransientDeliveryError):
        await send_with(settings(free_port()), message())


async def test_one_connection_carries_many_messages(smtp_server: StartServer) -> None:
    handler = Recorder()
    server = smtp_server(handler)

    await send_with(settings(server.port), *(message(n) for n in range(5)))

    assert len(handler.received) == 5
    assert server.connections == 1
    assert await server.wait_all_closed()  # close() ends it


async def test_the_mailer_reconnects_after_a_failure(smtp_server: StartServer) -> None:
    handler = Recorder(data_replies=["451 4.3.0 try again"])
    server = smtp_server(handler)
    mailer = SmtpMailer(settings(server.port))
    try:
        with pytest.raises(TransientDeliveryError):
            await mailer.send(message(1))
        await mailer.send(message(1))
    finally:
        await mailer.close()

    assert len(handler.received) == 1
    assert server.connections == 2


@pytest.mark.parametrize(
    "config",
    [
        # Plain aiosmtpd offers no AUTH: login fails after the connection is open.
        {"smtp_username": "hub", "smtp_password": Secret("not-a-real-password")},
        # STARTTLS offered but the certificate is not trusted: the upgrade fails.
        {"smtp_security": "starttls"},
    ],
    ids=["login-refused", "tls-upgrade-refused"],
)
async def test_a_connection_that_fails_to_set_up_is_closed(
    smtp_server: StartServer, server_tls: ssl.SSLContext, config: dict[str, Any]
) -> None:
    handler = Recorder()
    server = smtp_server(handler, tls_context=server_tls)
    mailer = SmtpMailer(settings(server.port, **config))
    try:
        with pytest.raises(DeliveryError):
            await mailer.send(message())
        assert open_sockets_to(server.port) == []
        assert await server.wait_all_closed(), "the mailer left a connection open"
    finally:
        await mailer.close()

    assert handler.received == []
