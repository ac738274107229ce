"""The deployment files agree with the code: checked without Docker or a cluster.

deploy/compose.yaml, deploy/kubernetes/, the Dockerfile and the Grafana dashboard name
commands, settings, ports, paths and metrics that live in the code. Nothing starts them
here (there is no Docker engine or cluster in the test run), so these tests read them and
hold every such name against the code: a renamed setting, a moved port or a metric that no
longer exists fails here instead of on the day someone deploys.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from involvement_hub.cli.main import build_parser
from involvement_hub.observability.metrics import create_metrics
from involvement_hub.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "involvement-hub.json"
ROWS = ("Is it flowing?", "Is anything late?", "Who is sending bad data?", "Is delivery failing?")
# The job the alerting rules select on (deploy/prometheus/rules.yml).
JOB = "involvement-hub"
# In a container the endpoints must listen on every interface, or neither the orchestrator's
# probes nor Prometheus can reach them.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - what the deployment files must say, not a bind


def load_yaml(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text("utf-8")) if doc is not None]


def relative(path: Path) -> str:
    return str(path.relative_to(REPO))


def is_hub_command(command: list[str]) -> bool:
    """Whether ``command`` is a real ``hub`` subcommand with arguments it accepts."""
    if not command or command[0] != "hub":
        return False
    try:
        build_parser().parse_args(command[1:])
    except SystemExit:
        return False
    return True


def settings_from(env: Mapping[str, str]) -> Settings:
    """The settings ``env`` gives; every name must be a real setting (from_env refuses
    unknown HUB_* names) and every value must parse."""
    assert all(name.startswith("HUB_") for name in env), sorted(env)
    return Settings.from_env(env)


# -- every YAML file ------------------------------------------------------------------------


YAML_FILES = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])


def test_the_deployment_files_are_found() -> None:
    names = {relative(p) for p in YAML_FILES}
    assert "deploy/compose.yaml" in names
    assert "deploy/kubernetes/statefulset.yaml" in names


@pytest.mark.parametrize("path", YAML_FILES, ids=relative)
def test_every_yaml_file_parses(path: Path) -> None:
    documents = load_yaml(path)
    assert documents, f"{relative(path)} holds no YAML document"
    assert all(isinstance(doc, dict) for doc in documents)


# -- the dashboard --------------------------------------------------------------------------

# What may appear in a PromQL expression besides metric names.
PROMQL_FUNCTIONS = frozenset(
    {"sum", "max", "min", "avg", "count", "rate", "increase", "irate", "deriv", "delta"}
    | {"histogram_quantile", "max_over_time", "min_over_time", "avg_over_time", "absent"}
    | {"clamp_min", "clamp_max", "abs", "vector", "scalar", "topk", "bottomk"}
)
PROMQL_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
PROMQL_OPERATORS = frozenset({"and", "or", "unless", "offset", "bool"})
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.$])([A-Za-z_:][\w:]*)(\s*\()?")


def promql_metrics(expr: str) -> set[str]:
    """The metric names an expression selects (label matchers, ranges, groupings and
    functions taken out). An unknown function is an error, so a typo cannot hide."""
    text = _MATCHERS.sub(" ", _STRING.sub('""', expr))
    text = _GROUPING.sub(" ", _RANGE.sub(" ", text))
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word, call = match.group(1), match.group(2)
        if call:
            assert word in PROMQL_FUNCTIONS, f"unknown PromQL function {word!r} in {expr}"
        elif word not in PROMQL_KEYWORDS | PROMQL_OPERATORS:
            names.add(word)
    return names


def exported_series() -> set[str]:
    """Every series name the hub's metrics produce (``create_metrics``), as PromQL sees it."""
    names = set()
    for family in create_metrics().registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count")}
        else:
            names.add(family.name)
    return names


