"""The hub's Prometheus metrics, built from a registry the caller passes in.

Label values are drawn from small fixed sets -- agency ids from the settings, event kinds
and reason tokens from the code -- and never from payloads: no person, practitioner, case
or alert id is ever a label.
"""

from __future__ import annotations

from typing import NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# End-to-end latency runs from the agency's Kafka write to the mail server's 250. The
# target is p99 <= 250 ms, so buckets are dense around it; the long tail (minutes) is
# where retries and outages show.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 900.0)


class HubMetrics(NamedTuple):
    registry: CollectorRegistry
    events_consumed: Counter
    decode_failures: Counter
    quarantined: Counter
    identifiers_rejected: Counter
    identity_merges: Counter
    ordered_replays: Counter
    decisions: Counter
    alerts_routed: Counter
    emails_sent: Counter
    emails_failed: Counter
    emails_duplicate: Counter
    delivery_queued: Counter
    delivery_retries: Counter
    delivery_escalations: Counter
    delivery_pending: Gauge
    ordered_waiting: Gauge
    ordered_cpu: Counter
    oldest_pending_age: Gauge
    digest_size: Histogram
    end_to_end_latency: Histogram
    agent_errors: Counter
    unreadable_batches: Counter
    ready: Gauge
    live: Gauge
    consumer_lag: Gauge
    recovery_remaining: Gauge
    standby_remaining: Gauge
    build_info: Gauge


def create_metrics(registry: CollectorRegistry | None = None) -> HubMetrics:
    reg = registry if registry is not None else CollectorRegistry()
    return HubMetrics(
        registry=reg,
        events_consumed=Counter(
            "hub_events_consumed",
            "Events read from agency ingest topics and decoded, by agency and event kind.",
            ["agency", "kind"],
            registry=reg,
        ),
        decode_failures=Counter(
            "hub_decode_failures",
            "Ingest messages that could not be decoded, by agency and decoder reason.",
            ["agency", "reason"],
            registry=reg,
        ),
        quarantined=Counter(
            "hub_quarantined",
            "Messages sent to the quarantine topic, by agency and reason "
            "(decode failures carry the decoder's reason).",
            ["agency", "reason"],
            registry=reg,
        ),
        identifiers_rejected=Counter(
            "hub_identifiers_rejected",
            "Identifiers ignored for linking, by scheme and reason.",
            ["scheme", "reason"],
            registry=reg,
        ),
        identity_merges=Counter(
            "hub_identity_merges", "Persons merged into another by a linking event.", registry=reg
        ),
        ordered_replays=Counter(
            "hub_ordered_replays",
            "Identity-topic positions handled again after a restart, by what was done: "
            "redone (from its journal entry), resent (outputs sent again), skipped.",
            ["outcome"],
            registry=reg,
        ),
        decisions=Counter(
            "hub_routing_decisions",
            "Routing decisions, by outcome (SEND or SUPPRESS) and suppression reason.",
            ["outcome", "reason"],
            registry=reg,
        ),
        alerts_routed=Counter(
            "hub_alerts_routed",
            "Alerts written to the alerts topic, by urgency.",
            ["urgency"],
            registry=reg,
        ),
        emails_sent=Counter(
            "hub_emails_sent",
            "Alert emails accepted by the mail server (250).",
            ["urgency"],
            registry=reg,
        ),
        emails_failed=Counter(
            "hub_emails_failed",
            "Alert email attempts that failed, by kind of failure (transient or permanent).",
            ["failure"],
            registry=reg,
        ),
        emails_duplicate=Counter(
            "hub_emails_duplicate_skipped",
            "Alerts not sent again because the outbox shows them delivered.",
            registry=reg,
        ),
        delivery_queued=Counter(
            "hub_delivery_queued",
            "Alerts taken in for delivery: sent at once, or held for a digest.",
            ["how"],
            registry=reg,
        ),
        delivery_retries=Counter(
            "hub_delivery_retries", "Further attempts to deliver a pending alert.", registry=reg
        ),
        delivery_escalations=Counter(
            "hub_delivery_escalations",
            "Alerts escalated: refused by the mail server (permanent), still failing at the "
            "retry horizon (retry_horizon), or no secure connection (insecure).",
            ["reason"],
            registry=reg,
        ),
        ordered_waiting=Gauge(
            "hub_ordered_waiting",
            "Records in the ordered stage's reorder buffer, waiting until every ingest "
            "partition is known past them.",
            registry=reg,
        ),
        ordered_cpu=Counter(
            "hub_ordered_cpu_seconds",
            "CPU time the ordered stage spent on its messages (its thread's own time): the "
            "one stage that cannot be spread over workers, so its cost caps the hub.",
            registry=reg,
        ),
        delivery_pending=Gauge(
            "hub_delivery_pending",
            "Alerts and digests on this worker waiting for a retry or a digest window.",
            registry=reg,
        ),
        oldest_pending_age=Gauge(
            "hub_delivery_oldest_pending_age_seconds",
            "Age of the oldest alert on this worker still waiting to be retried, by urgency.",
            ["urgency"],
            registry=reg,
        ),
        digest_size=Histogram(
            "hub_digest_size_alerts",
            "Alerts per digest email.",
            # A digest gathers a practitioner's routine alerts for an hour or a day: a few
            # usually, a few dozen for a busy caseload.
            buckets=(1, 2, 3, 5, 8, 13, 21, 34, 55),
            registry=reg,
        ),
        end_to_end_latency=Histogram(
            "hub_end_to_end_latency_seconds",
            "From the agency's message reaching Kafka to the mail server accepting the alert.",
            ["urgency"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        ),
        agent_errors=Counter(
            "hub_agent_errors",
            "Unexpected errors caught in a stage; the message was quarantined.",
            ["stage"],
            registry=reg,
        ),
        unreadable_batches=Counter(
            "hub_unreadable_batches",
            "Record batches the consumer could not read (undecompressable, bad CRC), skipped "
            "and noted in the quarantine without their records, by topic.",
            ["topic"],
            registry=reg,
        ),
        ready=Gauge(
            "hub_worker_ready", "1 when the worker has recovered and is consuming.", registry=reg
        ),
        live=Gauge(
            "hub_worker_live",
            "1 while every agent runs and the worker commits progress when it has work.",
            registry=reg,
        ),
        consumer_lag=Gauge(
            "hub_consumer_lag_messages",
            "Messages not yet committed by this worker, per assigned topic and partition.",
            ["topic", "partition"],
            registry=reg,
        ),
        recovery_remaining=Gauge(
            "hub_table_recovery_remaining_messages",
            "Changelog messages this worker must still read before its tables are recovered.",
            registry=reg,
        ),
        standby_remaining=Gauge(
            "hub_table_standby_remaining_messages",
            "Changelog messages a standby copy on this worker still lacks, per changelog "
            "partition it keeps a standby of (0: warm, ready to take over).",
            ["topic", "partition"],
            registry=reg,
        ),
        build_info=Gauge(
            "hub_build_info",
            "Always 1; the labels say which versions this worker runs.",
            ["version", "python", "faust"],
            registry=reg,
        ),
    )
