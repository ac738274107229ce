"""How every Kafka client of the hub connects: bootstrap servers, TLS and SASL.

Agencies' write access is enforced by Kafka ACLs on authenticated principals, so in
production the hub connects with TLS and SASL too. One function builds aiokafka's options
from the settings; the streaming package builds Faust's credentials from the same settings.
"""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka import codec  # noqa: TID251 - this package is the Kafka seam

from involvement_hub.errors import ConfigError
from involvement_hub.settings import Settings


def ssl_context(settings: Settings) -> ssl.SSLContext:
    cafile = str(settings.kafka_ca_file) if settings.kafka_ca_file else None
    context = ssl.create_default_context(cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for aiokafka's producer, consumer and admin client."""
    options: dict[str, Any] = {"bootstrap_servers": settings.bootstrap}
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return options
    options["security_protocol"] = protocol
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl_context(settings)
    if protocol.startswith("SASL_"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_username
        options["sasl_plain_password"] = settings.kafka_password.reveal()
    return options


def agency_options(settings: Settings) -> dict[str, Any]:
    """The same, for the agency publisher (which takes the bootstrap servers itself)."""
    options = client_options(settings)
    del options["bootstrap_servers"]
    return options


def check_codecs() -> None:
    """Refuse to start without every compression codec Kafka has.

    A producer chooses its batches' codec (a Java client's ``compression.type``); a consumer
    that cannot decompress one fails *inside its fetcher*, outside any handler, and so on
    every restart. aiokafka decompresses snappy, lz4 and zstd with cramjam, an optional
    dependency (``aiokafka[lz4,snappy,zstd]``); gzip is built in.
    """
    missing = [
        name
        for name, present in (
            ("gzip", codec.has_gzip()),
            ("snappy", codec.has_snappy()),
            ("lz4", codec.has_lz4()),
            ("zstd", codec.has_zstd()),
        )
        if not present
    ]
    if missing:
        raise ConfigError(
            f"no {', '.join(missing)} codec: install aiokafka[lz4,snappy,zstd] (cramjam), or "
            "the worker crashes on the first batch an agency compresses with it"
        )
