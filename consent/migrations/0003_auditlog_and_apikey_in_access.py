"""AuditLog moved to the `access` app (same table); the API key it points at lives there too."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("access", "0001_initial"),
        ("consent", "0002_default_purposes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="privacyrequest",
                    name="submitted_by_key",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="access.apikey",
                    ),
                ),
                migrations.DeleteModel(
                    name="AuditLog",
                ),
            ],
            database_operations=[],
        ),
    ]
