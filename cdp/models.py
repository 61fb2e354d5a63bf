"""What the operational endpoints read that no app owns."""

from django.db import models

# The pending-events sweep's heartbeat (cdp.pipeline.events_process_pending).
SWEEP_HEARTBEAT = "events-process-pending"


class Heartbeat(models.Model):
    """When a periodic safety net last ran (one row per name), so that /healthz can say a
    deployment runs no beat: its lost work would otherwise wait forever, silently."""

    name = models.CharField(max_length=100, primary_key=True)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.at:%Y-%m-%d %H:%M:%S}"
