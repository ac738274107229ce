"""Running one hub worker: check the configuration, create topics, start Faust."""

from __future__ import annotations

import asyncio
import logging

import faust  # noqa: TID251 - the streaming package is the faust seam

from involvement_hub.config import load_config
from involvement_hub.delivery.smtp import SmtpMailer
from involvement_hub.kafka_admin import ensure_topics
from involvement_hub.metrics import create_metrics
from involvement_hub.settings import Settings
from involvement_hub.streaming.app import HubApp

log = logging.getLogger(__name__)


def run_worker(settings: Settings) -> None:
    """Run until stopped (SIGINT/SIGTERM). Configuration errors raise before anything starts."""
    config = load_config(settings)
    if settings.pseudonym_key.reveal() == "dev-only-pseudonym-key":
        log.warning("HUB_PSEUDONYM_KEY is the development default; set a secret in production")
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    created = loop.run_until_complete(
        ensure_topics(settings, replication_factor=settings.replication_factor)
    )
    if created:
        log.info("created %d topics", len(created))
    hub = HubApp(settings, config, create_metrics(), SmtpMailer(settings))
    worker = faust.Worker(
        hub.app,
        loop=loop,
        loglevel=settings.log_level,
        quiet=True,
        redirect_stdouts=False,
    )
    worker.execute_from_commandline()
