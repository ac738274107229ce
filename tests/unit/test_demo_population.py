"""``hub demo``'s background population: the ``hub simulate`` command it prints makes the very
same records, and its summary counts only once the hub has routed and delivered them.

No broker: the records are compared as written by ``hub simulate --out``, and the summary's
waiting is driven by stand-ins for the worker's metrics and the mailbox.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
from pathlib import Path

import pytest
from involvement_hub.cli import main as cli
from involvement_hub_devtools.demo import PopulationRun, Tally, follow_population

REPO = Path(__file__).resolve().parents[2]


def test_the_printed_simulate_command_makes_the_same_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith("HUB_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(REPO)
    run = PopulationRun(3, first=61_234, start=dt.datetime(2026, 11, 25, 14, 3, 7, tzinfo=dt.UTC))
    lines: list[str] = []
    follow_population(run, lambda: 0, lambda: False, lambda: Tally(0, 0, 0), lines.append)
    printed = lines[0].split("(hub ", 1)[1].split("):", 1)[0]
    out = tmp_path / "again.jsonl"

    assert cli.main([*shlex.split(printed), "--out", str(out)]) == cli.EXIT_OK

    again = [json.loads(line) for line in out.read_text().splitlines()]
    demo = json.loads(json.dumps(list(run.records())))
    assert again == demo
    assert len(demo) > run.events  # the setup records, then the events
    # A fresh run is another population: the command must carry what makes it so.
    other = PopulationRun(3, first=61_235, start=run.start)
    assert json.loads(json.dumps(list(other.records()))) != demo


def test_the_summary_counts_only_after_the_hub_has_settled() -> None:
    events: list[str] = []
    counts = iter([Tally(100, 1, 6), Tally(245, 1, 151)])

    def publish_all() -> int:
        events.append("publish")
        return 314

    def settled() -> bool:
        events.append("settled")
        return True

    def tally() -> Tally:
        events.append("tally")
        return next(counts)

    lines: list[str] = []
    run = PopulationRun(20, first=7, start=dt.datetime(2026, 11, 25, tzinfo=dt.UTC))
    follow_population(run, publish_all, settled, tally, lines.append)

    assert events == ["tally", "publish", "settled", "tally"]
    assert (
        lines[1]
        == "  all 314 routed: 145 alerts, 145 emails arrived in the mailbox; 0 messages quarantined"
    )


def test_the_summary_says_which_alerts_have_not_arrived_yet() -> None:
    counts = iter([Tally(0, 0, 0), Tally(40, 2, 31)])
    lines: list[str] = []
    run = PopulationRun(20, first=7, start=dt.datetime(2026, 11, 25, tzinfo=dt.UTC))
    follow_population(run, lambda: 200, lambda: True, lambda: next(counts), lines.append)

    assert lines[1] == (
        "  all 200 routed: 40 alerts, 31 emails arrived in the mailbox (the others wait for a "
        "digest or working hours); 2 messages quarantined"
    )


def test_the_summary_says_why_more_emails_than_alerts_arrived() -> None:
    counts = iter([Tally(10, 1, 15), Tally(134, 1, 159)])
    lines: list[str] = []
    run = PopulationRun(20, first=7, start=dt.datetime(2026, 11, 25, tzinfo=dt.UTC))
    follow_population(run, lambda: 316, lambda: True, lambda: next(counts), lines.append)

    assert lines[1] == (
        "  all 316 routed: 124 alerts, 144 emails arrived in the mailbox (with out-of-hours "
        "copies of URGENT alerts, and any escalations); 0 messages quarantined"
    )


def test_a_hub_that_does_not_settle_is_not_counted() -> None:
    tallies: list[str] = []

    def tally() -> Tally:
        tallies.append("tally")
        return Tally(0, 0, 0)

    lines: list[str] = []
    run = PopulationRun(20, first=7, start=dt.datetime(2026, 11, 25, tzinfo=dt.UTC))
    follow_population(run, lambda: 200, lambda: False, tally, lines.append)

    assert tallies == ["tally"]
    assert lines[1] == "  the worker is still busy with them; see its metrics"
