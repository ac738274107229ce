"""``hub chaos`` options: the two modes, and usage errors that stop it before it starts."""

from __future__ import annotations

import pytest
from involvement_hub.cli.main import EXIT_CONFIG, main
from involvement_hub.errors import ConfigError
from involvement_hub.settings import Settings
from involvement_hub_devtools.chaos.run import FAULTS, LONG, SHORT, options_for, validate


def test_the_long_mode_meets_the_issues_counts() -> None:
    assert set(LONG.faults) == set(FAULTS)
    assert LONG.families == 200
    assert LONG.worker_kills >= 10
    assert LONG.sigterms >= 10
    assert LONG.broker_kills >= 4
    assert LONG.smtp_down_s >= 120


def test_the_short_mode_leaves_out_what_needs_minutes_or_the_local_broker() -> None:
    assert {"broker", "smtp-down"}.isdisjoint(SHORT.faults)
    assert {"kill9", "sigterm", "hostile", "replay"} <= set(SHORT.faults)


def test_options_for_changes_only_what_is_given() -> None:
    options = options_for("long", families=5, seed=None)
    assert options.families == 5
    assert options.seed == LONG.seed


def test_unknown_faults_and_a_remote_broker_fault_are_usage_errors() -> None:
    with pytest.raises(ConfigError, match="unknown fault"):
        validate(options_for("short", faults=("kill9", "meteor")), Settings())
    with pytest.raises(ConfigError, match="local broker"):
        validate(options_for("short", faults=("broker",)), Settings(kafka_bootstrap="k:9092"))


def test_the_command_exits_2_on_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    assert main(["chaos", "--faults", "meteor"]) == EXIT_CONFIG
