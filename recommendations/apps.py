from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    name = "recommendations"

    def ready(self) -> None:
        # Registers the tasks in every process that may queue one by name (access.queueing).
        import recommendations.tasks  # noqa: F401

        # An erasure removes the person's interactions and cached lists (consent's registry).
        from consent.services import erasure_hook_register
        from recommendations.services import recommendation_data_erase

        erasure_hook_register(name=self.label, hook=recommendation_data_erase)
