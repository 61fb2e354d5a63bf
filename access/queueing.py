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
