"""What the ops team runs, checked with the real tools: promtool and a real Prometheus.

``deploy/prometheus/`` holds the scrape config, the alerting rules and the rules' unit
tests; promtool checks all three. A running worker's ``/metrics`` must pass
``promtool check metrics`` (Prometheus's naming lint) and carry no personal data in any
label. Then a real Prometheus scrapes a real worker whose mail server is gone, and the
delivery alerts evaluate against what it scraped.

promtool and prometheus are Debian's package (2.42), unpacked by ``make prometheus`` into
``.hub/prometheus/`` (``make test`` does it first), or found on PATH.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from involvement_hub.kafka.topics import TopicNames
from involvement_hub_devtools.mailbox import Mailbox
from involvement_hub_devtools.processes import free_port
from prometheus_client.parser import text_string_to_metric_families
from support import REPO
from support.broker import unavailable
from support.metrics import metric
from support.records import involvement, life_event, person, practitioner
from support.topics import produce_raw, publish_records
from support.waiting import eventually
from support.worker import WorkerProcess, stop_process

DEPLOY = REPO / "deploy" / "prometheus"
JOB = "involvement-hub"
SOCIAL_CARE = "northshire-social-care"
POLICE = "northshire-police"
# Every label the hub's metrics may carry. Each takes its values from a small fixed set
# (agencies, kinds, reasons, topics, partitions, versions); a new one must be argued for.
BOUNDED_LABELS = {
    "agency", "kind", "reason", "scheme", "outcome", "urgency", "failure", "how", "stage",
    "topic", "partition", "version", "python", "faust", "le",
}  # fmt: skip
LOOKS_LIKE_AN_ID = {
    "a number of six digits or more (NHS number, UPN, UPRN)": re.compile(r"\d{6,}"),
    "an email address": re.compile(r"@"),
    "a hub person id": re.compile(r"P[A-Z2-7]{24}"),
    "a hash id (alert, candidate)": re.compile(r"[0-9a-f]{12,}"),
}


def prometheus_tool(name: str) -> Path:
    unpacked = REPO / ".hub" / "prometheus" / "usr" / "bin" / name
    if unpacked.exists():
        return unpacked
    found = shutil.which(name)
    if found is None:
        unavailable(f"no {name}: `make prometheus` unpacks Debian's package into .hub/prometheus/")
    return Path(str(found))


@pytest.fixture(scope="module")
def promtool() -> Path:
    return prometheus_tool("promtool")


def run_promtool(promtool: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [str(promtool), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"promtool {' '.join(args)} failed:\n{output}"
    return output


# -- the files in deploy/prometheus ------------------------------------------------------------


def test_the_alerting_rules_are_valid(promtool: Path) -> None:
    output = run_promtool(promtool, "check", "rules", str(DEPLOY / "rules.yml"))
    assert "SUCCESS" in output


def test_every_alert_has_a_wait_a_severity_and_a_runbook_section() -> None:
    groups = yaml.safe_load((DEPLOY / "rules.yml").read_text())["groups"]
    alerts = [rule for group in groups for rule in group["rules"] if "alert" in rule]
    assert {a["alert"] for a in alerts} == {
        "UrgentAlertLate",
        "DeliveryFailing",
        "DeliveryEscalations",
        "QuarantineSpike",
        "ConsumerLagGrowing",
        "UnreadableBatchSkipped",
        "WorkerDown",
        "TableRecoveryStuck",
    }
    for alert in alerts:
        name = alert["alert"]
        assert "for" in alert, name
        assert alert["labels"]["severity"] in {"critical", "warning"}, name
        assert set(alert["annotations"]) == {"summary", "description", "runbook_url"}, name
        # The runbook's heading is the alert's name, and so its anchor the name in lower case.
        assert alert["annotations"]["runbook_url"] == f"docs/operations.md#{name.lower()}"


def test_the_alerting_rules_pass_their_unit_tests(promtool: Path) -> None:
    output = run_promtool(promtool, "test", "rules", str(DEPLOY / "rules.test.yml"))
    assert "SUCCESS" in output


def test_the_scrape_config_and_the_rules_it_names_are_valid(promtool: Path) -> None:
    output = run_promtool(promtool, "check", "config", str(DEPLOY / "prometheus.yml"))
    assert "1 rule files found" in output
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    assert job["job_name"] == JOB  # the rules' WorkerDown selects up{job="involvement-hub"}
    assert job["dns_sd_configs"][0]["port"] == 9464  # HUB_METRICS_PORT's default


# -- a worker's exposition ---------------------------------------------------------------------


def a_case(n: int) -> list[dict[str, Any]]:
    """A lead's involvement in case CIN-n, then an URGENT and a PRIORITY event: two alerts."""
    child = person(n, given="Robin", family="Fenwick")
    lead = practitioner(f"SW-{n}", "Alex Morgan", "social-care.northshire")
    ref = f"CIN-{n}"
    return [
        involvement(SOCIAL_CARE, ref, child, lead, involvement_id=f"SC-{n}", lead=True),
        life_event(SOCIAL_CARE, ref, child, "MISSING_EPISODE", urgency="URGENT"),
        life_event(SOCIAL_CARE, ref, child, "POLICE_CUSTODY", urgency="PRIORITY"),
    ]


