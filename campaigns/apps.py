from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"

    def ready(self) -> None:
        # Services queue tasks by name (campaigns.queue): register them in every process.
        from campaigns import hooks, tasks  # noqa: F401

        # Journeys and deliveries follow profile merges and unmerges (identity.hooks).
        hooks.register()
