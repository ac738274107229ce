"""The hub's one settings object, read once from ``HUB_*`` environment variables.

Nothing else in the hub reads the environment: :meth:`Settings.from_env` is called by the
command line and the result is passed down. Secrets are :class:`Secret` values, whose repr
never shows them. Every variable's meaning is in ``DESCRIPTIONS`` (the README's
configuration table is checked against it by a unit test).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from .errors import SettingsError
from .limits import MAX_DECODED_BYTES

# The source checkout, for development-only files such as deploy/local/pom.xml. Runtime
# files (policy, rules, state) are found relative to the working directory instead.
REPO_ROOT: Final = Path(__file__).resolve().parents[2]

DEFAULT_AGENCIES: Final = (
    "northshire-social-care",
    "northshire-early-help",
    "northshire-police",
    "northshire-health",
    "northshire-housing",
    "northshire-youth-justice",
    "northshire-drug-alcohol",
    "oakfield-primary",
    "riverside-academy",
)
_AGENCY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
# A Kafka group id and the prefix of topic names, and a folder name under HUB_STATE_DIR.
_APP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
SMTP_SECURITY_MODES: Final = ("starttls", "tls", "plain")
KAFKA_PROTOCOLS: Final = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS: Final = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
MIN_STALL_S: Final = 5.0  # Faust commits offsets every 2.8 s
# A broker refuses a session shorter than its group.min.session.timeout.ms (6 s unless
# changed); Faust refuses one longer than its request timeout (90 s).
MIN_SESSION_TIMEOUT_S: Final = 6.0
MAX_SESSION_TIMEOUT_S: Final = 90.0
# Faust's own heartbeat interval, kept while it is at most a third of the session.
HEARTBEAT_S: Final = 3.0


class Secret:
    """A string that is never shown by ``repr`` or ``str``; call :meth:`reveal`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    """Everything the hub can be configured with. See the README for the table."""

    # Kafka
    kafka_bootstrap: str = ""
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_username: str = ""
    kafka_password: Secret = field(default_factory=lambda: Secret(""))
    kafka_ca_file: Path | None = None
    local_kafka_port: int = 19092
    local_kafka_controller_port: int = 19093
    topic_prefix: str = ""
    app_id: str = "involvement-hub"
    instance_id: str = ""
    session_timeout_s: float = 15.0
    standby_replicas: int = 1
    agencies: tuple[str, ...] = DEFAULT_AGENCIES
    partitions: int = 4
    replication_factor: int = 1
    store: str = "memory://"
    max_message_bytes: int = 256 * 1024
    # Files and folders (relative paths are relative to the working directory)
    state_dir: Path = Path(".hub")
    schema_dir: Path | None = None
    policy_file: Path = Path("governance/policy.toml")
    vocabulary_file: Path | None = None  # None: vocabulary.toml beside the policy file
    subscriptions_dir: Path = Path("subscriptions")
    # Observability
    metrics_port: int = 9464
    metrics_host: str = "127.0.0.1"
    log_level: str = "info"
    # Email
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 587
    smtp_security: str = "starttls"
    smtp_username: str = ""
    smtp_password: Secret = field(default_factory=lambda: Secret(""))
    smtp_ca_file: Path | None = None
    smtp_timeout_s: float = 30.0
    smtp_connections: int = 4
    mail_from: str = "involvement-hub@hub.invalid"
    # Delivery
    delivery_tick_s: float = 5.0
    stall_s: float = 300.0
    retry_base_s: float = 30.0
    retry_cap_s: float = 1800.0
    retry_horizon_h: float = 24.0
    # Local mailbox (the demo's SMTP server)
    mailbox_port: int = 2525
    # Governance
    involvement_retention_days: int = 90
    # Identity
    pseudonym_key: Secret = field(default_factory=lambda: Secret("dev-only-pseudonym-key"))

    @property
    def bootstrap(self) -> str:
        """The broker to use: the configured one, else the local broker's port."""
        return self.kafka_bootstrap or f"127.0.0.1:{self.local_kafka_port}"

    @property
    def heartbeat_interval_s(self) -> float:
        """How often the worker tells its group it is alive: Faust's 3 s, or a third of a
        session shorter than 9 s, so two heartbeats can go missing before it expires."""
        return min(HEARTBEAT_S, self.session_timeout_s / 3)

    @property
    def mailbox_dir(self) -> Path:
        return self.state_dir / "mailbox"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``HUB_*`` variables; unknown ``HUB_*`` names are an error (typos bite)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        known = {f"HUB_{f.name.upper()}": f for f in dataclasses.fields(cls)}
        for name, raw in env.items():
            if not name.startswith("HUB_") or name in _NOT_SETTINGS:
                continue
            spec = known.get(name)
            if spec is None:
                raise SettingsError(f"unknown setting {name}; see the README's table")
            values[spec.name] = _parse(spec.name, raw)
        settings = cls(**values)
        settings.validate()
        return settings

    def as_environment(self) -> dict[str, str]:
        """These settings as ``HUB_*`` variables, for a child process (reveals secrets)."""
        env = {}
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            if value is None:
                continue
            if isinstance(value, Secret):
                value = value.reveal()
            elif isinstance(value, tuple):
                value = ",".join(value)
            env[f"HUB_{spec.name.upper()}"] = str(value)
        return env

    @property
    def vocabulary_path(self) -> Path:
        """The emails' vocabulary: ``HUB_VOCABULARY_FILE``, else beside the policy file
        (the governance files travel together: a ConfigMap, a compose bind mount)."""
        return self.vocabulary_file or self.policy_file.with_name("vocabulary.toml")

    def replace(self, **changes: Any) -> Settings:
        updated = dataclasses.replace(self, **changes)
        updated.validate()
        return updated

    def validate(self) -> None:
        if not _APP_ID.match(self.app_id):
            raise SettingsError(
                f"HUB_APP_ID: {self.app_id!r} is not a valid application id (letters, digits, "
                "'.', '_' and '-', starting with a letter or digit, at most 200 characters)"
            )
        if self.instance_id and not _APP_ID.match(self.instance_id):
            raise SettingsError(
                f"HUB_INSTANCE_ID: {self.instance_id!r} is not a valid id (letters, digits, "
                "'.', '_' and '-', starting with a letter or digit, at most 200 characters)"
            )
        for agency in self.agencies:
            if not _AGENCY_ID.match(agency):
                raise SettingsError(
                    f"HUB_AGENCIES: {agency!r} is not a valid agency id "
                    "(lower-case letters, digits and hyphens, 2-63 characters)"
                )
        if self.kafka_security_protocol not in KAFKA_PROTOCOLS:
            raise SettingsError(
                f"HUB_KAFKA_SECURITY_PROTOCOL must be one of {', '.join(KAFKA_PROTOCOLS)}"
            )
        if self.kafka_sasl_mechanism not in KAFKA_SASL_MECHANISMS:
            raise SettingsError(
                f"HUB_KAFKA_SASL_MECHANISM must be one of {', '.join(KAFKA_SASL_MECHANISMS)}"
            )
        if self.smtp_security not in SMTP_SECURITY_MODES:
            raise SettingsError(
                f"HUB_SMTP_SECURITY must be one of {', '.join(SMTP_SECURITY_MODES)}, "
                f"not {self.smtp_security!r}"
            )
        if self.partitions < 1:
            raise SettingsError("HUB_PARTITIONS must be at least 1")
        if not 0 < self.max_message_bytes <= MAX_DECODED_BYTES:
            # A message up to this size is quarantined whole: with its key and the hub's
            # headers it must still fit what the hub's producer may send.
            raise SettingsError(
                f"HUB_MAX_MESSAGE_BYTES must be between 1 and {MAX_DECODED_BYTES}, "
                f"not {self.max_message_bytes}"
            )
        if self.stall_s < MIN_STALL_S:
            # Faust commits offsets every 2.8 s: a shorter window fails /healthz between
            # two commits of a worker that is busy and well.
            raise SettingsError(
                f"HUB_STALL_S must be at least {MIN_STALL_S:g} seconds, not {self.stall_s:g}"
            )
        if not MIN_SESSION_TIMEOUT_S <= self.session_timeout_s <= MAX_SESSION_TIMEOUT_S:
            raise SettingsError(
                f"HUB_SESSION_TIMEOUT_S must be between {MIN_SESSION_TIMEOUT_S:g} and "
                f"{MAX_SESSION_TIMEOUT_S:g} seconds, not {self.session_timeout_s:g}"
            )
        if self.standby_replicas < 0:
            raise SettingsError(
                f"HUB_STANDBY_REPLICAS must be 0 or more, not {self.standby_replicas}"
            )
        if not self.store.startswith(("memory://", "rocksdb://")):
            raise SettingsError("HUB_STORE must be memory:// or rocksdb://")
        for name in ("local_kafka_port", "local_kafka_controller_port", "mailbox_port"):
            port = getattr(self, name)
            if not 0 < port < 65536:
                raise SettingsError(f"HUB_{name.upper()} must be a TCP port, not {port}")


