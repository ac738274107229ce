"""The local broker's configuration, and the wire-protocol probe against servers that are
not (or are pretend) Kafka brokers. No Java: the probe's peers are threads in this test."""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from involvement_hub.settings import Settings
from involvement_hub_devtools.localkafka import (
    LocalKafka,
    broker_answers,
    new_cluster_id,
    server_properties,
)
from involvement_hub_devtools.processes import free_port

Handler = Callable[[socket.socket], None]


def _parse(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")
    return dict(pairs)


def test_properties_put_both_listeners_on_loopback() -> None:
    props = _parse(server_properties(port=29092, controller_port=29093, data_dir=Path("/d")))

    assert props["listeners"] == "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:29092"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:29093"
    assert props["process.roles"] == "broker,controller"
    assert props["log.dirs"] == "/d"


def test_properties_suit_one_node_and_explicit_topics() -> None:
    props = _parse(server_properties(port=1, controller_port=2, data_dir=Path("/d")))

    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["auto.create.topics.enable"] == "false"
    assert props["delete.topic.enable"] == "true"


def test_each_port_has_its_own_folder_and_the_jars_are_shared(tmp_path: Path) -> None:
    first = LocalKafka(Settings(state_dir=tmp_path, local_kafka_port=29092))
    second = LocalKafka(Settings(state_dir=tmp_path, local_kafka_port=39092))

    assert first.home == tmp_path / "kafka" / "broker-29092"
    assert second.home == tmp_path / "kafka" / "broker-39092"
    assert first.libs == second.libs == tmp_path / "kafka" / "libs"
    assert first.bootstrap == "127.0.0.1:29092"


def test_cluster_ids_look_like_kafkas() -> None:
    ids = {new_cluster_id() for _ in range(200)}

    assert len(ids) == 200
    for cluster_id in ids:
        assert len(cluster_id) == 22
        assert not cluster_id.startswith("-")
        assert set(cluster_id) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )


# -- broker_answers ----------------------------------------------------------------------


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], str]]:
    """Run a one-connection-at-a-time TCP server on a free port; returns its host:port."""
    servers: list[socketserver.TCPServer] = []

    def start(handle: Handler) -> str:
        class _Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                handle(self.request)

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _answers_quickly(bootstrap: str) -> bool:
    started = time.monotonic()
    result = broker_answers(bootstrap, timeout=0.3)
    assert time.monotonic() - started < 1.0
    return result


def test_a_closed_port_does_not_answer() -> None:
    assert not _answers_quickly(f"127.0.0.1:{free_port()}")


def test_a_server_that_hangs_up_does_not_answer(serve: Callable[[Handler], str]) -> None:
    assert not _answers_quickly(serve(lambda conn: None))


def test_a_server_that_says_nothing_does_not_answer(serve: Callable[[Handler], str]) -> None:
    def silent(conn: socket.socket) -> None:
        conn.recv(1024)
        time.sleep(1.0)

    assert not _answers_quickly(serve(silent))


def test_an_http_server_does_not_answer(serve: Callable[[Handler], str]) -> None:
    def http(conn: socket.socket) -> None:
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    assert not _answers_quickly(serve(http))


def test_a_malformed_address_does_not_answer() -> None:
    assert not broker_answers("no-port-here", timeout=0.2)


def _pretend_kafka(brokers: int) -> Handler:
    """A peer that replies to ApiVersions v0 and Metadata v1 as a broker would."""

    def handle(conn: socket.socket) -> None:
        for _ in range(2):
            (size,) = struct.unpack(">i", _read(conn, 4))
            api_key, version, correlation_id = struct.unpack_from(">hhi", _read(conn, size))
            if api_key == 18:  # ApiVersions: no error, one entry, Metadata v0-v12
                body = struct.pack(">hi", 0, 1) + struct.pack(">hhh", 3, 0, 12)
            else:
                assert (api_key, version) == (3, 1)
                one = struct.pack(">ih9sih", 1, 9, b"127.0.0.1", 9092, -1)
                body = struct.pack(">i", brokers) + one * brokers + struct.pack(">ii", 1, 0)
            reply = struct.pack(">i", correlation_id) + body
            conn.sendall(struct.pack(">i", len(reply)) + reply)

    return handle


def _read(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("probe hung up")
        data += chunk
    return data


def test_a_broker_listing_itself_answers(serve: Callable[[Handler], str]) -> None:
    assert broker_answers(serve(_pretend_kafka(brokers=1)), timeout=2.0)


def test_a_broker_listing_no_brokers_does_not_answer(serve: Callable[[Handler], str]) -> None:
    assert not broker_answers(serve(_pretend_kafka(brokers=0)), timeout=2.0)


def test_any_answering_address_of_a_list_is_enough(serve: Callable[[Handler], str]) -> None:
    bootstrap = f"127.0.0.1:{free_port()},{serve(_pretend_kafka(brokers=1))}"

    assert broker_answers(bootstrap, timeout=2.0)
