"""Reading a worker's Prometheus exposition (``/metrics``) in tests."""

from __future__ import annotations

from involvement_hub_devtools.processes import metric_samples


def metric(exposition: str, name: str, **labels: str) -> float | None:
    """The sum of the samples of ``name`` whose labels include ``labels``; None when there
    is no such sample (a counter not yet incremented, a gauge not yet set)."""
    values = [
        value
        for found, value in metric_samples(exposition, name)
        if all(found.get(k) == v for k, v in labels.items())
    ]
    return sum(values) if values else None
