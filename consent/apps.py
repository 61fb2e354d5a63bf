from django.apps import AppConfig


class ConsentConfig(AppConfig):
    name = "consent"
    verbose_name = "Consent and privacy"

    def ready(self) -> None:
        # Suppressed subjects' events are dropped at ingestion, before anything is stored.
        try:
            from profiles.ingestion import register_ingest_filter
        except ImportError:  # ingestion without filter support: nothing to register with
            return
        from consent.services import suppression_ingest_filter

        register_ingest_filter(suppression_ingest_filter)
