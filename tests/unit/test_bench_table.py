"""The benchmark's printed table: figures where measured, 'skipped' where not."""

from __future__ import annotations

from involvement_hub_devtools.bench.run import Results, _single_partition_cap, table


def test_skipped_measurements_say_so_rather_than_zero() -> None:
    results = Results(options={"latency_rate": 1000.0}, figures={"baseline_events_per_s": 58494})
    lines = table(results).splitlines()
    by_name = {line.split("  ")[0]: line for line in lines}
    assert "58,494 ev/s" in by_name["ingest, raw baseline (aiokafka + fastavro)"]
    assert "skipped" in by_name["delivery, the hub"]
    assert "skipped" in by_name["end-to-end latency p50 / p95 / p99"]
    assert "skipped" in by_name["bare Faust stage, batch-native"]
    assert "skipped" in by_name["Faust message operations per input event"]
    assert "skipped" in by_name["CPU per 1,000 events, the hub's worker"]
    assert "0 mails/s" not in table(results)
    assert "None" not in table(results)  # no notes about figures that were not measured
    assert "Kafka messages per input event" not in table(results)


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
    assert "0.005 x baseline (target >= 0.05)" in text
    assert "40.1 / 80.2 / 120.3 ms" in text
    assert "offered 100.0 ev/s" in text
    assert "512.5 MiB" in text
    assert "1,000,000 persons, store rocksdb://" in text


def test_both_faust_ceilings_and_the_hub_against_the_batch_native_one() -> None:
    figures = {
        "faust_stage_events_per_s": 3393,
        "faust_stage_ratio": 0.066,
        "faust_stage_cpu_ms_per_1000": 410,
        "faust_batch_events_per_s": 4100,
        "faust_batch_ratio": 0.08,
        "faust_batch_to_per_event": 1.21,
        "faust_batch_cpu_ms_per_1000": 351,
        "hub_events_per_s": 289,
        "hub_to_batch_ceiling": 0.07,
        "hub_cpu_ms_per_1000": 5210,
        "hub_cpu_ms_per_1000_with_delivery": 6001,
        "faust_ops_per_event": 16.25,
    }
    by_name = {
        line.split("  ")[0]: line
        for line in table(Results(figures=figures)).splitlines()
        if line.strip()
    }
    assert "3,393 ev/s" in by_name["bare Faust stage, one event a step"]
    batch = by_name["bare Faust stage, batch-native"]
    assert "4,100 ev/s" in batch
    assert "0.08 x baseline, 1.21 x one event a step" in batch
    assert "0.07 x  (target >= 0.5)" in by_name["the hub against the batch-native stage"]
    assert "16.25 ops" in by_name["Faust message operations per input event"]
    assert "(target <= 4)" in by_name["Faust message operations per input event"]
    hub_cpu = by_name["CPU per 1,000 events, the hub's worker"]
    assert "5,210 ms" in hub_cpu
    assert "6,001 ms with delivery" in hub_cpu
    assert "410 ms" in by_name["CPU per 1,000 events, Faust one a step"]
    assert "351 ms" in by_name["CPU per 1,000 events, Faust batch-native"]


def test_delivery_target_is_issue_elevens() -> None:
    figures = {"hub_emails_per_s": 600, "delivery_ratio": 0.92}
    assert "0.92 x plain (target >= 0.9)" in table(Results(figures=figures))


def test_messages_per_event_are_listed_by_direction_and_topic() -> None:
    figures = {
        "messages_per_event": {
            "produced": {"bench-x.hub.alerts": 0.4, "hub-bench-x-hub-state-changelog": 6.25},
            "consumed": {"bench-x.hub.identity": 1.5, "bench-x.ingest.school": 1.0},
        }
    }
    lines = table(Results(figures=figures)).splitlines()
    start = lines.index("Kafka messages per input event, the hub's ingest run:")
    section = lines[start + 1 :]
    assert section[0] == "  produced (6.65 in all)"
    assert section[1].split() == ["bench-x.hub.alerts", "0.400"]
    assert section[2].split() == ["hub-bench-x-hub-state-changelog", "6.250"]
    assert section[3] == "  consumed (2.50 in all)"
    assert section[4].split() == ["bench-x.hub.identity", "1.500"]


def test_the_single_partition_stage_has_its_cap_against_the_hubs_target() -> None:
    figures: dict[str, object] = {}
    # 2 CPU seconds for 4,000 events: 500 ms per 1,000, so at most 2,000 events/s on one
    # core; the hub's target at a 40,000/s baseline is 0.05 x 40,000 = 2,000/s.
    _single_partition_cap(figures, 2.0, 4000, 40_000.0)
    assert figures == {
        "ordered_cpu_ms_per_1000": 500,
        "ordered_cap_events_per_s": 2000,
        "ordered_cap_to_target": 1.0,
    }
    text = table(Results(options={}, figures=figures))
    assert "at most 2,000 ev/s = 1.0 x the hub's target (target >= 10)" in text
    _single_partition_cap(figures, 0.0, 0, 40_000.0)
    assert figures["ordered_cap_events_per_s"] is None


def test_the_latency_row_says_whether_the_worker_kept_up() -> None:
    figures = {
        "latency_p50_ms": 900.0,
        "latency_p95_ms": 20_000.0,
        "latency_p99_ms": 31_000.5,
        "latency_lag_at_end": 1234,
        "latency_drain_s": 41.5,
        "latency_kept_up": False,
    }
    text = table(Results(options={"latency_rate": 1000.0}, figures=figures))
    assert "fell behind: 1,234 messages unprocessed when the last event was offered" in text
    assert "done 41.5 s later" in text
    figures.update(latency_lag_at_end=3, latency_drain_s=1.2, latency_kept_up=True)
    text = table(Results(options={"latency_rate": 100.0}, figures=figures))
    assert "kept up (all done 1.2 s after the last event)" in text


def test_the_failover_row_says_the_target_and_whether_it_was_met() -> None:
    figures = {
        "failover_routing_s": 41.2,
        "failover_to_ready_s": 38.5,
        "failover_persons": 1_047_002,
        "failover_session_timeout_s": 15.0,
        "failover_standby_warm_s": 610.3,
    }
    by_name = {line.split("  ")[0]: line for line in table(Results(figures=figures)).splitlines()}
    row = by_name["failover to routing, 2 workers, kill -9"]
    assert "41.2 s" in row
    assert "ready after 38.5 s; 1,047,002 persons, session timeout 15.0 s" in row
    assert "(target <= 60 s at 1,000,000: met)" in row
    small = {**figures, "failover_routing_s": 15.9, "failover_persons": 20_123}
    assert "(target <= 60 s at 1,000,000)" in table(Results(figures=small))
    cold = {**small, "failover_standby_replicas": 0}
    assert "session timeout 15.0 s, no standby (target" in table(Results(figures=cold))
    skipped = {line.split("  ")[0]: line for line in table(Results(figures={})).splitlines()}
    assert "skipped" in skipped["failover to routing, 2 workers, kill -9"]
