"""Figures for /metrics and the dashboard, read from the database at scrape time so that every
web node reports the same numbers."""

from typing import Any

from django.apps import apps
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily


def _table_counts() -> dict[str, int]:
    Profile = apps.get_model("profiles", "Profile")
    Event = apps.get_model("profiles", "Event")
    Quarantined = apps.get_model("profiles", "QuarantinedMessage")
    return {
        "profiles": Profile.objects.filter(merged_into__isnull=True).count(),
        "events": Event.objects.count(),
        "events_pending": Event.objects.filter(processed_at__isnull=True).count(),
        "quarantined": Quarantined.objects.count(),
    }


class _TableCollector:
    def collect(self):
        for name, value in _table_counts().items():
            yield GaugeMetricFamily(
                f"cdp_{name}", f"Number of {name.replace('_', ' ')}", value=value
            )


def prometheus_exposition() -> tuple[bytes, str]:
    registry = CollectorRegistry()
    registry.register(_TableCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST


def dashboard_figures() -> dict[str, Any]:
    return {"counts": _table_counts()}
