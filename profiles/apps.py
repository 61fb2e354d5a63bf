from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    name = "profiles"

    def ready(self) -> None:
        from profiles import tasks  # noqa: F401 - registers the tasks in every process
