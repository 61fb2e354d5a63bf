from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "identity"

    def ready(self) -> None:
        # Imported here: models can be imported only once the app registry is ready.
        from consent.services import erasure_hook_register
        from identity.services import identities_erase

        # An erased subject's identities, match keys and merge records go with it.
        erasure_hook_register(name=self.label, hook=identities_erase)
