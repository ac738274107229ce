"""The local development broker, really started with Java: lifecycle, restart, two at once.

Each test has its own state folder and free ports, but the jars are shared with the
repository's ``.hub/kafka/libs`` (fetched once by Maven), so no test downloads them again.
Without Java or Maven these tests skip on a laptop and fail in CI (``CI=true``).
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from involvement_hub.errors import LocalKafkaError
from involvement_hub.settings import Settings
from involvement_hub_devtools.localkafka import LocalKafka, broker_answers
from involvement_hub_devtools.processes import free_port
from support import REPO

pytestmark = pytest.mark.integration

SHARED_LIBS = REPO / ".hub" / "kafka" / "libs"
POM = REPO / "deploy" / "local" / "pom.xml"

MakeBroker = Callable[[], LocalKafka]


@pytest.fixture(scope="module", autouse=True)
def _java_and_maven() -> None:
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if not missing:
        return
    reason = f"{' and '.join(missing)} not on PATH: the local Kafka broker needs Java 17+ and Maven"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:  # distinct: a port given twice would make one broker fail
        ports.add(free_port())
    return sorted(ports)


@pytest.fixture
def make_broker(tmp_path: Path) -> Iterator[MakeBroker]:
    """Make brokers on free ports in one temporary state folder; all are stopped after."""
    SHARED_LIBS.mkdir(parents=True, exist_ok=True)
    (tmp_path / "kafka").mkdir()
    (tmp_path / "kafka" / "libs").symlink_to(SHARED_LIBS, target_is_directory=True)
    made: list[LocalKafka] = []

    def make() -> LocalKafka:
        port, controller_port = _free_ports(2)
        settings = Settings(
            state_dir=tmp_path, local_kafka_port=port, local_kafka_controller_port=controller_port
        )
        made.append(LocalKafka(settings, pom=POM, progress=lambda message: None))
        return made[-1]

    yield make
    for broker in made:
        broker.stop()


def test_start_and_stop_are_idempotent(make_broker: MakeBroker) -> None:
    broker = make_broker()

    assert broker.start() is True
    status = broker.status()
    assert status.running
    assert status.answering
    assert status.pid is not None
    assert status.bootstrap == broker.bootstrap
    assert broker.start() is False

    assert broker.stop() is True
    status = broker.status()
    assert not status.running
    assert not status.answering
    assert status.pid is None
    assert broker.stop() is False


def test_a_restarted_broker_keeps_its_cluster_and_data(make_broker: MakeBroker) -> None:
    broker = make_broker()
    broker.start()
    cluster_id = (broker.home / "cluster.id").read_text().strip()
    meta = broker.home / "data" / "meta.properties"
    formatted = meta.stat().st_mtime_ns
    broker.stop()

    assert broker.start() is True

    assert (broker.home / "cluster.id").read_text().strip() == cluster_id
    assert f"cluster.id={cluster_id}" in meta.read_text()
    assert meta.stat().st_mtime_ns == formatted  # not formatted again
    assert broker.status().answering


def test_brokers_on_different_ports_run_side_by_side(make_broker: MakeBroker) -> None:
    first, second = make_broker(), make_broker()

    assert first.start()
    assert second.start()

    assert broker_answers(first.bootstrap)
    assert broker_answers(second.bootstrap)
    assert first.stop()
    assert second.status().answering


def test_start_refuses_a_port_that_another_program_holds(make_broker: MakeBroker) -> None:
    broker = make_broker()
    host, port = broker.bootstrap.split(":")
    with (
        socket.create_server((host, int(port))),
        pytest.raises(LocalKafkaError, match="taken by another program"),
    ):
        broker.start()

    assert not broker.status().running
