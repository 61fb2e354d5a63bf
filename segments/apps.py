from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"

    def ready(self) -> None:
        # Registers the tasks in every process that may queue one, not only in the workers
        # (which find them by autodiscovery): services queue tasks by name
        # (access.queueing).
        import segments.tasks  # noqa: F401
        from consent.services import erasure_hook_register, retention_hook_register
        from profiles.extensions import computed_provider_register
        from segments import hooks, selectors
        from segments.services import segment_data_erase, webhook_deliveries_purge

        # Memberships follow profile merges and unmerges (identity.hooks).
        hooks.register()
        # An erased subject's memberships, history and scores go with it.
        erasure_hook_register(name=self.label, hook=segment_data_erase)
        # Retention purges the webhook bodies sent long ago.
        retention_hook_register(name=self.label, hook=webhook_deliveries_purge)
        # The serving models' scores in the profile API's `computed` (profiles.extensions).
        computed_provider_register(name=self.label, provider=selectors.profiles_model_scores)
