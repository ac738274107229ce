"""The worker's HTTP endpoints (endpoints.py), served in-process."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer
from involvement_hub.observability.endpoints import endpoints_app
from prometheus_client import CollectorRegistry, Gauge


async def test_measured_gauges_are_brought_up_to_date_before_each_scrape() -> None:
    registry = CollectorRegistry()
    lag = Gauge("hub_consumer_lag_messages", "lag", registry=registry)
    seen = iter([7, 3])
    app = endpoints_app(
        registry, live=lambda: True, ready=lambda: False, observe=lambda: lag.set(next(seen))
    )
    async with TestClient(TestServer(app)) as client:
        first = await (await client.get("/metrics")).text()
        second = await (await client.get("/metrics")).text()
        ready = await client.get("/readyz")
    assert "hub_consumer_lag_messages 7.0" in first
    assert "hub_consumer_lag_messages 3.0" in second
    assert ready.status == 503


async def test_a_failing_observation_still_serves_the_metrics() -> None:
    registry = CollectorRegistry()
    Gauge("hub_worker_ready", "ready", registry=registry).set(1)

    def fail() -> None:
        raise RuntimeError("rebalancing")

    app = endpoints_app(registry, live=lambda: True, ready=lambda: True, observe=fail)
    async with TestClient(TestServer(app)) as client:
        reply = await client.get("/metrics")
        assert reply.status == 200
        assert "hub_worker_ready 1.0" in await reply.text()
