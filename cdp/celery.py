"""The Celery app: queues ingest (event processing), default and ml (model training)."""

import os
import time
from typing import Any

from celery import Celery
from celery.signals import task_failure, task_postrun, task_prerun

from access.metrics import task_run_record

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")

app = Celery("cdp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


_started: dict[str, float] = {}


@task_prerun.connect
def _task_timer_start(task_id: str, **_: Any) -> None:
    _started[task_id] = time.perf_counter()


def _task_run_count(task_id: str, task_name: str, outcome: str) -> None:
    began = _started.pop(task_id, None)
    seconds = time.perf_counter() - began if began is not None else None
    task_run_record(task=task_name, outcome=outcome, seconds=seconds)


@task_postrun.connect
def _task_run_ended(task_id: str, task: Any, state: str | None = None, **_: Any) -> None:
    """Runs and retries per task, and their durations (access.metrics)."""
    if state != "FAILURE":  # counted by _task_run_failed, which also runs for inline tasks
        _task_run_count(task_id, task.name, (state or "unknown").lower())


@task_failure.connect
def _task_run_failed(task_id: str, sender: Any, **_: Any) -> None:
    _task_run_count(task_id, sender.name, "failure")
