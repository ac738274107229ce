"""The fault harness's hostile records and how it counts crashes in a worker's log."""

from __future__ import annotations

from pathlib import Path

from involvement_hub_devtools.chaos.faults import (
    BROKER_MAX_BATCH,
    hostile_records,
    runs_with_logged_crash,
)


def test_hostile_records_cover_every_case_and_fit_the_broker() -> None:
    records = hostile_records(b"\xc3\x01valid", seed=3)
    cases = {r.case for r in records}
    assert {"near-1MB record", "null value", "huge headers", "garbage bytes"} <= cases
    big = next(r for r in records if r.case == "near-1MB record")
    assert big.value is not None
    assert BROKER_MAX_BATCH - 2048 < len(big.value) < BROKER_MAX_BATCH
    huge = next(r for r in records if r.case == "huge headers")
    assert sum(len(v) for _, v in huge.headers) > 512 * 1024
    assert records == hostile_records(b"\xc3\x01valid", seed=3)


def test_a_crash_is_counted_once_per_worker_run(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    first = b"started\n[ERROR] [^---ProducerBuffer]: Crashed reason=X\n[ERROR] Crashed reason=Y\n"
    second = b"started again\nall well\n"
    third = b"[ERROR] [^Agent]: Crashed reason=Z\n"
    log.write_bytes(first + second + third)
    starts = [0, len(first), len(first) + len(second)]
    assert runs_with_logged_crash(log, starts) == {0, 2}
    assert runs_with_logged_crash(tmp_path / "none.log", starts) == set()
