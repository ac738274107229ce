"""One scenario of ``hub chaos``: a worker, a mailbox and topics of its own.

The worker is a real ``hub worker`` child process; the mailbox is the project's aiosmtpd
server in this process, so the harness can stop it (SMTP down) and refuse a recipient
(550). What the mailbox accepted, one ``.eml`` file each, is the truth the verdict uses.

The scenario supervises its worker: an exit the harness did not cause is a crash, counted,
and the worker is started again as a service manager would.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from involvement_hub.errors import HubError
from involvement_hub.kafka.admin import group_lag
from involvement_hub.kafka.topics import TopicNames
from involvement_hub.settings import Settings

from involvement_hub_devtools.chaos.faults import runs_with_logged_crash
from involvement_hub_devtools.chaos.report import Accepted
from involvement_hub_devtools.mailbox import RCPT_HEADER, Mailbox, read_mailbox
from involvement_hub_devtools.processes import Worker, metric_total

Progress = Callable[[str], None]
_POLL_S = 0.2
# A worker that keeps dying on the same message will not stop doing so: after this many
# exits of its own the scenario gives up, rather than spin until its timeout.
MAX_UNEXPECTED_EXITS = 5
_LAG_TIMEOUT_S = 20.0


class Scenario:
    def __init__(
        self,
        name: str,
        settings: Settings,
        workdir: Path,
        say: Progress,
        refuse: frozenset[str] = frozenset(),
    ) -> None:
        self.name = name
        self.settings = settings
        self.workdir = workdir
        self.mail_dir = workdir / "mailbox"
        self.refuse = refuse
        self.worker = Worker(settings, workdir / "worker.log")
        self.mailbox: Mailbox | None = None
        self.say = say
        self.unexpected_exits: list[int] = []
        # Where each run of the worker begins in its log, and which runs ended on their own.
        self.run_starts: list[int] = []
        self.runs_exited: set[int] = set()
        self.disruptions = 0
        self.kills_of_ready_worker = 0

    @property
    def log(self) -> Path:
        return self.worker.log

    def start(self, ready_timeout: float) -> None:
        self.mailbox_up()
        self.start_worker()
        self.wait_ready(ready_timeout)

    def start_worker(self) -> None:
        self.run_starts.append(self.log.stat().st_size if self.log.exists() else 0)
        self.worker.start()

    def crashes(self) -> int:
        """Runs of the worker that exited on their own or logged a crash, each once."""
        return len(self.runs_exited | runs_with_logged_crash(self.log, self.run_starts))

    def close(self) -> None:
        self.worker.stop()
        self.mailbox_down()

    # -- the mail server ------------------------------------------------------------------

    def mailbox_up(self) -> None:
        if self.mailbox is None:
            # A new server on the same port and folder: what a restarted mail server is.
            self.mailbox = Mailbox(self.mail_dir, port=self.settings.smtp_port, refuse=self.refuse)
            self.mailbox.start()

    def mailbox_down(self) -> None:
        if self.mailbox is not None:
            self.mailbox.stop()
            self.mailbox = None

    def accepted(self) -> tuple[Accepted, ...]:
        return tuple(
            Accepted(str(m["Message-ID"]).strip(), str(m[RCPT_HEADER]).strip())
            for m in read_mailbox(self.mail_dir)
        )

    def email_count(self) -> int:
        return sum(1 for _ in self.mail_dir.glob("*.eml")) if self.mail_dir.is_dir() else 0

    # -- the worker -----------------------------------------------------------------------

    def supervise(self) -> None:
        """Restart a worker that exited on its own, and count it."""
        process = self.worker.process
        if process is not None and process.poll() is not None:
            self.unexpected_exits.append(process.returncode)
            self.runs_exited.add(len(self.run_starts) - 1)
            if len(self.unexpected_exits) >= MAX_UNEXPECTED_EXITS:
                self.worker.process = None
                raise HubError(
                    f"crash loop: the worker exited on its own {MAX_UNEXPECTED_EXITS} times"
                )
            self.say(f"{self.name}: the worker exited on its own ({process.returncode}); restarted")
            self.start_worker()

    def idle(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            self.supervise()
            time.sleep(min(_POLL_S, max(until - time.monotonic(), 0)))

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.supervise()
            if self.worker.ready():
                return
            time.sleep(_POLL_S)
        raise HubError(f"{self.name}: the worker was not ready within {timeout:.0f} s")

    def wait_consuming(self, timeout: float) -> None:
        """Until this run of the worker has consumed an event (or nothing is left to).

        /readyz alone is not enough: after a kill -9 a new worker can say ready while the
        group still waits out the dead member's session and nothing moves."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.wait_ready(max(deadline - time.monotonic(), 1.0))
            try:
                consumed = metric_total(self.worker.metrics(), "hub_events_consumed_total")
            except OSError:
                consumed = 0.0
            if consumed > 0 or self._lag() == 0:
                return
            self.idle(1.0)
        raise HubError(f"{self.name}: the worker consumed nothing within {timeout:.0f} s")

    def signal_worker(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the worker, wait for it to go, start a new one at once."""
        self.supervise()
        process = self.worker.process
        assert process is not None
        if self.worker.ready():
            self.kills_of_ready_worker += 1
        process.send_signal(sig)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            self.say(f"{self.name}: the worker ignored {sig.name} for 60 s; killed")
        self.disruptions += 1
        self.start_worker()

    # -- quiescence -----------------------------------------------------------------------

    def consumed_topics(self) -> list[str]:
        names = TopicNames.from_settings(self.settings)
        return [*names.all_ingest, names.identity, names.alerts]

    def _lag(self) -> int | None:
        try:
            return asyncio.run(
                group_lag(self.settings, self.settings.app_id, self.consumed_topics())
            )
        except Exception:  # the broker may be restarting: "not known yet", ask again
            return None

    def _pending(self) -> int | None:
        """Alerts waiting for a retry or a digest, and records still in the ordered stage's
        reorder buffer (committed, so not lag, but not yet routed: they wait for every
        ingest partition to be known past them, at most an idle watermark's interval)."""
        try:
            exposition = self.worker.metrics()
            return int(
                metric_total(exposition, "hub_delivery_pending")
                + metric_total(exposition, "hub_ordered_waiting")
            )
        except OSError:  # the worker is restarting
            return None

    def wait_quiet(self, timeout: float, stable_s: float) -> None:
        """Until every message is committed, nothing waits for a retry or in the reorder
        buffer, and the mailbox count has not moved for ``stable_s`` while all held. Raises
        after ``timeout``."""
        deadline = time.monotonic() + timeout
        stable_since: float | None = None
        last_count = -1
        last_said = time.monotonic()
        lag: int | None = None
        pending: int | None = None
        while time.monotonic() < deadline:
            self.supervise()
            lag, pending, count = self._lag(), self._pending(), self.email_count()
            now = time.monotonic()
            if lag == 0 and pending == 0 and self.worker.ready():
                if stable_since is None or count != last_count:
                    stable_since, last_count = now, count
                elif now - stable_since >= stable_s:
                    return
            else:
                stable_since = None
            if now - last_said >= 15:
                last_said = now
                self.say(f"{self.name}: waiting: lag {lag}, pending {pending}, {count} emails")
            time.sleep(1.0)
        raise TimeoutError(
            f"not quiet within {timeout:.0f} s (lag {lag}, pending {pending}); see {self.log}"
        )
