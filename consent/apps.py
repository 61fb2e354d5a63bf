from django.apps import AppConfig


class ConsentConfig(AppConfig):
    name = "consent"
    verbose_name = "Consent and privacy"

    def ready(self) -> None:
        # Imported here: models can be imported only once the app registry is ready.
        from consent.services import suppression_ingest_filter
        from profiles.ingestion import register_ingest_filter

        # Suppressed subjects' events are dropped at ingestion, before anything is stored.
        register_ingest_filter(suppression_ingest_filter)
