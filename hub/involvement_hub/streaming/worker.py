"""Running one hub worker: check the configuration, create topics, start Faust."""

from __future__ import annotations

import asyncio
import logging

import faust  # noqa: TID251 - the streaming package is the faust seam
from prometheus_client import disable_created_metrics

from involvement_hub.config import load_config
from involvement_hub.delivery.smtp import SmtpMailer
from involvement_hub.errors import HubError
from involvement_hub.kafka.admin import (
    changelog_specs,
    ensure_changelogs,
    ensure_topics,
    leave_group,
    topic_specs,
    wait_for_topics,
)
from involvement_hub.kafka.client import check_codecs
from involvement_hub.observability.endpoints import endpoints_app, start_endpoints
from involvement_hub.observability.metrics import create_metrics
from involvement_hub.settings import Settings
from involvement_hub.streaming.app import HubApp
from involvement_hub.streaming.faust_app import group_instance_id
from involvement_hub.streaming.outage_log import OutageLog

log = logging.getLogger(__name__)
LEAVE_TIMEOUT_S = 10.0


class ServiceWorker(faust.Worker):
    """A Faust worker without the terminal spinner.

    At log levels above INFO, Faust attaches a spinner handler and lowers the root logger to
    DEBUG so that every library debug message reaches it: each Kafka send then builds a log
    record only to drop it, which cost 5-8% of routing time in profiles. The hub runs as a
    service, not in a terminal, so the root logger keeps the configured level.
    """

    settings: Settings | None = None
    outage: OutageLog | None = None

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None
        if self.outage is not None:
            self.outage.install(logger)

    def _shutdown_loop(self) -> None:
        # Stopped on purpose (the consumer has committed and stopped by now): leave the
        # group rather than hold the partitions for a session timeout as a static member.
        if self.settings is not None:
            settings = self.settings
            leave = leave_group(settings, settings.app_id, group_instance_id(settings))
            try:
                self.loop.run_until_complete(asyncio.wait_for(leave, LEAVE_TIMEOUT_S))
                log.info("left consumer group %s", settings.app_id)
            except (HubError, TimeoutError) as exc:
                log.warning("%s; its partitions move after the session timeout", exc)
        super()._shutdown_loop()


def run_worker(settings: Settings) -> None:
    """Run until stopped (SIGINT/SIGTERM). Configuration errors raise before anything starts."""
    config = load_config(settings)
    check_codecs()
    if settings.pseudonym_key.reveal() == "dev-only-pseudonym-key":
        log.warning("HUB_PSEUDONYM_KEY is the development default; set a secret in production")
    # Each counter would otherwise expose a *_created series too, doubling the series count.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    created = loop.run_until_complete(
        ensure_topics(settings, replication_factor=settings.replication_factor)
    )
    created += loop.run_until_complete(ensure_changelogs(settings))
    if created:
        log.info("created %d topics", len(created))
    # Every topic must be in the brokers' metadata before Faust starts, or it ignores it.
    expected = {s.name: s.partitions for s in topic_specs(settings)} | changelog_specs(settings)
    loop.run_until_complete(wait_for_topics(settings, expected, progress=log.info))
    outage = OutageLog()
    hub = HubApp(settings, config, create_metrics(), SmtpMailer(settings), outage=outage)
    hub.seek_fully_after_rebalances()
    if settings.metrics_port:
        # Served from the start, before Faust: during a long table recovery /readyz says
        # "not yet" and /metrics shows the recovery's progress, rather than not answering.
        app = endpoints_app(
            hub.metrics.registry,
            live=hub.health.live,
            ready=hub.health.ready,
            observe=hub.health.observe,
        )
        loop.run_until_complete(start_endpoints(app, settings.metrics_host, settings.metrics_port))
        log.info(
            "metrics and health on http://%s:%s/", settings.metrics_host, settings.metrics_port
        )
    worker = ServiceWorker(
        hub.app,
        loop=loop,
        loglevel=settings.log_level,
        quiet=True,
        redirect_stdouts=False,
    )
    worker.settings = settings
    worker.outage = outage
    worker.execute_from_commandline()
