from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"

    def ready(self) -> None:
        # Services queue tasks by name (campaigns.queue): register them in every process.
        from campaigns import tasks  # noqa: F401
