"""Fixtures shared by the test tiers: a real Kafka broker, a real SMTP server, a worker.

The helpers behind them, and every other helper the tiers share, are in ``support``. Each
test gets its own topic prefix and consumer group (app id), so tests never see each other's
messages.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from involvement_hub.kafka.admin import delete_topics
from involvement_hub.settings import Settings
from involvement_hub_devtools.mailbox import Mailbox
from support.broker import run_broker
from support.worker import WorkerProcess, isolated_settings


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    with run_broker() as bootstrap:
        yield bootstrap


@pytest.fixture
def test_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def hub_settings(kafka_bootstrap: str, tmp_path: Path, test_id: str) -> Iterator[Settings]:
    """Settings for one test. Its topics (and its worker's changelogs) are deleted after."""
    settings = isolated_settings(kafka_bootstrap, tmp_path, test_id)
    yield settings
    asyncio.run(delete_topics(settings))


@pytest.fixture
def mailbox(hub_settings: Settings) -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd, plain) on the test's mailbox port."""
    with Mailbox(hub_settings.mailbox_dir, port=hub_settings.mailbox_port) as box:
        yield box


@pytest.fixture
def worker(hub_settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    """A worker process (not yet started: call ``start()``); always stopped afterwards."""
    process = WorkerProcess(hub_settings, tmp_path / "worker.log")
    try:
        yield process
    finally:
        process.stop()


# The longest modules first: with several pytest processes (``make test``), the suite takes
# as long as its busiest process, and a long test handed out last makes the tail.
LONGEST_FIRST = ("test_chaos.py", "test_rebalance.py", "test_demo_path.py", "test_poison.py")


def pytest_collection_modifyitems(config: Any, items: list[pytest.Item]) -> None:
    """Mark every test by its tier folder, so ``-m`` selections need no per-file marks;
    hand the longest modules out first (a stable sort: the rest keep their order)."""
    rank = {name: n for n, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(Path(str(item.fspath)).name, len(rank)))
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "integration" in parts:
            item.add_marker(pytest.mark.integration)
        elif "e2e" in parts:
            item.add_marker(pytest.mark.e2e)
