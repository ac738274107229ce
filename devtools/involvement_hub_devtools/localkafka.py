"""The local development Kafka broker: fetched with Maven, run with Java, no Docker.

Developers, the test tiers and ``hub demo`` need a real broker, and the one thing every
machine here has is Java and Maven. :class:`LocalKafka` fetches the broker's jars once
(``deploy/local/pom.xml``), formats a single-node KRaft store, starts ``kafka.Kafka`` in its
own session so it outlives the command that started it, and stops it again. Every step is
idempotent, so a fixture or a user can call ``start()`` without asking first.

Each broker lives in ``<state_dir>/kafka/broker-<port>/`` (properties, data, logs, pid file,
cluster id), so brokers on different ports run side by side; the jars are shared in
``<state_dir>/kafka/libs/``. A broker counts as up when it *answers* a Metadata request
(:func:`broker_answers`, the raw wire protocol over a socket), not when its port opens.

Every failure is a :class:`~involvement_hub.errors.LocalKafkaError` whose message says what
to do, with the tail of Maven's output or of the broker's log when those explain it.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from involvement_hub.errors import LocalKafkaError
from involvement_hub.settings import REPO_ROOT, Settings

from involvement_hub_devtools.kafka_probe import broker_answers

# A development file of the source checkout; the log4j configuration is read from beside
# whichever pom is used.
DEFAULT_POM: Final = REPO_ROOT / "deploy" / "local" / "pom.xml"
LOG_TAIL_LINES: Final = 20
# Maven downloads ~45 MB on a first run; a stalled mirror should fail, not hang a test run.
FETCH_TIMEOUT_S: Final = 900.0
# Formatting takes a few seconds of JVM start-up; a minute means something is wrong.
FORMAT_TIMEOUT_S: Final = 60.0
_POLL_S: Final = 0.2
_ANSI_ESCAPE: Final = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_MARKER: Final = ".fetched"  # holds the pom's sha256, so a changed pom fetches again


def _print_to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


@dataclass(frozen=True)
class BrokerStatus:
    """``running``: our broker process is alive; ``answering``: a broker answers on the port."""

    running: bool
    answering: bool
    pid: int | None
    bootstrap: str
    home: Path


class LocalKafka:
    """One local broker, on ``settings.local_kafka_port``, kept in ``settings.state_dir``."""

    def __init__(
        self,
        settings: Settings,
        *,
        pom: Path | None = None,
        java: str = "java",
        mvn: str = "mvn",
        heap: str = "512m",
        progress: Callable[[str], None] = _print_to_stderr,
    ) -> None:
        self._port = settings.local_kafka_port
        self._controller_port = settings.local_kafka_controller_port
        # Absolute, because the broker's command line is how a later run recognises it.
        self._pom = (pom or DEFAULT_POM).absolute()
        self._log4j = self._pom.parent / "log4j.properties"
        self._java = java
        self._mvn = mvn
        self._heap = heap
        self._progress = progress
        self.libs = (settings.state_dir / "kafka" / "libs").absolute()
        self.home = (settings.state_dir / "kafka" / f"broker-{self._port}").absolute()
        self.bootstrap = f"127.0.0.1:{self._port}"
        self._properties = self.home / "server.properties"
        self._pid_file = self.home / "broker.pid"
        self._server_log = self.home / "logs" / "server.log"  # named in log4j.properties
        self._console_log = self.home / "logs" / "console.log"

    # -- fetch ---------------------------------------------------------------------------

    def fetch(self) -> None:
        """Download the broker's jars into the shared libs folder, unless already there."""
        with _reported(f"fetch the Kafka jars into {self.libs}"):
            self.libs.mkdir(parents=True, exist_ok=True)
            self._fetch_locked()

    def _fetch_locked(self) -> None:
        with _flock(self.libs / ".lock"):
            wanted = self._pom_digest()
            marker = self.libs / _MARKER
            if marker.exists() and marker.read_text().strip() == wanted:
                return
            mvn = _require_tool(self._mvn, "Maven is needed once, to fetch the Kafka jars")
            _require_tool(self._java, "Java 17+ is needed to run the local Kafka broker")
            # An interrupted or older fetch may have left jars of another version behind,
            # and two kafka-clients jars on one classpath fail in baffling ways.
            marker.unlink(missing_ok=True)
            for jar in self.libs.glob("*.jar"):
                jar.unlink()
            self._progress(f"Fetching the Kafka broker jars with Maven into {self.libs} …")
            command = [
                mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(self._pom),
                "dependency:copy-dependencies", f"-DoutputDirectory={self.libs}",
            ]  # fmt: skip
            # Maven is quiet (-q) and a first fetch takes minutes: say that it goes on.
            with _heartbeat(self._progress, "still fetching the Kafka jars"):
                _run(command, FETCH_TIMEOUT_S, "Maven could not fetch the Kafka jars")
            marker.write_text(wanted + "\n")

    def _pom_digest(self) -> str:
        try:
            return hashlib.sha256(self._pom.read_bytes()).hexdigest()
        except OSError as exc:
            raise LocalKafkaError(
                f"cannot read the broker's pom {self._pom} ({exc.strerror}); run the hub "
                "from the repository root, where deploy/local/ is"
            ) from exc

    # -- start ---------------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> bool:
        """Start the broker and wait until it answers; False if ours was already up."""
        with _reported(f"start the Kafka broker in {self.home}"):
            self.home.mkdir(parents=True, exist_ok=True)
            return self._start_locked(timeout)

    def _start_locked(self, timeout: float) -> bool:
        with _flock(self.home / "broker.lock"):
            pid = self._running_pid()
            if pid is not None:
                self._wait_until_answering(pid, timeout)
                return False
            self._refuse_taken_ports()
            self.fetch()
            java = _require_tool(self._java, "Java 17+ is needed to run the local Kafka broker")
            if not self._log4j.is_file():
                raise LocalKafkaError(f"the broker's log configuration {self._log4j} is missing")
            self._write_properties()
            self._format_storage(java)
            started = time.monotonic()
            self._progress(f"Starting the local Kafka broker on {self.bootstrap} …")
            log_from = _size(self._server_log)
            pid = self._spawn(java)
            try:
                self._wait_until_answering(pid, timeout, log_from)
            except LocalKafkaError:
                # A broker that never answered is stopped, so the next start begins afresh.
                self._terminate(pid, timeout=10.0)
                self._pid_file.unlink(missing_ok=True)
                raise
            self._progress(f"Kafka answers on {self.bootstrap} ({time.monotonic() - started:.1f}s)")
            return True

    def _refuse_taken_ports(self) -> None:
        if broker_answers(self.bootstrap, timeout=1.0):
            raise LocalKafkaError(
                f"a Kafka broker that this hub did not start ({self.home} has no live pid) "
                f"already answers on {self.bootstrap}; stop it, or choose another port "
                "with HUB_LOCAL_KAFKA_PORT and HUB_LOCAL_KAFKA_CONTROLLER_PORT"
            )
        for port, name in (
            (self._port, "HUB_LOCAL_KAFKA_PORT"),
            (self._controller_port, "HUB_LOCAL_KAFKA_CONTROLLER_PORT"),
        ):
            if _port_in_use(port):
                raise LocalKafkaError(
                    f"port {port} on 127.0.0.1 is taken by another program, not by a broker "
                    f"this hub started; free it or set {name} to another port"
                )

    def _write_properties(self) -> None:
        data = self.home / "data"
        text = server_properties(
            port=self._port, controller_port=self._controller_port, data_dir=data
        )
        data.mkdir(exist_ok=True)
        (self.home / "logs").mkdir(exist_ok=True)
        self._properties.write_text(text)

    def _format_storage(self, java: str) -> None:
        # Formatting twice, or with a new cluster id, is refused by Kafka; the id is kept so
        # a data folder that lost meta.properties to a crash is formatted with its own id.
        if (self.home / "data" / "meta.properties").exists():
            return
        command = [
            *self._java_command(java), "kafka.tools.StorageTool", "format",
            "-t", self._cluster_id(), "-c", str(self._properties), "--ignore-formatted",
        ]  # fmt: skip
        _run(command, FORMAT_TIMEOUT_S, "Kafka could not format the broker's storage")

    def _cluster_id(self) -> str:
        path = self.home / "cluster.id"
        if path.exists():
            return path.read_text().strip()
        cluster_id = new_cluster_id()
        path.write_text(cluster_id + "\n")
        return cluster_id

    def _java_command(self, java: str) -> list[str]:
        return [
            java,
            f"-Xmx{self._heap}",
            "-Djava.awt.headless=true",
            # A broker out of memory limps on and answers nothing; better dead and restarted.
            "-XX:+ExitOnOutOfMemoryError",
            f"-Dlog4j.configuration={self._log4j.as_uri()}",
            f"-Dkafka.logs.dir={self.home / 'logs'}",
            "-cp",
            f"{self.libs}/*",  # the JVM expands the wildcard; there is no shell
        ]

    def _spawn(self, java: str) -> int:
        command = [*self._java_command(java), "kafka.Kafka", str(self._properties)]
        # Truncated: it holds one run's JVM errors and stray prints, nothing to keep.
        console = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        try:
            # posix_spawn, not Popen: the broker must outlive this process, and a Popen
            # dropped while its child runs raises ResourceWarning (an error under pytest).
            # setsid keeps a Ctrl-C meant for the hub or pytest from reaching the broker;
            # setsigdef undoes the signals Python ignores, as Popen's restore_signals does.
            pid = os.posix_spawn(
                java,
                command,
                os.environ,  # JAVA_HOME, proxies and locale, as any child process inherits
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 1, str(self._console_log), console, 0o644),
                    (os.POSIX_SPAWN_DUP2, 1, 2),
                ],
                setsid=True,
                setsigdef=(signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM),
            )
            self._pid_file.write_text(f"{pid}\n")
        except OSError as exc:
            raise LocalKafkaError(f"cannot start the Kafka broker with {java}: {exc}") from exc
        return pid

    def _wait_until_answering(self, pid: int, timeout: float, log_from: int = 0) -> None:
        """Poll until the broker answers; *log_from* is where this run's server.log begins."""
        deadline = time.monotonic() + timeout
        while True:
            if not _alive(pid):
                raise LocalKafkaError(
                    f"the Kafka broker (pid {pid}) exited while starting\n"
                    + self._log_tail(log_from)
                )
            remaining = deadline - time.monotonic()
            if broker_answers(self.bootstrap, timeout=max(0.1, min(2.0, remaining))):
                return
            if time.monotonic() >= deadline:
                raise LocalKafkaError(
                    f"the Kafka broker (pid {pid}) did not answer on {self.bootstrap} "
                    f"within {timeout:g}s\n{self._log_tail(log_from)}"
                )
            time.sleep(_POLL_S)

    def _log_tail(self, log_from: int) -> str:
        parts = []
        for path, offset in ((self._console_log, 0), (self._server_log, log_from)):
            try:
                with path.open("rb") as log:
                    # A log rotated since the start is shorter than the offset: read it all.
                    log.seek(offset if offset <= _size(path) else 0)
                    lines = log.read().decode(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            except OSError:
                continue
            if lines:
                parts.append(f"--- last lines of {path} ---\n" + "\n".join(lines))
        return "\n".join(parts) or f"(nothing logged in {self.home / 'logs'})"

    # -- stop and status -----------------------------------------------------------------

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop our broker (SIGTERM, then SIGKILL after *timeout*); False if none ran."""
        with _reported(f"stop the Kafka broker in {self.home}"):
            self.home.mkdir(parents=True, exist_ok=True)
            return self._stop_locked(timeout)

    def _stop_locked(self, timeout: float) -> bool:
        with _flock(self.home / "broker.lock"):
            pid = self._running_pid()
            if pid is None:
                self._pid_file.unlink(missing_ok=True)
                return False
            self._progress(f"Stopping the local Kafka broker (pid {pid}) …")
            self._terminate(pid, timeout)
            self._pid_file.unlink(missing_ok=True)
            return True

    def _terminate(self, pid: int, timeout: float) -> None:
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            except OSError as exc:
                raise LocalKafkaError(f"cannot signal the Kafka broker (pid {pid}): {exc}") from exc
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not _alive(pid):
                    return
                time.sleep(_POLL_S / 2)
        raise LocalKafkaError(f"the Kafka broker (pid {pid}) survived SIGKILL")

    def status(self) -> BrokerStatus:
        """Whether our broker runs, and whether any broker answers on its port."""
        pid = self._running_pid()
        return BrokerStatus(
            running=pid is not None,
            answering=broker_answers(self.bootstrap),
            pid=pid,
            bootstrap=self.bootstrap,
            home=self.home,
        )

    def _running_pid(self) -> int | None:
        """The pid in the pid file, if that process is alive and is this instance's broker."""
        try:
            pid = int(self._pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if not _alive(pid):
            return None
        # The properties path names this instance, so a reused pid, or the broker of
        # another port, is never mistaken for ours.
        command_line = _command_line(pid)
        return pid if command_line is None or str(self._properties) in command_line else None


# -- processes and files -----------------------------------------------------------------


def _alive(pid: int) -> bool:
    """True while *pid* runs; an exited process not yet reaped (a zombie) counts as gone."""
    try:
        # The broker is our child when this process started it: reap it once it exits.
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, but is another user's
    try:
        # An orphaned broker that exits stays a zombie under an init that does not reap
        # (some containers), and kill(pid, 0) still finds it.
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs (macOS): kill(pid, 0) is all there is
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _command_line(pid: int) -> str | None:
    """The command line of *pid*; None where there is no procfs to read it from (macOS)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None if not Path("/proc/self").exists() else ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _require_tool(name: str, why: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise LocalKafkaError(f"{name!r} is not on PATH: {why}")
    return path


def _run(command: list[str], timeout: float, failure: str) -> None:
    try:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise LocalKafkaError(f"{failure}: no result after {timeout:.0f}s") from exc
    except OSError as exc:
        raise LocalKafkaError(f"{failure}: {exc}") from exc
    if result.returncode != 0:
        # Maven colours its output even in batch mode; escapes would garble the message.
        output = _ANSI_ESCAPE.sub("", result.stdout)
        tail = "\n".join(output.splitlines()[-LOG_TAIL_LINES:])
        raise LocalKafkaError(f"{failure} (exit status {result.returncode}):\n{tail}")


@contextmanager
def _heartbeat(progress: Callable[[str], None], what: str, every: float = 10.0) -> Iterator[None]:
    """Tell ``progress`` every ``every`` seconds, from a thread, that ``what`` goes on."""
    done = threading.Event()
    started = time.monotonic()

    def beat() -> None:
        while not done.wait(every):
            progress(f"  ... {what} ({time.monotonic() - started:.0f} s)")

    thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


@contextmanager
def _reported(action: str) -> Iterator[None]:
    """Turn a file-system failure (a full disk, a read-only state_dir) into our error."""
    try:
        yield
    except OSError as exc:
        raise LocalKafkaError(f"cannot {action}: {exc}") from exc


@contextmanager
def _flock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on *path*: parallel test workers share one broker and one fetch."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _port_in_use(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# -- configuration -----------------------------------------------------------------------


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes as 22 characters of unpadded base64url."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        # Kafka's own Uuid.randomUuid() avoids a leading "-", which tools read as an option.
        if not text.startswith("-"):
            return text


def server_properties(*, port: int, controller_port: int, data_dir: Path) -> str:
    """The broker's ``server.properties``: one KRaft node that is broker and controller."""
    return f"""\
# Written by involvement_hub_devtools.localkafka on every start; edit the code, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
# 127.0.0.1, not localhost: clients must not wander to ::1 where nothing listens.
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs={data_dir}

# One node, so every replication factor and in-sync minimum is 1.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
default.replication.factor=1
min.insync.replicas=1
# Fewer internal partitions than the default 50: the first consumer group starts faster.
offsets.topic.num.partitions=4
transaction.state.log.num.partitions=4
# Tests start many consumer groups; the default 3 s wait before each first rebalance
# would dominate their run time.
group.initial.rebalance.delay.ms=0

# The hub creates its topics explicitly, with their partitions and compaction. Automatic
# creation would hide a misspelt topic name behind a new, empty, one-partition topic.
auto.create.topics.enable=false
delete.topic.enable=true
num.partitions=1

# A development broker: small segments and a day of retention keep .hub/ small.
log.segment.bytes=16777216
log.retention.hours=24
log.retention.check.interval.ms=60000
# The cleaner (compacted changelogs) takes 128 MiB of heap by default; 512m is the heap.
log.cleaner.dedupe.buffer.size=33554432
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
"""
