"""The worker's Faust app as built from settings (constructed only; nothing connects)."""

from __future__ import annotations

from pathlib import Path

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
