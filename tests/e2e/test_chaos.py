"""``hub chaos --short`` as CI runs it, on the test broker: every phase runs and reports.

It checks that the harness works (a non-empty reference, one row per fault, the table
printed, JSON written) and that the hub meets the harness's targets for every short-mode
fault: 0 missing, 0 extra, duplicates within the in-flight bound, 0 crashes, exit status 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO

SHORT_FAULTS = ("control", "kill9", "sigterm", "hostile", "replay")


@pytest.mark.timeout(900)
def test_the_short_chaos_run_runs_every_phase(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_KAFKA_BOOTSTRAP=kafka_bootstrap, HUB_STATE_DIR=str(tmp_path / "state"))
    out = tmp_path / "chaos.json"
    command = ["chaos", "--short", "--families", "10", "--json", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "involvement_hub", *command],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=880,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr[-4000:]
    document = json.loads(out.read_text())
    rows = {r["fault"]: r for r in document["rows"]}
    assert list(rows) == ["reference", *SHORT_FAULTS], done.stderr[-4000:]
    assert rows["reference"]["reference"] > 0
    assert rows["reference"]["error"] is None, rows["reference"]["error"]
    for fault in SHORT_FAULTS:
        assert f"| {fault} |" in done.stdout
        assert rows[fault]["reference"] == rows["reference"]["reference"]
    for phase in ("reference: done", "kill9: worker kill -9", "sigterm: worker SIGTERM"):
        assert phase in done.stderr
    assert "replay: " in done.stderr
    assert "group rewound" in done.stderr
    assert done.returncode == 0, done.stdout
    assert all(r["met"] for r in document["rows"])
