"""What the test tiers share, imported as ``support.<module>`` (pytest puts ``tests/`` on
the path: ``pythonpath`` in pyproject.toml). One copy of each helper, here:

- ``broker``: the run's Kafka broker, one for every pytest process of a run (xdist);
- ``worker``: ``hub worker`` and the other ``hub`` commands, run as a user runs them;
- ``topics``: writing, reading and waiting on real Kafka topics;
- ``metrics``: reading a worker's Prometheus exposition;
- ``waiting``: waiting for a condition, never for a fixed time;
- ``records``: synthetic events in the agencies' JSON form; ``alerts``: a routed alert;
- ``story``: multi-agency family stories end to end (``tests/e2e/test_scenarios.py``);
- ``core_builders``, ``family_story``: domain objects and stories for the pure core.

Only invented people: NHS numbers from the 999 range with valid check digits, UPNs of the
fictional local authority 999, ZZ99 postcodes, UPRNs starting 99900, ``.example`` emails.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