def test_promql_metrics_sees_through_promql() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, urgency) (rate(a_bucket{x=~"$i", y!~".*-z"}'
        "[$__rate_interval]))) / (b_total or c * 0) and on (topic) d offset 5m > 1e3"
    )
    assert promql_metrics(expr) == {"a_bucket", "b_total", "c", "d"}
    with pytest.raises(AssertionError, match="unknown PromQL function"):
        promql_metrics("rat(a_total[5m])")


def test_exported_series_follow_the_naming_conventions() -> None:
    series = exported_series()
    assert "hub_events_consumed_total" in series
    assert "hub_end_to_end_latency_seconds_bucket" in series
    assert "hub_worker_ready" in series
    assert not any(name.endswith("_total_total") for name in series)


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text("utf-8"))
    return data


def panel_expressions(dashboard: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def test_dashboard_rows_follow_the_on_call_questions(dashboard: dict[str, Any]) -> None:
    rows = [p for p in dashboard["panels"] if p["type"] == "row"]
    assert tuple(r["title"] for r in rows) == ROWS
    assert dashboard["panels"][0]["type"] == "row"
    # Grafana lays panels out by position: each panel must sit below its own row's header
    # and above the next one.
    tops = [r["gridPos"]["y"] for r in rows] + [10**9]
    current = -1
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            current += 1
            continue
        y = panel["gridPos"]["y"]
        assert tops[current] < y < tops[current + 1], panel["title"]


def test_each_row_answers_its_question(dashboard: dict[str, Any]) -> None:
    needed = {
        ROWS[0]: {
            "hub_events_consumed_total",
            "hub_alerts_routed_total",
            "hub_emails_sent_total",
            "hub_worker_ready",
            "hub_worker_live",
            "hub_build_info",
        },
        ROWS[1]: {
            "hub_end_to_end_latency_seconds_bucket",
            "hub_delivery_oldest_pending_age_seconds",
            "hub_consumer_lag_messages",
            "hub_table_recovery_remaining_messages",
        },
        ROWS[2]: {
            "hub_quarantined_total",
            "hub_decode_failures_total",
            "hub_identifiers_rejected_total",
            "hub_routing_decisions_total",
        },
        ROWS[3]: {
            "hub_emails_failed_total",
            "hub_delivery_retries_total",
            "hub_delivery_escalations_total",
            "hub_delivery_pending",
            "hub_digest_size_alerts_bucket",
            "hub_emails_duplicate_skipped_total",
        },
    }
    used: dict[str, set[str]] = {}
    row = ""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            row = panel["title"]
            continue
        for target in panel.get("targets", []):
            used.setdefault(row, set()).update(promql_metrics(target["expr"]))
    for title, metrics in needed.items():
        assert metrics <= used.get(title, set()), (title, metrics - used.get(title, set()))


def test_dashboard_uses_only_metrics_the_hub_exports(dashboard: dict[str, Any]) -> None:
    series = exported_series()
    expressions = list(panel_expressions(dashboard))
    assert len(expressions) >= 20
    for title, expr in expressions:
        names = promql_metrics(expr)
        assert names, f"{title}: no metric in {expr}"
        assert names <= series, f"{title}: {sorted(names - series)} not exported by the hub"
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if variable["type"] == "query":
            text = query["query"] if isinstance(query, dict) else query
            # label_values(<series selector>, <label>): the second argument is a label.
            selector = re.fullmatch(r"label_values\((.+),\s*\w+\)", text)
            assert selector, text
            assert promql_metrics(selector.group(1)) <= series, variable["name"]


def test_dashboard_takes_its_datasource_from_a_variable(dashboard: dict[str, Any]) -> None:
    assert 36 <= dashboard["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    wanted = {"type": "prometheus", "uid": "${datasource}"}
    ids = []
    for panel in dashboard["panels"]:
        ids.append(panel["id"])
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == wanted, panel["title"]
        assert all(t["datasource"] == wanted for t in panel["targets"]), panel["title"]
    assert len(ids) == len(set(ids))


def test_grafana_provisioning_loads_the_dashboard() -> None:
    (provider,) = load_yaml(DEPLOY / "grafana/provisioning/dashboards/involvement-hub.yaml")[0][
        "providers"
    ]
    (datasource,) = load_yaml(DEPLOY / "grafana/provisioning/datasources/prometheus.yaml")[0][
        "datasources"
    ]
    assert datasource["type"] == "prometheus"
    grafana = compose_services()["grafana"]
    mounts = bind_mounts(grafana)
    assert mounts[provider["options"]["path"]] == DASHBOARD.parent
    assert mounts["/etc/grafana/provisioning"] == DEPLOY / "grafana/provisioning"
    host, _, port = datasource["url"].removeprefix("http://").partition(":")
    assert host in compose_services()
    assert port == "9090"


# -- compose ---------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    (document,) = load_yaml(DEPLOY / "compose.yaml")
    return dict(document)


def compose_services() -> dict[str, dict[str, Any]]:
    return dict(compose()["services"])


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {name: str(value) for name, value in env.items()}


def bind_mounts(service: Mapping[str, Any]) -> dict[str, Path]:
    """Container path -> host path, for the service's bind mounts (relative to deploy/)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            mounts[target] = (DEPLOY / source).resolve()
    return mounts


def container_ports(service: Mapping[str, Any]) -> list[int]:
    ports = []
    for spec in service.get("ports", []):
        container = str(spec).rsplit(":", 1)[-1].split("/")[0]
        ports.append(int(container))
    ports += [int(p) for p in service.get("expose", [])]
    return ports


def hub_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose_services().items()
        if service.get("command", [None])[0] == "hub"
    }


def workers() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in hub_services().items() if s["command"][:2] == ["hub", "worker"]}


def test_compose_runs_real_hub_commands() -> None:
    services = hub_services()
    assert {tuple(s["command"]) for s in services.values()} == {
        ("hub", "topics"),
        ("hub", "worker"),
    }
    for name, service in services.items():
        assert is_hub_command(service["command"]), name


def test_compose_runs_at_least_two_workers_in_one_consumer_group() -> None:
    found = workers()
    replicas = sum(s.get("deploy", {}).get("replicas", 1) for s in found.values())
    assert replicas >= 2
    app_ids = {settings_from(environment(s)).app_id for s in hub_services().values()}
    assert len(app_ids) == 1


def test_compose_hub_environment_is_known_settings() -> None:
    for name, service in hub_services().items():
        env = environment(service)
        settings = settings_from(env)
        # Stated, not inherited from the image: the compose file says how the hub runs.
        for needed in ("HUB_KAFKA_BOOTSTRAP", "HUB_SMTP_HOST", "HUB_SMTP_PORT", "HUB_APP_ID"):
            assert needed in env, (name, needed)
        assert settings.metrics_host == ALL_INTERFACES, (
            f"{name}: endpoints unreachable from outside"
        )


def test_compose_topics_service_shapes_topics_as_the_workers_do() -> None:
    services = hub_services()
    shaping = ("topic_prefix", "agencies", "partitions", "replication_factor", "kafka_bootstrap")
    shapes = {
        tuple(getattr(settings_from(environment(s)), field) for field in shaping)
        for s in services.values()
    }
    assert len(shapes) == 1


def test_compose_worker_ports_are_the_metrics_port() -> None:
    for name, service in workers().items():
        port = settings_from(environment(service)).metrics_port
        assert container_ports(service), f"{name} publishes no port"
        assert set(container_ports(service)) == {port}, name


def test_compose_workers_reach_kafka_on_an_advertised_listener() -> None:
    kafka_env = environment(compose_services()["kafka"])
    advertised = {
        listener.split("//", 1)[1]
        for listener in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    }
    for service in hub_services().values():
        assert settings_from(environment(service)).kafka_bootstrap in advertised
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert kafka_env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_compose_mail_catcher_listens_where_the_workers_send() -> None:
    services = compose_services()
    (catcher,) = [
        n for n, s in services.items() if s.get("image", "").startswith("axllent/mailpit")
    ]
    bind = environment(services[catcher])["MP_SMTP_BIND_ADDR"]
    for name, service in workers().items():
        settings = settings_from(environment(service))
        assert settings.smtp_host == catcher, name
        assert bind.rsplit(":", 1)[1] == str(settings.smtp_port), name
        # Mailpit offers no STARTTLS here; only this file may say plain.
        assert settings.smtp_security == "plain", name


def test_compose_bind_mounts_exist() -> None:
    for name, service in compose_services().items():
        for target, source in bind_mounts(service).items():
            assert source.exists(), f"{name}: {source} (for {target}) does not exist"
        build = service.get("build")
        if build:
            assert (DEPLOY / build["context"] / build["dockerfile"]).is_file(), name


def test_compose_mounts_the_files_the_workers_are_told_to_read() -> None:
    for name, service in workers().items():
        settings = settings_from(environment(service))
        mounts = bind_mounts(service)
        assert mounts[str(settings.policy_file.parent)] == REPO / "governance", name
        assert mounts[str(settings.subscriptions_dir)] == REPO / "subscriptions", name


# -- Prometheus in compose -------------------------------------------------------------------


def prometheus_config() -> dict[str, Any]:
    (config,) = load_yaml(DEPLOY / "prometheus/prometheus.yml")
    return dict(config)


def test_prometheus_scrapes_every_worker_on_its_metrics_port() -> None:
    (job,) = [j for j in prometheus_config()["scrape_configs"] if j["job_name"] == JOB]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = set()
    for dns in job.get("dns_sd_configs", []):
        targets |= {(name, int(dns["port"])) for name in dns["names"]}
    for static in job.get("static_configs", []):
        for target in static["targets"]:
            host, _, port = target.rpartition(":")
            targets.add((host, int(port)))
    expected = {(name, settings_from(environment(s)).metrics_port) for name, s in workers().items()}
    assert targets == expected


def test_prometheus_service_loads_its_config_and_rules() -> None:
    service = compose_services()["prometheus"]
    flags = dict(arg.split("=", 1) for arg in service["command"] if "=" in arg)
    config_path = PurePosixPath(flags["--config.file"])
    mounts = bind_mounts(service)
    assert mounts[str(config_path)] == DEPLOY / "prometheus/prometheus.yml"
    for rule_file in prometheus_config().get("rule_files", []):
        in_container = config_path.parent / rule_file
        assert str(in_container) in mounts, f"{rule_file} is not mounted at {in_container}"
        assert mounts[str(in_container)].is_file()


# -- Kubernetes ------------------------------------------------------------------------------


def kubernetes_objects() -> dict[tuple[str, str], dict[str, Any]]:
    objects = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in load_yaml(path):
            objects[(doc["kind"], doc["metadata"]["name"])] = doc
    return objects


def statefulset() -> dict[str, Any]:
    return kubernetes_objects()[("StatefulSet", "hub")]


def worker_container() -> dict[str, Any]:
    (container,) = statefulset()["spec"]["template"]["spec"]["containers"]
    return dict(container)


def pod_labels() -> dict[str, str]:
    return dict(statefulset()["spec"]["template"]["metadata"]["labels"])


def kubernetes_settings() -> Settings:
    env = {}
    for var in worker_container()["env"]:
        # Secret values are not in the manifests; any value stands in for them.
        env[var["name"]] = var.get("value", "from-a-secret")
    return settings_from(env)


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    (kustomization,) = load_yaml(KUBERNETES / "kustomization.yaml")
    listed = set(kustomization["resources"])
    present = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present - {"secret.example.yaml"}
    assert all(doc["metadata"]["namespace"] == "involvement-hub" for doc in namespaced())


def namespaced() -> list[dict[str, Any]]:
    return [doc for (kind, _), doc in kubernetes_objects().items() if kind != "Namespace"]


def test_kubernetes_worker_runs_a_real_hub_command() -> None:
    assert worker_container()["command"] == ["hub", "worker"]
    assert is_hub_command(worker_container()["command"])


def test_kubernetes_env_is_known_settings() -> None:
    settings = kubernetes_settings()
    assert settings.metrics_host == ALL_INTERFACES
    assert settings.smtp_security == "starttls"
    assert settings.store == "rocksdb://"
    assert settings.replication_factor >= 3


def test_kubernetes_secrets_come_from_the_secret_and_are_placeholders() -> None:
    secret = kubernetes_objects()[("Secret", "hub-secrets")]
    from_secret = {
        var["name"]: var["valueFrom"]["secretKeyRef"]
        for var in worker_container()["env"]
        if "valueFrom" in var
    }
    assert set(from_secret) == {"HUB_SMTP_PASSWORD", "HUB_PSEUDONYM_KEY"}
    for ref in from_secret.values():
        assert ref["name"] == "hub-secrets"
        assert ref["key"] in secret["stringData"]
    assert set(secret["stringData"].values()) == {"REPLACE-ME"}


def test_kubernetes_probes_use_the_health_endpoints_on_the_metrics_port() -> None:
    container = worker_container()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == kubernetes_settings().metrics_port
    paths = {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    for probe, path in paths.items():
        get = container[probe]["httpGet"]
        assert get["path"] == path, probe
        assert get["port"] in ("metrics", ports["metrics"]), probe
    startup = container["startupProbe"]
    # The endpoints answer only after the first table recovery: allow it minutes.
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600


def test_kubernetes_worker_has_resources_and_runs_unprivileged() -> None:
    container = worker_container()
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), kind
    pod = statefulset()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_kubernetes_volumes_hold_what_the_settings_point_at() -> None:
    settings = kubernetes_settings()
    mounts = {m["mountPath"]: m["name"] for m in worker_container()["volumeMounts"]}
    claims = {t["metadata"]["name"] for t in statefulset()["spec"]["volumeClaimTemplates"]}
    assert mounts[str(settings.state_dir)] in claims
    volumes = {v["name"]: v for v in statefulset()["spec"]["template"]["spec"]["volumes"]}
    objects = kubernetes_objects()

    def configmap_at(path: Path) -> dict[str, Any]:
        volume = volumes[mounts[str(path)]]
        return objects[("ConfigMap", volume["configMap"]["name"])]

    assert settings.policy_file.name in configmap_at(settings.policy_file.parent)["data"]
    assert settings.vocabulary_path.name in configmap_at(settings.vocabulary_path.parent)["data"]
    assert "rules.toml" in configmap_at(settings.subscriptions_dir)["data"]


def test_kubernetes_configmaps_hold_the_repository_files() -> None:
    objects = kubernetes_objects()
    governance = objects[("ConfigMap", "hub-governance")]["data"]
    subscriptions = objects[("ConfigMap", "hub-subscriptions")]["data"]
    assert set(governance) == {"policy.toml", "vocabulary.toml"}
    assert set(subscriptions) == {p.name for p in (REPO / "subscriptions").glob("*.toml")}
    stale = [
        f"{folder}/{key}"
        for folder, data in (("governance", governance), ("subscriptions", subscriptions))
        for key, text in data.items()
        if (REPO / folder / key).read_text("utf-8") != text
    ]
    assert not stale, f"regenerate deploy/kubernetes/configmap.yaml (deploy/README.md): {stale}"


def test_kubernetes_selectors_find_the_workers() -> None:
    labels = pod_labels().items()
    objects = kubernetes_objects()
    service = objects[("Service", "hub-workers")]
    assert service["spec"]["selector"].items() <= labels
    assert statefulset()["spec"]["serviceName"] == "hub-workers"
    assert {p["targetPort"] for p in service["spec"]["ports"]} == {"metrics"}
    budget = objects[("PodDisruptionBudget", "hub-workers")]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels
    monitor = objects[("PodMonitor", "involvement-hub")]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels
    assert {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]} == {"metrics"}
    # The alerting rules select job="involvement-hub": the PodMonitor names the job so.
    assert pod_labels()[monitor["spec"]["jobLabel"]] == JOB


# -- the image -------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of each Dockerfile line, continuations joined."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text("utf-8"))
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def dockerfile_env() -> dict[str, str]:
    env = {}
    for instruction, args in dockerfile():
        if instruction == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(args))
    return env


def test_image_runs_a_real_hub_command() -> None:
    (cmd,) = [json.loads(args) for instruction, args in dockerfile() if instruction == "CMD"]
    assert cmd == ["hub", "worker"]
    assert is_hub_command(cmd)


def test_image_exposes_the_metrics_port_and_checks_health() -> None:
    exposed = [args for instruction, args in dockerfile() if instruction == "EXPOSE"]
    assert exposed == [str(Settings().metrics_port)]
    settings = settings_from({k: v for k, v in dockerfile_env().items() if k.startswith("HUB_")})
    assert settings.metrics_port == Settings().metrics_port
    assert settings.metrics_host == ALL_INTERFACES
    (healthcheck,) = [args for instruction, args in dockerfile() if instruction == "HEALTHCHECK"]
    assert "/healthz" in healthcheck


def test_image_is_slim_unprivileged_and_holds_no_secret() -> None:
    instructions = dockerfile()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    (user,) = [args for instruction, args in instructions if instruction == "USER"]
    assert user.split(":")[0] not in ("root", "0")
    assert not {"HUB_SMTP_PASSWORD", "HUB_PSEUDONYM_KEY"} & set(dockerfile_env())
    assert not any(i == "ARG" for i, _ in instructions)  # build arguments end up in the image


def test_image_holds_the_files_its_settings_point_at() -> None:
    workdir = PurePosixPath("/")
    copied: dict[PurePosixPath, Path] = {}
    for instruction, args in dockerfile():
        if instruction == "WORKDIR":
            workdir = workdir / args
        elif instruction == "COPY":
            *sources, dest = args.split()
            if len(sources) == 1:
                copied[workdir / dest.rstrip("/")] = REPO / sources[0]
    settings = settings_from({k: v for k, v in dockerfile_env().items() if k.startswith("HUB_")})
    for path in (settings.policy_file, settings.subscriptions_dir / "rules.toml"):
        posix = PurePosixPath(path)
        (root,) = [c for c in copied if posix.is_relative_to(c)]
        assert (copied[root] / posix.relative_to(root)).is_file(), path
    assert settings.schema_dir is not None
    assert PurePosixPath(settings.schema_dir) in copied


def test_dockerignore_lets_in_only_what_the_image_copies() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"  # everything out, then only what is named
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert not allowed & {".hub", ".venv", "tests", ".git"}
    for instruction, args in dockerfile():
        if instruction == "COPY":
            for source in args.split()[:-1]:
                assert source.rstrip("/") in allowed, f"COPY {source} is excluded by .dockerignore"


# -- the runbook -----------------------------------------------------------------------------

RUNBOOK = REPO / "docs" / "operations.md"


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the headings of ``markdown``."""
    found = set()
    for heading in re.findall(r"^#{1,6} (.+)$", markdown, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def test_runbook_has_a_section_for_every_alert() -> None:
    (rules,) = load_yaml(DEPLOY / "prometheus/rules.yml")
    sections = anchors(RUNBOOK.read_text("utf-8"))
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert alerts
    for group in rules["groups"]:
        for rule in group["rules"]:
            url = rule["annotations"]["runbook_url"]
            page, _, anchor = url.partition("#")
            assert page.endswith("docs/operations.md"), url
            assert anchor == rule["alert"].lower(), url
            assert anchor in sections, f"docs/operations.md has no section #{anchor}"


def test_runbook_links_and_commands_are_real() -> None:
    text = RUNBOOK.read_text("utf-8")
    sections = anchors(text)
    for anchor in re.findall(r"\]\(#([^)]+)\)", text):
        assert anchor in sections, f"#{anchor}"
    code = " ".join(re.findall(r"```.*?```|`[^`\n]+`", text, flags=re.DOTALL))
    commands = set(re.findall(r"(?:^|[\s(`])hub ([a-z]+)", code, flags=re.MULTILINE))
    assert {"delivery", "audit", "quarantine", "identity", "topics"} <= commands
    for command in commands:
        assert is_subcommand(command), f"`hub {command}` is not a hub command"


def is_subcommand(name: str) -> bool:
    """Whether ``hub NAME`` exists (its own arguments may still be missing)."""
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors), contextlib.suppress(SystemExit):
        build_parser().parse_args([name])
    return "invalid choice" not in errors.getvalue()
