"""The worker's Faust app as built from settings (constructed only; nothing connects)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from involvement_hub.config import load_config
from involvement_hub.delivery.mailer import MemoryMailer
from involvement_hub.metrics import create_metrics
from involvement_hub.settings import Settings
from involvement_hub.streaming.app import HubApp


def tables_folder(settings: Settings) -> Path:
    hub = HubApp(settings, load_config(settings), create_metrics(), MemoryMailer())
    return Path(hub.app.conf.tabledir)


def test_each_application_keeps_its_tables_in_a_folder_of_its_own(tmp_path: Path) -> None:
    # Two hubs (or a benchmark and a hub) sharing a state folder must never recover each
    # other's RocksDB tables: Faust would refuse them, or worse, take them as its own.
    first = tables_folder(Settings(state_dir=tmp_path, app_id="hub-north"))
    second = tables_folder(Settings(state_dir=tmp_path, app_id="hub-south"))

    assert first != second
    assert first.is_relative_to(tmp_path / "worker" / "hub-north")
    assert second.is_relative_to(tmp_path / "worker" / "hub-south")


def faust_conf(settings: Settings) -> Any:
    return HubApp(settings, load_config(settings), create_metrics(), MemoryMailer()).app.conf


def test_failover_settings_reach_faust(tmp_path: Path) -> None:
    # A killed worker's partitions move after the session timeout, to a worker that keeps a
    # standby copy of their tables.
    conf = faust_conf(Settings(state_dir=tmp_path, session_timeout_s=20.0, standby_replicas=2))
    assert conf.broker_session_timeout == 20.0
    assert conf.broker_heartbeat_interval == 3.0
    assert conf.table_standby_replicas == 2
    default = faust_conf(Settings(state_dir=tmp_path))
    assert default.broker_session_timeout == 15.0
    assert default.table_standby_replicas == 1
