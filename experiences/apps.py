from django.apps import AppConfig


class ExperiencesConfig(AppConfig):
    name = "experiences"

    def ready(self) -> None:
        from consent.services import (
            erasure_hook_register,
            retention_hook_register,
            suppression_hook_register,
        )
        from experiences import (
            hooks,
            tasks,  # noqa: F401  (beat names the bandit refresh task)
        )
        from experiences.services import decisions_erase, decisions_purge, decisions_suppress

        # Decisions follow profile merges and unmerges (identity.hooks).
        hooks.register()
        # An erased or suppressed subject's decisions go with them.
        erasure_hook_register(name=self.label, hook=decisions_erase)
        suppression_hook_register(name=self.label, hook=decisions_suppress)
        # Retention purges old decisions that nothing relies on any more.
        retention_hook_register(name=self.label, hook=decisions_purge)
