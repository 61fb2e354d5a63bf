"""Queueing campaign tasks from services, after commit, by name (`access.queueing` says why;
`CampaignsConfig.ready` registers `campaigns.tasks` in every process)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from access.queueing import task_named


def task_queue(name: str, *args: Any, countdown: float | None = None) -> None:
    """Queue `campaigns.tasks.<name>(*args)` once the current transaction commits (at once
    outside one); with `countdown`, not before that many seconds."""

    def send() -> None:
        task_named(f"campaigns.tasks.{name}").apply_async(args, countdown=countdown)

    transaction.on_commit(send)
