from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"

    def ready(self) -> None:
        # Services queue tasks by name (campaigns.queue): register them in every process.
        from campaigns import hooks, tasks  # noqa: F401
        from campaigns.selectors import recommendation_block_outcome
        from campaigns.services import campaign_data_erase
        from consent.services import erasure_hook_register
        from recommendations.outcomes import outcome_source_register

        # Journeys and deliveries follow profile merges and unmerges (identity.hooks).
        hooks.register()
        # An erased subject's journeys, deliveries and tracking rows go with them.
        erasure_hook_register(name=self.label, hook=campaign_data_erase)
        # The recommender's click-through: its blocks in sent emails and their clicks.
        outcome_source_register(name=self.label, source=recommendation_block_outcome)
