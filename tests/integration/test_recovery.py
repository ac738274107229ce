"""A worker killed with ``kill -9`` and started again routes at once: with static group
membership it takes its partitions back instead of waiting for the dead member's session
to expire (about a minute with dynamic membership)."""

from __future__ import annotations

import json
import signal
import time

from involvement_hub.kafka.topics import TopicNames
from support.records import involvement, person, practitioner
from support.topics import consume, publish_records, routed
from support.worker import WorkerProcess

SOCIAL_CARE = "northshire-social-care"
SCHOOL = "oakfield-primary"
# The target is 10 s on the development machine (measured: see the closing note);
# the bound here leaves room for a loaded CI machine yet stays far below the ~60 s that a
# worker waits without static membership, so it still tells the two apart.
RESTART_BOUND_S = 30.0


async def test_a_worker_restarted_after_kill_9_routes_again_at_once(
    worker: WorkerProcess,
) -> None:
    settings = worker.settings
    worker.start()
    names = TopicNames.from_settings(settings)
    child = person(31)
    lead = practitioner("SW-31", "Alex Morgan", "social-care.northshire")
    dsl = practitioner("DSL-31", "Sam Okafor", SCHOOL, role="designated safeguarding lead")
    await publish_records(
        settings,
        [involvement(SOCIAL_CARE, "CIN-31", child, lead, involvement_id="SC-31", lead=True)],
    )
    assert await routed(settings, 1) == 1

    assert worker.process is not None
    worker.process.send_signal(signal.SIGKILL)
    worker.process.wait()
    restarted = time.monotonic()
    worker.start()  # returns once /readyz says the worker holds partitions again
    await publish_records(
        settings,
        [involvement(SCHOOL, "PUP-31", child, dsl, involvement_id="SCH-31", category="EDUCATION")],
    )
    alerts = await consume(settings.bootstrap, names.alerts, count=1, timeout=RESTART_BOUND_S)
    routed_after = time.monotonic() - restarted
    assert [json.loads(r.value)["recipient_id"] for r in alerts] == [f"{SOCIAL_CARE}/SW-31"]
    print(f"restart after kill -9 to routed: {routed_after:.1f} s")
    assert routed_after < RESTART_BOUND_S, worker.log_tail()
