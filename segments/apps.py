from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"

    def ready(self) -> None:
        # Memberships follow profile merges and unmerges (identity.hooks).
        from segments import hooks

        hooks.register()
