"""Fixtures shared by the test tiers: a real Kafka broker, a real SMTP server, a worker.

The broker comes from, in order:

1. ``HUB_TEST_BOOTSTRAP`` -- a broker you already run (``host:port``);
2. testcontainers' Kafka, when a Docker engine answers;
3. the project's own local broker (``hub kafka``), on ports of its own (19192/19193, or
   ``HUB_TEST_KAFKA_PORT`` and the port after it) so a running ``make demo`` is not
   disturbed; it is stopped again if the tests started it.

Under ``CI=true`` a broker that cannot be had is a test *failure*; elsewhere the tests that
need it are skipped with the reason. Each test gets its own topic prefix and consumer
group (app id), so tests never see each other's messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from involvement_hub.errors import LocalKafkaError
from involvement_hub.kafka.admin import delete_topics
from involvement_hub.settings import Settings
from involvement_hub_devtools.kafka_probe import broker_answers
from involvement_hub_devtools.localkafka import LocalKafka
from involvement_hub_devtools.mailbox import Mailbox

REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() == "true"
TEST_KAFKA_PORT = int(os.environ.get("HUB_TEST_KAFKA_PORT", "19192"))


def unavailable(why: str) -> None:
    """A missing real component: a failure in CI, a skip on a developer's machine."""
    if IN_CI:
        pytest.fail(f"{why} (CI=true: a missing broker or server fails the run)")
    pytest.skip(why)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _docker_engine_answers() -> bool:
    """Whether a Docker engine answers ``/_ping`` (a client without an engine does not)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: Any = host[len("unix://") :]
        elif host.startswith("tcp://"):
            name, _, port = host[len("tcp://") :].partition(":")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            address = (name, int(port or 2375))
        else:
            return False
        with sock:
            sock.settimeout(3)
            sock.connect(address)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            status = sock.recv(64)
            return status.startswith(b"HTTP/1.") and b" 200 " in status
    except (OSError, ValueError):
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    given = os.environ.get("HUB_TEST_BOOTSTRAP")
    if given:
        if not broker_answers(given, timeout=10):
            unavailable(f"HUB_TEST_BOOTSTRAP={given} does not answer as a Kafka broker")
        yield given
        return
    if _docker_engine_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    settings = Settings(
        local_kafka_port=TEST_KAFKA_PORT,
        local_kafka_controller_port=TEST_KAFKA_PORT + 1,
        state_dir=REPO / ".hub",
    )
    local = LocalKafka(settings)
    if not local.status().running:
        # The test broker is the tests' own: start it empty, so topics left by earlier runs
        # (thousands, on a developer's machine) do not slow every test down.
        shutil.rmtree(local.home, ignore_errors=True)
    try:
        started = local.start()
    except LocalKafkaError as exc:
        unavailable(f"no Kafka broker: {exc}")
        return
    try:
        yield settings.bootstrap
    finally:
        if started:
            local.stop()


@pytest.fixture
def test_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def hub_settings(kafka_bootstrap: str, tmp_path: Path, test_id: str) -> Iterator[Settings]:
    """Settings for one test: its own topics, consumer group, state folder and ports.

    The test's topics (and its worker's changelogs) are deleted afterwards."""
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"t{test_id}.",
        app_id=f"hub-test-{test_id}",
        partitions=2,
        state_dir=tmp_path / "state",
        policy_file=REPO / "governance" / "policy.toml",
        subscriptions_dir=REPO / "subscriptions",
        metrics_port=free_port(),
        mailbox_port=free_port(),
        smtp_host="127.0.0.1",
        smtp_security="plain",
        log_level="warning",
    )
    yield settings
    asyncio.run(delete_topics(settings))


@pytest.fixture
def mailbox(hub_settings: Settings) -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd, plain) on the test's mailbox port."""
    with Mailbox(hub_settings.mailbox_dir, port=hub_settings.mailbox_port) as box:
        yield box


class WorkerProcess:
    """A ``hub worker`` started as a user would start it, with the test's settings."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, **env_overrides: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        env.update(self.settings.as_environment())
        env["HUB_SMTP_PORT"] = str(self.settings.mailbox_port)
        env.update(env_overrides)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "involvement_hub", "worker"],
                env=env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_ready()

    def wait_ready(self, timeout: float = 120.0) -> None:
        url = f"http://127.0.0.1:{self.settings.metrics_port}/readyz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"worker exited ({self.process.returncode}):\n{self.log_tail()}")
            with (
                contextlib.suppress(urllib.error.URLError, OSError),
                urllib.request.urlopen(url, timeout=2) as reply,
            ):
                if reply.status == 200:
                    return
            time.sleep(0.3)
        pytest.fail(f"worker not ready in {timeout:.0f}s:\n{self.log_tail()}")

    def probe(self, path: str) -> int:
        """The HTTP status of one of the worker's endpoints."""
        url = f"http://127.0.0.1:{self.settings.metrics_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                return int(reply.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.settings.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as reply:
            return str(reply.read().decode("utf-8"))

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@pytest.fixture
def worker(hub_settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    """A worker process (not yet started: call ``start()``); always stopped afterwards."""
    process = WorkerProcess(hub_settings, tmp_path / "worker.log")
    try:
        yield process
    finally:
        process.stop()


def pytest_collection_modifyitems(config: Any, items: list[pytest.Item]) -> None:
    """Mark every test by its tier folder, so ``-m`` selections need no per-file marks."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "integration" in parts:
            item.add_marker(pytest.mark.integration)
        elif "e2e" in parts:
            item.add_marker(pytest.mark.e2e)
