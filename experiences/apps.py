from django.apps import AppConfig


class ExperiencesConfig(AppConfig):
    name = "experiences"

    def ready(self) -> None:
        from consent.services import erasure_hook_register
        from experiences import tasks  # noqa: F401  (beat names the bandit refresh task)
        from experiences.services import decisions_erase

        # An erased subject's decisions go with them.
        erasure_hook_register(name=self.label, hook=decisions_erase)
