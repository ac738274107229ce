"""Starting the hub's own commands as child processes: the demo and the benchmark run a
real ``hub worker`` and a real ``hub mailbox``, exactly as an operator would."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Self

from involvement_hub.errors import HubError
from involvement_hub.settings import Settings


class Child:
    """One ``python -m involvement_hub <command>`` process with its own log file.

    ``module`` runs another of the package's modules instead (the benchmark's Faust ceiling).
    """

    def __init__(
        self,
        command: list[str],
        settings: Settings,
        log: Path,
        module: str = "involvement_hub",
        **env: str,
    ) -> None:
        self.command = command
        self.module = module
        self.settings = settings
        self.log = log
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> Self:
        # The child inherits PATH, JAVA_HOME, locale and the like, but its HUB_* settings
        # come only from ours.
        environment = dict(os.environ)
        for name in [n for n in environment if n.startswith("HUB_")]:
            del environment[name]
        environment.update(self.settings.as_environment())
        environment.update(self.env)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.started_at = time.monotonic()
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.command],
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 30) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def cpu_seconds(self) -> float:
        """CPU time the process has used so far, user and system (see :func:`cpu_seconds`)."""
        return cpu_seconds(self.pid)

    def peak_rss_bytes(self) -> int:
        """The process's peak resident memory so far (VmHWM), from /proc."""
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return 0


class Worker(Child):
    def __init__(self, settings: Settings, log: Path, **env: str) -> None:
        super().__init__(["worker"], settings, log, **env)

    def url(self, path: str) -> str:
        return f"http://{self.settings.metrics_host}:{self.settings.metrics_port}{path}"

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url("/readyz"), timeout=2) as reply:  # noqa: S310
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(
        self, timeout: float = 180, progress: Callable[[str], None] | None = None
    ) -> float:
        """Seconds from start until ready; raises if the worker exits or takes too long.

        ``progress`` hears every 10 s how long the wait has been (a recovery of a large
        state takes minutes)."""
        deadline = time.monotonic() + timeout
        said = time.monotonic()
        while time.monotonic() < deadline:
            if not self.alive():
                raise HubError(f"the worker exited; see {self.log}")
            if self.ready():
                return time.monotonic() - self.started_at
            if progress is not None and time.monotonic() - said >= 10:
                said = time.monotonic()
                waited = said - self.started_at
                progress(f"  ... worker not ready yet after {waited:.0f} s (recovering tables)")
            time.sleep(0.2)
        raise HubError(f"the worker was not ready within {timeout:.0f} s; see {self.log}")

    def metrics(self) -> str:
        with urllib.request.urlopen(self.url("/metrics"), timeout=5) as reply:  # noqa: S310
            return str(reply.read().decode("utf-8"))


def metric_total(text: str, name: str) -> float:
    """The sum of every sample of ``name`` in a Prometheus text exposition."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (len(line) == len(name) or line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def metric_samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample of ``name`` in a Prometheus text exposition: its labels and value."""
    samples = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None or match["name"] != name:
            continue
        labels = dict(_LABEL.findall(match["labels"] or ""))
        samples.append((labels, float(match["value"])))
    return samples


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of process ``pid`` (all its threads), from /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError as exc:
        raise HubError(f"cannot read the CPU time of process {pid}: {exc}") from exc
    return cpu_seconds_from_stat(text, os.sysconf("SC_CLK_TCK"))


def cpu_seconds_from_stat(stat: str, ticks_per_second: int) -> float:
    """utime + stime of a /proc/<pid>/stat line (fields 14 and 15, in clock ticks).

    The command name (field 2) is in parentheses and may itself hold spaces or
    parentheses, so fields are counted from the last ')'.
    """
    fields = stat.rsplit(")", 1)[1].split()
    # fields[0] is field 3 (the state): utime is field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / ticks_per_second


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise HubError(f"nothing listened on port {port} within {timeout:.0f} s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