DESCRIPTIONS: Final = {
    "kafka_bootstrap": "Kafka bootstrap servers (host:port,...). Empty: the local broker.",
    "kafka_security_protocol": "PLAINTEXT (local only), SSL, SASL_PLAINTEXT or SASL_SSL.",
    "kafka_sasl_mechanism": "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, for SASL protocols.",
    "kafka_username": "The hub's Kafka principal, for SASL.",
    "kafka_password": "Its password (secret; never logged).",
    "kafka_ca_file": "CA bundle (PEM) to verify the brokers; empty: the system's CAs.",
    "local_kafka_port": "Port of the local development broker (`hub kafka`).",
    "local_kafka_controller_port": "KRaft controller port of the local development broker.",
    "topic_prefix": "Prefix for every topic name, to share a cluster between hubs or test runs.",
    "app_id": "Faust application id: the consumer group and the prefix of changelog topics.",
    "instance_id": (
        "This worker's static group membership id, stable across its restarts and unique in "
        "its group, so a restarted worker takes its partitions back at once. Empty: "
        "`<host name>-<HUB_APP_ID>`; set it when several workers of one app share a host."
    ),
    "session_timeout_s": (
        "Seconds (6-90) the broker waits for a worker that stopped answering, a `kill -9` or a "
        "lost node, before its partitions move to the other workers."
    ),
    "standby_replicas": (
        "Standby copies of each table partition kept up to date on other workers, to take over "
        "from (with `rocksdb://`; the memory store keeps none). 0: none."
    ),
    "agencies": "Comma-separated agency ids; each publishes to `ingest.<agency_id>`.",
    "partitions": "Partitions of the keyed hub topics and tables (the scale-out unit).",
    "replication_factor": "Replication factor for topics the hub creates (3 in production).",
    "store": "Table store: `memory://` (state rebuilt from changelogs) or `rocksdb://`.",
    "max_message_bytes": "Largest ingest message decoded; larger ones are quarantined.",
    "state_dir": "Local state: broker jars, data and logs, table stores, the demo mailbox.",
    "schema_dir": "Folder of `*.avsc` writer schemas. Empty: the schemas shipped with the hub.",
    "policy_file": "The governance policy (TOML).",
    "vocabulary_file": (
        "The words of the emails for the hub's codes (TOML). "
        "Empty: `vocabulary.toml` beside the policy file."
    ),
    "subscriptions_dir": "Folder holding the subscription rules (`rules.toml`).",
    "metrics_port": "Port of `/metrics`, `/healthz` and `/readyz`; 0 turns them off.",
    "metrics_host": "Address the metrics and health endpoints listen on.",
    "log_level": "Worker log level: debug, info, warning, error.",
    "smtp_host": "Mail server for alerts.",
    "smtp_port": "Mail server port.",
    "smtp_security": "`starttls` (required, verified), `tls` (implicit) or `plain` (local only).",
    "smtp_username": "SMTP login user; empty for no login.",
    "smtp_password": "SMTP login password (secret; never logged).",
    "smtp_ca_file": "CA bundle (PEM) to verify the mail server; empty: the system's CAs.",
    "smtp_timeout_s": "Seconds before an SMTP connection or command times out.",
    "smtp_connections": "SMTP connections each worker keeps open and uses at once.",
    "delivery_tick_s": "Seconds between checks for due retries and closed digest windows.",
    "stall_s": "Seconds (at least 5) without committed progress, while there is work, "
    "before /healthz fails.",
    "retry_base_s": "Delay before the first retry of a transient failure; it doubles each time.",
    "retry_cap_s": "Longest delay between two retries.",
    "retry_horizon_h": "Hours of transient failures after which an alert is escalated.",
    "mail_from": "Sender address of alerts; its domain ends every Message-ID.",
    "mailbox_port": "Port of the local mailbox (`hub mailbox`, `hub demo`).",
    "involvement_retention_days": "Days an ended involvement is kept (for audit), then forgotten.",
    "pseudonym_key": "Secret key for hub person ids (HMAC of identifiers). Set it in production.",
}

# Variables that start with HUB_ but belong to the test fixtures, not to the hub.
_NOT_SETTINGS: Final = frozenset({"HUB_TEST_BOOTSTRAP", "HUB_TEST_KAFKA_PORT"})


def _parse(name: str, raw: str) -> Any:
    hint = Settings.__dataclass_fields__[name].type
    try:
        if name in ("smtp_password", "pseudonym_key", "kafka_password"):
            return Secret(raw)
        if name == "agencies":
            return tuple(a.strip() for a in raw.split(",") if a.strip())
        if hint in ("int",):
            return int(raw)
        if hint in ("float",):
            return float(raw)
        if hint == "Path | None":
            return Path(raw).expanduser() if raw else None
        if hint == "Path":
            if not raw:
                raise SettingsError(f"HUB_{name.upper()} must name a path; it is empty")
            return Path(raw).expanduser()
    except ValueError as exc:
        raise SettingsError(f"HUB_{name.upper()}: cannot read {raw!r} as {hint}") from exc
    return raw
