"""Queueing a Celery task by name, for services in an app whose tasks module imports them.

STYLE rule 6: tasks are adapters that call services, and services queue tasks after commit. A
service that imported the task it queues would make the two modules import each other (and the
pipeline's task lives in `cdp`, above the ingestion that queues it). Such a service names the
task instead and Celery's registry finds it. The app that owns the tasks imports its tasks
module in `AppConfig.ready`, so every process (web, shell, beat, workers) has them registered:
without a broker Celery then runs a known task inline, and an unknown name raises
`celery.exceptions.NotRegistered` rather than queueing into the void.
"""

from celery import current_app
from celery.app.task import Task


def task_named(name: str) -> Task:
    """The registered task `name`, to queue with `.delay_on_commit(...)`, `.delay(...)` or
    `.apply_async(...)`."""
    return current_app.tasks[name]


def task_queue_debounced(name: str, *, seconds: float) -> bool:
    """Queue task `name` to run in `seconds`, after the current transaction commits, unless a
    call in the last `seconds` already queued it (so a burst of causes runs it once, on
    everything they changed). True when this call queued it."""
    from django.core.cache import cache
    from django.db import transaction

    if not cache.add(f"task-debounce:{name}", 1, timeout=seconds):
        return False
    transaction.on_commit(lambda: task_named(name).apply_async(countdown=seconds))
    return True
