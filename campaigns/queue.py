"""Queueing campaign tasks from services, after commit.

`campaigns.tasks` imports the services (tasks are adapters), so a service cannot import the
tasks without a cycle. Services name the task instead, and Celery's registry finds it:
`CampaignsConfig.ready` imports `campaigns.tasks`, so every process that runs Django has them
registered (workers also find them by autodiscovery).
"""

from __future__ import annotations

from typing import Any

from celery import current_app
from django.db import transaction


def task_queue(name: str, *args: Any, countdown: float | None = None) -> None:
    """Queue `campaigns.tasks.<name>(*args)` once the current transaction commits (at once
    outside one); with `countdown`, not before that many seconds."""

    def send() -> None:
        current_app.tasks[f"campaigns.tasks.{name}"].apply_async(args, countdown=countdown)

    transaction.on_commit(send)
