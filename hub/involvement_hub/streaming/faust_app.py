"""The hub's Faust application and everything it sets on Faust itself, in one place.

``create_app`` holds the Faust settings every Faust app of the hub runs with (the worker's,
and the benchmark's bare stages, which must be measured under the same ones);
``flush_fully`` and ``as_current`` mend or use Faust behaviour the hub depends on.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import socket
import weakref
from collections.abc import Iterator
from typing import Any

import faust  # noqa: TID251 - the streaming package is the faust seam
import faust.streams  # noqa: TID251

from involvement_hub.kafka.client import ssl_context
from involvement_hub.limits import PRODUCE_LIMIT_BYTES
from involvement_hub.settings import Settings


def create_app(s: Settings, *, store: str | None = None) -> faust.App:
    """The Faust app for ``s.app_id``, with the hub's Faust settings (``store``: the
    settings' own unless given)."""
    # One folder per application id: two hubs (or a bench and a hub) on one machine must
    # never read each other's RocksDB tables as their own.
    datadir = s.state_dir / "worker" / s.app_id
    datadir.mkdir(parents=True, exist_ok=True)
    return faust.App(
        s.app_id,
        broker=f"kafka://{s.bootstrap}",
        broker_credentials=faust_credentials(s),
        store=store or s.store,
        datadir=str(datadir),
        processing_guarantee="at_least_once",
        topic_partitions=s.partitions,
        topic_replication_factor=s.replication_factor,
        # Faust's web server would expose table contents (personal data); the worker's
        # own endpoints serve metrics and health instead.
        web_enabled=False,
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
        # Static membership: a worker restarted after a crash rejoins under the same id
        # and takes its partitions back at once, instead of waiting for the dead
        # member's session to time out before anything is processed.
        consumer_group_instance_id=group_instance_id(s),
        # A worker that is not restarted (a lost node) keeps its partitions until its
        # session times out: Faust's 60 s is most of a failover, so the hub's is shorter.
        broker_session_timeout=s.session_timeout_s,
        broker_heartbeat_interval=s.heartbeat_interval_s,
        # Each table partition kept warm on another worker, which takes it over after
        # reading only what its copy lacks (RocksDB keeps the copy's offset).
        table_standby_replicas=s.standby_replicas,
        producer_acks=-1,
        # A few milliseconds of lingering lets the producer send changelog and topic
        # messages in batches instead of one request (and syscall) each.
        producer_linger_ms=5,
        # Faust's default (1,000,000) is below the hub's own limit; limits.check_fits
        # keeps every message under this one, so the producer never refuses one.
        producer_max_request_size=PRODUCE_LIMIT_BYTES,
        stream_wait_empty=False,
    )


async def flush_fully(buffer: Any) -> None:
    """Faust's producer buffer flush, made to keep its word.

    Before committing offsets Faust flushes its producer, but ``ProducerBuffer.flush``
    (faust-streaming 0.15) returns after any 0.1 s in which no message left the buffer,
    even with messages still in it: on a SIGTERM the offsets of events whose outputs were
    never handed to Kafka were committed, and the outputs cancelled (measured by
    ``hub chaos``: records lost on restarts). This waits until the buffer is empty; once
    the buffer is stopping (its drain task ends), the rest is handed over here, in order.
    """
    while buffer.size:
        if buffer.should_stop:
            # Let the drain task finish the message it may hold, then take over.
            buffer.message_sent.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(buffer.message_sent.wait(), timeout=1.0)
            while buffer.size:
                await buffer._send_pending(buffer.pending.get_nowait())
            return
        buffer.message_sent.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(buffer.message_sent.wait(), timeout=0.1)


@contextlib.contextmanager
def as_current(event: Any) -> Iterator[None]:
    """Make ``event`` Faust's current event while its table writes are made.

    Faust files a table write under the partition of the current event. In a batch, the
    stream's current event is the batch's last one; each alert's writes must go under its
    own partition instead. (This sets faust.streams' context variable, which is private:
    faust-streaming is pinned below 0.16 and tests/integration exercise it.)
    """
    token = faust.streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust.streams._current_event.reset(token)


def group_instance_id(settings: Settings) -> str:
    """This worker's static membership id: ``HUB_INSTANCE_ID``, else host name and app id."""
    return settings.instance_id or f"{socket.gethostname()}-{settings.app_id}"


def version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def faust_credentials(settings: Settings) -> Any:
    """Faust's form of the connection security every other client gets from kafka.client."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = ssl_context(settings) if protocol in ("SSL", "SASL_SSL") else None
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    return faust.SASLCredentials(
        username=settings.kafka_username,
        password=settings.kafka_password.reveal(),
        ssl_context=context,
        mechanism=settings.kafka_sasl_mechanism,
    )
