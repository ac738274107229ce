"""The one settings object (settings.py): HUB_* variables, validation, secrets kept secret."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from involvement_hub.errors import ConfigError, SettingsError
from involvement_hub.settings import DEFAULT_AGENCIES, DESCRIPTIONS, Secret, Settings


def test_no_variables_give_the_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.agencies == DEFAULT_AGENCIES
    assert settings.smtp_security == "starttls"
    assert settings.policy_file == Path("governance/policy.toml")
    assert settings.bootstrap == "127.0.0.1:19092"


def test_other_variables_are_ignored() -> None:
    env = {"PATH": "/usr/bin", "HUBRIS": "x", "HUB_TEST_BOOTSTRAP": "127.0.0.1:1"}
    assert Settings.from_env(env) == Settings()


@pytest.mark.parametrize(
    ("name", "raw", "field", "value"),
    [
        ("HUB_PARTITIONS", "12", "partitions", 12),
        ("HUB_MAX_MESSAGE_BYTES", "1024", "max_message_bytes", 1024),
        ("HUB_SMTP_TIMEOUT_S", "2.5", "smtp_timeout_s", 2.5),
        ("HUB_KAFKA_BOOTSTRAP", "broker.example:9092", "kafka_bootstrap", "broker.example:9092"),
        ("HUB_STATE_DIR", "/srv/hub", "state_dir", Path("/srv/hub")),
        ("HUB_SCHEMA_DIR", "schemas", "schema_dir", Path("schemas")),
        ("HUB_SCHEMA_DIR", "", "schema_dir", None),
        ("HUB_SMTP_CA_FILE", "/etc/ca.pem", "smtp_ca_file", Path("/etc/ca.pem")),
        ("HUB_STORE", "rocksdb://", "store", "rocksdb://"),
        ("HUB_SESSION_TIMEOUT_S", "20", "session_timeout_s", 20.0),
        ("HUB_STANDBY_REPLICAS", "0", "standby_replicas", 0),
        ("HUB_SMTP_SECURITY", "tls", "smtp_security", "tls"),
        ("HUB_SMTP_SECURITY", "plain", "smtp_security", "plain"),
        (
            "HUB_AGENCIES",
            " oakfield-primary, ,northshire-police ",
            "agencies",
            ("oakfield-primary", "northshire-police"),
        ),
        ("HUB_SMTP_PASSWORD", "hunter2", "smtp_password", Secret("hunter2")),
        ("HUB_PSEUDONYM_KEY", "k3y", "pseudonym_key", Secret("k3y")),
    ],
)
def test_each_variable_is_read_as_its_type(name: str, raw: str, field: str, value: object) -> None:
    settings = Settings.from_env({name: raw})
    assert getattr(settings, field) == value
    assert type(getattr(settings, field)) is type(value)


def test_each_default_reads_back_as_itself() -> None:
    for spec in dataclasses.fields(Settings):
        name = f"HUB_{spec.name.upper()}"
        value = Settings().as_environment().get(name)
        if value is not None:
            assert Settings.from_env({name: value}) == Settings(), name


def test_a_kafka_bootstrap_overrides_the_local_broker() -> None:
    settings = Settings.from_env({"HUB_KAFKA_BOOTSTRAP": "broker.example:9092"})
    assert settings.bootstrap == "broker.example:9092"


def test_an_unknown_hub_variable_is_named() -> None:
    with pytest.raises(SettingsError, match="unknown setting HUB_PARTITONS"):
        Settings.from_env({"HUB_PARTITONS": "4"})


@pytest.mark.parametrize(
    ("name", "raw"),
    [("HUB_PARTITIONS", "four"), ("HUB_MAILBOX_PORT", "25.5"), ("HUB_SMTP_TIMEOUT_S", "soon")],
)
def test_a_number_that_is_not_one_is_named(name: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(f"{name}: cannot read '{raw}'")):
        Settings.from_env({name: raw})


@pytest.mark.parametrize(
    "agencies", ["Oakfield-Primary", "a", "oakfield primary", "-leading-hyphen", "x" * 64]
)
def test_an_invalid_agency_id_is_named(agencies: str) -> None:
    with pytest.raises(SettingsError, match=r"HUB_AGENCIES: .* is not a valid agency id"):
        Settings.from_env({"HUB_AGENCIES": f"oakfield-primary,{agencies}"})


@pytest.mark.parametrize("mode", ["STARTTLS", "ssl", "none", ""])
def test_smtp_security_must_be_starttls_tls_or_plain(mode: str) -> None:
    with pytest.raises(
        SettingsError, match="HUB_SMTP_SECURITY must be one of starttls, tls, plain"
    ):
        Settings.from_env({"HUB_SMTP_SECURITY": mode})


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("HUB_PARTITIONS", "0", "HUB_PARTITIONS must be at least 1"),
        ("HUB_STORE", "redis://", "HUB_STORE must be memory:// or rocksdb://"),
        ("HUB_MAILBOX_PORT", "70000", "HUB_MAILBOX_PORT must be a TCP port"),
        ("HUB_LOCAL_KAFKA_PORT", "0", "HUB_LOCAL_KAFKA_PORT must be a TCP port"),
        ("HUB_STALL_S", "2", "HUB_STALL_S must be at least 5 seconds, not 2"),
        ("HUB_SESSION_TIMEOUT_S", "5", "HUB_SESSION_TIMEOUT_S must be between 6 and 90 seconds"),
        ("HUB_SESSION_TIMEOUT_S", "120", "HUB_SESSION_TIMEOUT_S must be between 6 and 90"),
        ("HUB_STANDBY_REPLICAS", "-1", "HUB_STANDBY_REPLICAS must be 0 or more, not -1"),
    ],
)
def test_out_of_range_values_are_named(name: str, raw: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({name: raw})


def test_replace_validates_too() -> None:
    with pytest.raises(SettingsError, match="HUB_SMTP_SECURITY"):
        Settings().replace(smtp_security="opportunistic")
    assert Settings().replace(partitions=8).partitions == 8


def test_settings_errors_stop_the_hub_as_config_errors() -> None:
    assert issubclass(SettingsError, ConfigError)


def test_secrets_never_appear_in_repr_or_str() -> None:
    settings = Settings.from_env(
        {"HUB_SMTP_PASSWORD": "p4ss-w0rd-value", "HUB_PSEUDONYM_KEY": "pseudonym-secret-value"}
    )
    for text in (repr(settings), str(settings), f"{settings}", f"{settings.smtp_password}"):
        assert "p4ss-w0rd-value" not in text
        assert "pseudonym-secret-value" not in text
    assert "Secret('********')" in repr(settings)
    assert settings.smtp_password.reveal() == "p4ss-w0rd-value"


def test_an_empty_secret_says_it_is_empty() -> None:
    assert repr(Secret("")) == "Secret('')"
    assert not Secret("")
    assert Secret("x")


def test_as_environment_round_trips_through_from_env() -> None:
    settings = Settings.from_env(
        {
            "HUB_AGENCIES": "oakfield-primary,northshire-police",
            "HUB_PARTITIONS": "6",
            "HUB_SMTP_TIMEOUT_S": "7.5",
            "HUB_SMTP_SECURITY": "tls",
            "HUB_SMTP_PASSWORD": "p4ss",
            "HUB_SMTP_CA_FILE": "/etc/hub/ca.pem",
            "HUB_STATE_DIR": "/srv/hub-state",
            "HUB_TOPIC_PREFIX": "t1.",
        }
    )
    environment = settings.as_environment()
    assert all(name.startswith("HUB_") for name in environment)
    assert Settings.from_env(environment) == settings


def test_the_defaults_round_trip_through_the_environment() -> None:
    assert Settings.from_env(Settings().as_environment()) == Settings()


@pytest.mark.parametrize("name", ["HUB_STATE_DIR", "HUB_POLICY_FILE", "HUB_SUBSCRIPTIONS_DIR"])
def test_an_empty_required_path_is_refused(name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: ""})


@pytest.mark.parametrize("app_id", ["", "../elsewhere", "hub/one", "hub one", "-hub", "x" * 201])
def test_an_application_id_must_be_a_safe_group_topic_and_folder_name(app_id: str) -> None:
    with pytest.raises(SettingsError, match="HUB_APP_ID"):
        Settings.from_env({"HUB_APP_ID": app_id})


def test_usual_application_ids_are_accepted() -> None:
    for app_id in ("involvement-hub", "hub-bench-1a2b3c-state", "county.hub_2"):
        assert Settings.from_env({"HUB_APP_ID": app_id}).app_id == app_id


def test_a_dead_worker_keeps_its_partitions_15_s_by_default_with_one_standby() -> None:
    settings = Settings()
    assert settings.session_timeout_s == 15.0
    assert settings.standby_replicas == 1


@pytest.mark.parametrize(
    ("session", "heartbeat"), [(15.0, 3.0), (60.0, 3.0), (9.0, 3.0), (6.0, 2.0), (7.5, 2.5)]
)
def test_the_heartbeat_leaves_room_for_two_missed_ones(session: float, heartbeat: float) -> None:
    settings = Settings(session_timeout_s=session)
    assert settings.heartbeat_interval_s == heartbeat
    assert settings.heartbeat_interval_s * 3 <= settings.session_timeout_s


README = Path(__file__).resolve().parents[2] / "README.md"
_ROW = re.compile(r"^\| `(HUB_[A-Z0-9_]+)` \| (.*?) \| (.*) \|$", re.MULTILINE)


def test_the_readme_lists_every_setting_with_its_default_and_meaning() -> None:
    rows = {name: (default, meaning) for name, default, meaning in _ROW.findall(README.read_text())}
    defaults = Settings().as_environment()
    expected = {}
    for spec in dataclasses.fields(Settings):
        name = f"HUB_{spec.name.upper()}"
        default = defaults.get(name, "")
        expected[name] = (f"`{default}`" if default else "", DESCRIPTIONS[spec.name])
    assert rows == expected
