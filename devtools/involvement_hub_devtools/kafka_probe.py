"""Does a Kafka broker answer? A synchronous probe in the raw wire protocol.

An open port is not enough: a starting broker listens before it can serve, and another
program may hold the port. The probe speaks just enough Kafka -- ApiVersions v0, then
Metadata for no topics -- to count the brokers in the reply. Stdlib only, so fixtures and
the command line can call it without an event loop.
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Final

_API_VERSIONS: Final = 18
_METADATA: Final = 3
# Metadata v1 is the simplest that can ask for no topics; Kafka 4 removed v0-v3, so v4
# (one more field each way) is the fallback.
_METADATA_VERSIONS: Final = (1, 4)
_MAX_FRAME: Final = 1 << 20  # a reply listing brokers only; anything larger is not Kafka
_CLIENT_ID: Final = b"involvement-hub-probe"


def broker_answers(bootstrap: str, timeout: float = 2.0) -> bool:
    """True when a broker at any ``host:port`` of *bootstrap* lists at least one broker.

    An open port is not enough: a starting broker listens before it can serve, and another
    program may hold the port. So this speaks Kafka: ApiVersions v0, then Metadata for no
    topics, and counts the brokers in the reply. Synchronous, stdlib only, never raises;
    each address gets *timeout* seconds.
    """
    return any(_probe(address.strip(), timeout) for address in bootstrap.split(",") if address)


def _probe(address: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    try:
        host, _, port = address.rpartition(":")
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as sock:
            versions = _exchange(sock, _API_VERSIONS, 0, b"", deadline)
            version = _metadata_version(versions)
            # An empty topic array asks for no topics (v1+); allow_auto_topic_creation: false
            body = struct.pack(">i", 0) + (b"\x00" if version >= 4 else b"")
            reply = _exchange(sock, _METADATA, version, body, deadline)
            offset = 4 if version >= 3 else 0  # throttle_time_ms comes first from v3
            (brokers,) = struct.unpack_from(">i", reply, offset)
            return bool(brokers > 0)
    except (OSError, ValueError, struct.error):
        return False


def _metadata_version(api_versions_reply: bytes) -> int:
    error, count = struct.unpack_from(">hi", api_versions_reply)
    if error != 0 or not 0 < count < 1000:
        raise ValueError("not an ApiVersions reply")
    for index in range(count):
        key, low, high = struct.unpack_from(">hhh", api_versions_reply, 6 + 6 * index)
        if key == _METADATA:
            for version in _METADATA_VERSIONS:
                if low <= version <= high:
                    return version
    raise ValueError("no Metadata version in common")


def _exchange(
    sock: socket.socket, api_key: int, version: int, body: bytes, deadline: float
) -> bytes:
    """Send one request (header v1) and return the reply body after its header v0."""
    correlation_id = api_key  # one request of each kind per connection
    header = struct.pack(">hhih", api_key, version, correlation_id, len(_CLIENT_ID)) + _CLIENT_ID
    request = header + body
    sock.sendall(struct.pack(">i", len(request)) + request)
    (size,) = struct.unpack(">i", _receive(sock, 4, deadline))
    if not 4 <= size <= _MAX_FRAME:
        raise ValueError("not a Kafka frame")
    reply = _receive(sock, size, deadline)
    if struct.unpack_from(">i", reply)[0] != correlation_id:
        raise ValueError("reply to another request")
    return reply[4:]


def _receive(sock: socket.socket, size: int, deadline: float) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no reply in time")
        sock.settimeout(remaining)
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("closed before replying")
        chunks += chunk
    return bytes(chunks)
