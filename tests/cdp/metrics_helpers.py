"""Reading the process's Prometheus samples (access.metrics) in tests."""

from access.metrics import COLLECTORS


def sample(name: str, **labels: str) -> float:
    """The current value of the sample `name` with exactly these labels (0 when absent)."""
    for collector in COLLECTORS:
        for metric in collector.collect():
            for found in metric.samples:
                if found.name == name and found.labels == labels:
                    return found.value
    return 0.0
