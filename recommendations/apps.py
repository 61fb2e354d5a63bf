from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    name = "recommendations"

    def ready(self) -> None:
        # An erasure removes the person's interactions and cached lists (consent's registry).
        from consent.erasure import erasure_hook_register
        from recommendations.services import profiles_erase

        erasure_hook_register("recommendations", profiles_erase)