# Fields of an event that classify it (and may rightly be labels), rather than say who or
# which case it is about.
CLASSIFYING = {"schema", "kind", "urgency", "change", "category", "role", "agency_id", "system"}


def personal_values(records: list[dict[str, Any]]) -> set[str]:
    """Every identifier, name, address, email, phone and reference in ``records``."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key not in CLASSIFYING:
                    walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)
        elif isinstance(value, str) and len(value) >= 4:
            found.add(value)

    for record in records:
        walk(record)
    return found


async def wait_for_metric(
    worker: WorkerProcess, name: str, at_least: float, at_most: float = math.inf
) -> str:
    """The worker's exposition once the samples of ``name`` add up to between ``at_least``
    and ``at_most``."""

    async def reached() -> str | None:
        exposition = worker.metrics()
        total = metric(exposition, name)
        return exposition if total is not None and at_least <= total <= at_most else None

    return await eventually(f"{name} in [{at_least}, {at_most}]", reached, 60, worker.metrics)


async def test_a_busy_workers_metrics_pass_promtool_and_name_no_one(
    worker: WorkerProcess, mailbox: Mailbox, promtool: Path
) -> None:
    settings = worker.settings
    worker.start()
    records = a_case(341)
    await publish_records(settings, records)
    await produce_raw(settings.bootstrap, TopicNames.from_settings(settings).ingest(POLICE), [b"?"])
    await wait_for_metric(worker, "hub_emails_sent_total", 2)
    await wait_for_metric(worker, "hub_quarantined_total", 1)
    # Lag and recovery are measured at the delivery tick (every 5 s by default).
    exposition = await wait_for_metric(worker, "hub_consumer_lag_messages", 0)

    # promtool prints one line per lint problem (a counter without _total, a unit not in
    # its base form, a help text missing...) and nothing when there are none.
    assert run_promtool(promtool, "check", "metrics", stdin=exposition) == ""

    families = list(text_string_to_metric_families(exposition))
    labels = {
        (name, value) for f in families for s in f.samples for name, value in s.labels.items()
    }
    assert {name for name, _ in labels} <= BOUNDED_LABELS
    for name, value in labels:
        # The test's topic prefix and app id (changelog topics) hold a random hex string:
        # deployment, not payload.
        value = value.replace(settings.topic_prefix, "").replace(settings.app_id, "")
        for what, pattern in LOOKS_LIKE_AN_ID.items():
            assert not pattern.search(value), f"label {name}={value!r} looks like {what}"
    personal = personal_values(records)
    assert {"CIN-341", "Fenwick", person(341)["identifiers"][0]["value"]} <= personal
    for value in personal:
        assert value not in exposition, f"{value!r} from an event is in /metrics"


# -- a real Prometheus -------------------------------------------------------------------------


class PrometheusServer:
    """Debian's Prometheus on a port of its own, scraping and evaluating every second."""

    def __init__(self, folder: Path) -> None:
        self.binary = prometheus_tool("prometheus")
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, target: str, rules: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "rules.yml").write_text(rules)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": ["rules.yml"],
            "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [target]}]}],
        }
        (self.folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        with (self.folder / "prometheus.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.binary),
                    f"--config.file={self.folder / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.folder / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"prometheus did not start:\n{self.log_tail()}")
            time.sleep(0.2)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def api(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v1/{path}", timeout=5) as r:
            reply = json.loads(r.read())
        assert reply["status"] == "success", reply
        return reply["data"]

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.api("alerts")["alerts"])

    def log_tail(self, lines: int = 40) -> str:
        log = self.folder / "prometheus.log"
        text = log.read_text(errors="replace") if log.exists() else "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[PrometheusServer]:
    server = PrometheusServer(tmp_path / "prometheus")
    try:
        yield server
    finally:
        server.stop()


def with_short_waits(rules: str) -> str:
    """rules.yml with every ``for:`` at 1s: the test watches seconds, not minutes."""
    shortened, count = re.subn(r"^(\s+for:) \S+$", r"\1 1s", rules, flags=re.MULTILINE)
    assert count >= 7
    return shortened


async def wait_for_alert(
    prometheus: PrometheusServer, name: str, states: set[str]
) -> dict[str, Any]:
    async def raised() -> dict[str, Any] | None:
        return next(
            (
                alert
                for alert in prometheus.alerts()
                if alert["labels"]["alertname"] == name and alert["state"] in states
            ),
            None,
        )

    def seen() -> str:
        return f"alerts: {[(a['labels']['alertname'], a['state']) for a in prometheus.alerts()]}"

    return await eventually(f"{name} {states}", raised, 90, seen)


async def test_prometheus_scraping_a_worker_without_a_mail_server_raises_the_delivery_alerts(
    worker: WorkerProcess, prometheus: PrometheusServer
) -> None:
    settings = worker.settings
    worker.start(
        HUB_SMTP_PORT=str(free_port()),  # nothing listens there: every attempt is refused
        HUB_RETRY_BASE_S="1",
        HUB_RETRY_CAP_S="2",
        HUB_DELIVERY_TICK_S="0.5",
        # Escalate after 5 seconds of failures instead of a day.
        HUB_RETRY_HORIZON_H=str(5 / 3600),
    )
    assert worker.probe("/healthz") == 200
    target = f"127.0.0.1:{settings.metrics_port}"
    prometheus.start(target, with_short_waits((DEPLOY / "rules.yml").read_text()))
    await publish_records(settings, a_case(342))

    failing = await wait_for_alert(prometheus, "DeliveryFailing", {"pending", "firing"})
    assert failing["labels"] == {
        "alertname": "DeliveryFailing",
        "severity": "critical",
        "job": JOB,
        "instance": target,
    }
    assert float(failing["value"]) == 1.0  # nothing sent: every attempt failed
    escalated = await wait_for_alert(prometheus, "DeliveryEscalations", {"firing"})
    assert escalated["labels"]["reason"] == "retry_horizon"

    # What the rules saw is what was scraped: the worker is up, and not down in any way.
    [up] = prometheus.api(f'query?query=up{{job="{JOB}"}}')["result"]
    assert up["value"][1] == "1"
    names = {a["labels"]["alertname"] for a in prometheus.alerts()}
    assert "WorkerDown" not in names, prometheus.alerts()
    assert "UrgentAlertLate" not in names  # a few seconds late is not five minutes


async def test_an_idle_worker_nobody_probes_is_live_and_has_no_lag(
    worker: WorkerProcess, mailbox: Mailbox
) -> None:
    worker.start(HUB_STALL_S="5", HUB_DELIVERY_TICK_S="0.5")
    await publish_records(worker.settings, a_case(343))
    await wait_for_metric(worker, "hub_emails_sent_total", 2)
    # What is under test is time itself: longer than HUB_STALL_S with nothing to do.
    await asyncio.sleep(7)
    exposition = worker.metrics()
    assert metric(exposition, "hub_worker_live") == 1.0
    assert worker.probe("/healthz") == 200
    # Idle, the ingest side still sends a watermark now and then (docs/architecture.md): the
    # lag on hub.identity is 1 until the next commit, then 0 again.
    exposition = await wait_for_metric(worker, "hub_consumer_lag_messages", 0, at_most=0)
    assert metric(exposition, "hub_worker_live") == 1.0
