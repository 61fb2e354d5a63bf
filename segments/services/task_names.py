"""The names of the tasks that segments' services queue, written once: each task in
`segments.tasks` is registered under its constant, and services find it with
`access.queueing.task_named` (see there why by name)."""

SEGMENT_REFRESH_TASK = "segments.tasks.segment_refresh_task"
WEBHOOK_DELIVER_TASK = "segments.tasks.webhook_deliver_task"
MODEL_TRAIN_TASK = "segments.tasks.model_train_task"
