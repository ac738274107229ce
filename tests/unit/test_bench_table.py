"""The benchmark's printed table: figures where measured, 'skipped' where not."""

from __future__ import annotations

from involvement_hub.bench import Results, table


def test_skipped_measurements_say_so_rather_than_zero() -> None:
    results = Results(options={"latency_rate": 1000.0}, figures={"baseline_events_per_s": 58494})
    lines = table(results).splitlines()
    by_name = {line.split("  ")[0]: line for line in lines}
    assert "58,494 ev/s" in by_name["ingest, raw baseline (aiokafka + fastavro)"]
    assert "skipped" in by_name["delivery, the hub"]
    assert "skipped" in by_name["end-to-end latency p50 / p95 / p99"]
    assert "0 mails/s" not in table(results)
    assert "None" not in table(results)  # no notes about figures that were not measured


def test_measured_figures_appear_with_their_targets() -> None:
    figures = {
        "hub_events_per_s": 282,
        "hub_ratio": 0.005,
        "latency_p50_ms": 40.1,
        "latency_p95_ms": 80.2,
        "latency_p99_ms": 120.3,
        "state_rss_mib": 512.5,
        "state_persons": 1000000,
        "store": "rocksdb://",
    }
    text = table(Results(options={"latency_rate": 100.0}, figures=figures))
    assert "282 ev/s" in text
    assert "0.005 x baseline (target >= 0.5)" in text
    assert "40.1 / 80.2 / 120.3 ms" in text
    assert "offered 100.0 ev/s" in text
    assert "512.5 MiB" in text
    assert "1,000,000 persons, store rocksdb://" in text
