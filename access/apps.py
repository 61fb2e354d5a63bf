from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "access"
    verbose_name = "Access and audit"

    def ready(self) -> None:
        from access.accounts import audit_receivers_connect

        audit_receivers_connect()
