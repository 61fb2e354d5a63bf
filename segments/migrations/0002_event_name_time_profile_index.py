"""A covering index for event conditions: "profiles who did X (in a window)" reads
(event, timestamp, profile_id) straight from the index (an index-only scan) instead of
visiting every matching event row. The events table belongs to profiles; the index exists
for segments, so it is created (and dropped) here. Safe to rerun (IF NOT EXISTS)."""

from django.db import migrations

INDEX = "segments_event_name_time_profile_idx"


class Migration(migrations.Migration):
    dependencies = [
        ("segments", "0001_initial"),
        ("profiles", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            sql=f'CREATE INDEX IF NOT EXISTS {INDEX} ON profiles_event (event, "timestamp", profile_id)',
            reverse_sql=f"DROP INDEX IF EXISTS {INDEX}",
        )
    ]
