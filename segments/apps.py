from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"

    def ready(self) -> None:
        # Registers the tasks in every process that may queue one, not only in the workers
        # (which find them by autodiscovery): services queue tasks by name
        # (segments.services.task_queue).
        import segments.tasks  # noqa: F401
        from segments import hooks

        # Memberships follow profile merges and unmerges (identity.hooks).
        hooks.register()
