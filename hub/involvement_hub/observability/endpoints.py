"""The worker's HTTP endpoints: ``/metrics``, ``/healthz`` (live) and ``/readyz`` (ready).

Served by aiohttp on the worker's own event loop, on ``HUB_METRICS_HOST:HUB_METRICS_PORT``.
Faust's own web server stays disabled: it exposes table contents, which here are
personal data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)


def endpoints_app(
    registry: CollectorRegistry,
    *,
    live: Callable[[], bool],
    ready: Callable[[], bool],
    observe: Callable[[], None] | None = None,
) -> web.Application:
    """``observe`` brings the gauges that are measured rather than counted (lag, recovery,
    standby copies) up to date before each scrape."""

    async def metrics(_: web.Request) -> web.Response:
        if observe is not None:
            try:
                observe()
            except Exception:
                # The counters are still worth serving; the gauges keep their last values.
                log.exception("could not observe lag and recovery before a scrape")
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    def probe(check: Callable[[], bool], name: str) -> Callable[[web.Request], object]:
        async def handler(_: web.Request) -> web.Response:
            ok = check()
            return web.Response(status=200 if ok else 503, text=f"{name} {'ok' if ok else 'no'}\n")

        return handler

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", probe(live, "live"))  # type: ignore[arg-type]
    app.router.add_get("/readyz", probe(ready, "ready"))  # type: ignore[arg-type]
    return app


async def start_endpoints(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner
