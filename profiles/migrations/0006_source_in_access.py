"""Source moved to the `access` app (same table): only the state's reference changes."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("access", "0001_initial"),
        ("profiles", "0005_event_profile_indexes_partial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="droppedmessagecount",
                    name="source",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="drops",
                        to="access.source",
                    ),
                ),
                migrations.AlterField(
                    model_name="event",
                    name="source",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="events",
                        to="access.source",
                    ),
                ),
                migrations.AlterField(
                    model_name="quarantinedmessage",
                    name="source",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="quarantine",
                        to="access.source",
                    ),
                ),
                migrations.AlterField(
                    model_name="trackingplan",
                    name="source",
                    field=models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="plan",
                        to="access.source",
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]
