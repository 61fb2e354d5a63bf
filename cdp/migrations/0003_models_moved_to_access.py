"""Source and ApiKey moved to the `access` app (same tables): only the state forgets them here."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("cdp", "0002_roles"),
        ("consent", "0003_auditlog_and_apikey_in_access"),
        ("profiles", "0006_source_in_access"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name="apikey",
                    name="created_by",
                ),
                migrations.DeleteModel(
                    name="Source",
                ),
                migrations.DeleteModel(
                    name="ApiKey",
                ),
            ],
            database_operations=[],
        ),
    ]
