"""The worker's Faust app as built from settings (constructed only; nothing connects)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from involvement_hub.config import load_config
from involvement_hub.delivery.mailer import MemoryMailer
from involvement_hub.observability.metrics import create_metrics
from involvement_hub.settings import Settings
from involvement_hub.streaming.app import HubApp
from involvement_hub.streaming.health import standby_remaining


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


def test_a_standby_lacks_what_its_partition_has_beyond_the_offset_it_took_in() -> None:
    tps = ["hub-state-changelog/0", "outbox-changelog/1", "outbox-changelog/3"]
    remaining = standby_remaining(
        tps,
        # the last offset taken in: -1 or missing is nothing yet
        {tps[0]: 99, tps[1]: -1},
        # the consumer's end offsets, once fetched: one past the last offset
        {tps[0]: 150, tps[1]: 10, tps[2]: None},
        # Faust's last offset when the standby started
        {tps[0]: 120, tps[1]: 9, tps[2]: 4},
    )
    assert remaining == {tps[0]: 50, tps[1]: 10, tps[2]: 5}


def test_a_standby_past_the_highwater_it_started_with_lacks_nothing() -> None:
    # The active keeps writing after the standby started; the consumer's end offset lags.
    tp = "hub-state-changelog/0"
    assert standby_remaining([tp], {tp: 140}, {tp: 100}, {tp: 120}) == {tp: 0}
    assert standby_remaining([tp], {tp: 0}, {tp: 1}, {tp: 0}) == {tp: 0}
