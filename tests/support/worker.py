"""The hub's commands as a user runs them: ``hub worker`` as a process the test starts and
stops, and any other ``hub ...`` command run to its end."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from involvement_hub.settings import Settings
from involvement_hub_devtools.processes import free_port

from support import REPO
from support.metrics import metric


def hub_environment(settings: Settings, **overrides: str) -> dict[str, str]:
    """This process's environment without its ``HUB_*`` variables, plus ``settings``'."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(settings.as_environment())
    env.update(overrides)
    return env


def hub_command(
    *args: str, settings: Settings, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """``hub ARGS`` run to its end with ``settings``; its exit status and output."""
    return subprocess.run(
        [sys.executable, "-m", "involvement_hub", *args],
        env=hub_environment(settings),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def isolated_settings(bootstrap: str, folder: Path, tag: str, partitions: int = 2) -> Settings:
    """Settings of their own for one test, or one module's worker: topics (prefix
    ``t<tag>.``), consumer group (app id), state folder and ports."""
    return Settings(
        kafka_bootstrap=bootstrap,
        topic_prefix=f"t{tag}.",
        app_id=f"hub-test-{tag}",
        partitions=partitions,
        state_dir=folder / "state",
        policy_file=REPO / "governance" / "policy.toml",
        subscriptions_dir=REPO / "subscriptions",
        metrics_port=free_port(),
        mailbox_port=free_port(),
        smtp_host="127.0.0.1",
        smtp_security="plain",
        log_level="warning",
    )


class WorkerProcess:
    """A ``hub worker`` started as a user would start it, with the test's settings."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, **env_overrides: str) -> None:
        env = hub_environment(
            self.settings, **{"HUB_SMTP_PORT": str(self.settings.mailbox_port), **env_overrides}
        )
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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"worker exited ({self.process.returncode}):\n{self.log_tail()}")
            with contextlib.suppress(urllib.error.URLError, OSError):
                if self.probe("/readyz") == 200:
                    return
            time.sleep(0.2)
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

    def metric(self, name: str, **labels: str) -> float | None:
        """One metric of the worker's, summed over the series with ``labels``."""
        return metric(self.metrics(), name, **labels)

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float = 30) -> None:
    """SIGTERM, and SIGKILL if that is not enough within ``timeout`` seconds."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
