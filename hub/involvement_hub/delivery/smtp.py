"""SMTP transport over aiosmtplib, secure by default. The only module importing aiosmtplib.

``starttls`` (the default) refuses to send unless the server offers STARTTLS and the
upgrade succeeds with a verified certificate: aiosmtplib on its own upgrades only when the
server advertises it, so a man in the middle who strips the offer would get plain text.
``tls`` is implicit TLS (port 465). ``plain`` sends in clear and exists for the local demo
mailbox; it must be chosen explicitly. TLS 1.2 is the minimum.

Up to ``HUB_SMTP_CONNECTIONS`` connections are kept open and reused, one message at a time
each; a connection is dropped after any failure and opened again when next needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from email.message import Message

import aiosmtplib  # noqa: TID251 - this module is the SMTP seam

from involvement_hub.errors import (
    InsecureTransportError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from involvement_hub.settings import Settings


def tls_context(settings: Settings) -> ssl.SSLContext:
    cafile = str(settings.smtp_ca_file) if settings.smtp_ca_file else None
    context = ssl.create_default_context(cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _untrusted_certificate(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


_CLOSE_WAIT_S = 1.0


class SmtpMailer:
    """A small pool of reusable SMTP connections; ``send`` waits for a free one."""

    def __init__(self, settings: Settings, connections: int | None = None) -> None:
        self._settings = settings
        size = connections if connections is not None else settings.smtp_connections
        # Last in, first out: a connection just used is taken again before an empty slot,
        # so a trickle of mail reuses one connection instead of opening every slot's.
        self._idle: asyncio.Queue[aiosmtplib.SMTP | None] = asyncio.LifoQueue()
        for _ in range(max(size, 1)):
            self._idle.put_nowait(None)  # a free slot, connected on first use
        self._size = max(size, 1)

    async def send(self, message: Message) -> None:
        client = await self._idle.get()
        try:
            client = await self._send(client, message)
        finally:
            self._idle.put_nowait(client)

    async def _send(
        self, client: aiosmtplib.SMTP | None, message: Message
    ) -> aiosmtplib.SMTP | None:
        """Send on ``client`` (connecting if needed); return the client to keep, or None."""
        try:
            if client is None or not client.is_connected:
                client = await self._connect()
            errors, _ = await client.send_message(message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            await _discard(client)
            codes = [r.code for r in exc.recipients]
            if codes and all(400 <= c < 500 for c in codes):
                raise TransientDeliveryError(f"recipient deferred ({codes[0]})") from exc
            raise PermanentDeliveryError(
                f"recipient refused ({codes[0] if codes else '?'})"
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            await _discard(client)
            if 400 <= exc.code < 500:
                raise TransientDeliveryError(f"server said {exc.code}") from exc
            raise PermanentDeliveryError(f"server said {exc.code}") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await _discard(client)
            if _untrusted_certificate(exc):
                # It will not verify on a retry either: a configuration problem (or an
                # attack) for a person to look at.
                raise InsecureTransportError(
                    "the mail server's certificate is not trusted"
                ) from exc
            raise TransientDeliveryError(f"{type(exc).__name__}: connection failed") from exc
        except BaseException:
            _close(client)
            raise
        if errors:
            # Only one recipient per message: any per-recipient error is that one.
            code = next(iter(errors.values())).code
            failure = TransientDeliveryError if 400 <= code < 500 else PermanentDeliveryError
            raise failure(f"recipient refused ({code})")
        return client

    async def _connect(self) -> aiosmtplib.SMTP:
        settings = self._settings
        mode = settings.smtp_security
        client = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            use_tls=mode == "tls",
            start_tls=False,
            tls_context=tls_context(settings) if mode != "plain" else None,
            timeout=settings.smtp_timeout_s,
        )
        await client.connect()
        try:
            if mode == "starttls":
                # connect() with start_tls=False sends no EHLO, and before EHLO no extension
                # is known: without this the check below would refuse every server.
                await client.ehlo()
                if not client.supports_extension("starttls"):
                    raise InsecureTransportError(
                        "server does not offer STARTTLS; refusing to send in clear"
                    )
                await client.starttls()
            if settings.smtp_username:
                await client.login(settings.smtp_username, settings.smtp_password.reveal())
        except Exception:
            # Not yet in the pool, so nothing else would close it: an open socket would leak.
            await _discard(client)
            raise
        except BaseException:
            _close(client)
            raise
        return client

    async def close(self) -> None:
        """Close idle connections (the mailer can be used again afterwards)."""
        for _ in range(self._size):
            client = await self._idle.get()
            if client is not None and client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    client.close()
            self._idle.put_nowait(None)


def _close(client: aiosmtplib.SMTP | None) -> None:
    if client is not None:
        # Closing a broken connection may itself fail; the connection is gone anyway.
        with contextlib.suppress(Exception):
            client.close()


async def _discard(client: aiosmtplib.SMTP | None) -> None:
    """Close a connection the pool will not keep, and wait until its socket is closed.

    A transport closes its socket on a later turn of the event loop (after a TLS upgrade
    fails, asyncio has already asked it to). If the loop stopped first -- a worker shutting
    down, a test ending -- the socket would stay open until garbage collection. The wait
    is bounded: a peer that never answers a TLS close costs at most a second.
    """
    if client is None:
        return
    transport = client.transport
    _close(client)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _CLOSE_WAIT_S
    # Neither asyncio nor aiosmtplib offers a public "socket closed" event to wait on.
    while sock.fileno() != -1 and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.005)


async def plain_send_loop(host: str, port: int, messages: list[Message]) -> float:
    """The benchmark's baseline: one connection, one message after another, nothing else.
    Returns the seconds taken."""
    loop = asyncio.get_running_loop()
    client = aiosmtplib.SMTP(hostname=host, port=port, start_tls=False)
    await client.connect()
    try:
        started = loop.time()
        for message in messages:
            await client.send_message(message)
        return loop.time() - started
    finally:
        await client.quit()
