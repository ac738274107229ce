"""The run's Kafka broker, from, in order:

1. ``HUB_TEST_BOOTSTRAP`` -- a broker you already run (``host:port``);
2. testcontainers' Kafka, when a Docker engine answers;
3. the project's own local broker (``hub kafka``), on ports of its own (19192/19193, or
   ``HUB_TEST_KAFKA_PORT`` and the port after it) so a running ``make demo`` is not
   disturbed.

The local broker is shared by every pytest process of the run (``pytest -n``, xdist): each
process that needs it registers itself under a file lock; the first starts the broker, the
last one out stops it -- if the tests started it. A broker you started yourself on those
ports is used and left running.

Under ``CI=true`` a broker that cannot be had is a test *failure*; elsewhere the tests that
need it are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from involvement_hub.errors import LocalKafkaError
from involvement_hub.settings import Settings
from involvement_hub_devtools.kafka_probe import broker_answers
from involvement_hub_devtools.localkafka import LocalKafka

from support import REPO

IN_CI = os.environ.get("CI", "").lower() == "true"
TEST_KAFKA_PORT = int(os.environ.get("HUB_TEST_KAFKA_PORT", "19192"))
STARTED_BY_TESTS = "started-by-tests"


def unavailable(why: str) -> None:
    """A missing real component: a failure in CI, a skip on a developer's machine."""
    if IN_CI:
        pytest.fail(f"{why} (CI=true: a missing broker or server fails the run)")
    pytest.skip(why)


@contextlib.contextmanager
def run_broker() -> Iterator[str]:
    """The bootstrap address of the run's broker, for as long as the caller needs it."""
    given = os.environ.get("HUB_TEST_BOOTSTRAP")
    if given:
        if not broker_answers(given, timeout=10):
            unavailable(f"HUB_TEST_BOOTSTRAP={given} does not answer as a Kafka broker")
        yield given
    elif _docker_engine_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
    else:
        with _shared_local_broker() as bootstrap:
            yield bootstrap


@contextlib.contextmanager
def _shared_local_broker() -> Iterator[str]:
    settings = Settings(
        local_kafka_port=TEST_KAFKA_PORT,
        local_kafka_controller_port=TEST_KAFKA_PORT + 1,
        state_dir=REPO / ".hub",
    )
    local = LocalKafka(settings)
    users = local.home.parent / f"{local.home.name}.users"
    me = users / str(os.getpid())
    with _locked(users):
        others = _live_users(users)
        if not others and not local.status().running:
            # The test broker is the tests' own: start it empty, so topics left by earlier
            # runs (thousands, on a developer's machine) do not slow every test down.
            shutil.rmtree(local.home, ignore_errors=True)
            try:
                if local.start():
                    (users / STARTED_BY_TESTS).touch()
            except LocalKafkaError as exc:
                unavailable(f"no Kafka broker: {exc}")
        me.touch()
    try:
        yield settings.bootstrap
    finally:
        with _locked(users):
            me.unlink(missing_ok=True)
            if not _live_users(users) and (users / STARTED_BY_TESTS).exists():
                local.stop()
                (users / STARTED_BY_TESTS).unlink()


@contextlib.contextmanager
def _locked(users: Path) -> Iterator[None]:
    users.mkdir(parents=True, exist_ok=True)
    with (users / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _live_users(users: Path) -> list[Path]:
    """The pytest processes registered as using the broker; a dead one's entry is removed
    (a run killed before its teardown)."""
    live = []
    for entry in users.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            os.kill(int(entry.name), 0)
            live.append(entry)
        except ProcessLookupError:
            entry.unlink(missing_ok=True)
    return live


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
