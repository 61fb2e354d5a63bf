"""The tasks that services queue, looked up by name (STYLE rule 6: tasks are adapters that call
services; services queue tasks after commit).

`segments.tasks` imports the services its tasks call, so a service that imported the task it
queues would make the two modules import each other. A service looks the task up in Celery's
registry instead, by a name written once, here: each task in `segments.tasks` is registered
under its constant. `SegmentsConfig.ready` imports `segments.tasks` in every process (web,
shell and beat too, not only workers), so the names are known wherever a service queues:
without a broker Celery runs a known task inline, and an unknown name raises
`celery.exceptions.NotRegistered` rather than queueing into the void.
"""

from celery import current_app
from celery.app.task import Task

SEGMENT_REFRESH_TASK = "segments.tasks.segment_refresh_task"
WEBHOOK_DELIVER_TASK = "segments.tasks.webhook_deliver_task"
MODEL_TRAIN_TASK = "segments.tasks.model_train_task"


def segments_task(name: str) -> Task:
    """The registered task `name`, to queue with `.delay_on_commit(...)` or `.delay(...)`."""
    return current_app.tasks[name]
