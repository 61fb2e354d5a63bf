from django.apps import AppConfig


class CdpConfig(AppConfig):
    name = "cdp"
    verbose_name = "CDP platform"

    def ready(self) -> None:
        # Registers the pipeline's tasks in every process (web too), not only in the workers
        # that find them by autodiscovery: ingestion queues them by name.
        import cdp.tasks  # noqa: F401
