"""Each segment gets its own random salt for its derived webhook signing secret. AddField
evaluates the callable default once for every existing row, so existing segments are given
distinct salts. No secret existed before this migration, so none is invalidated."""

import secrets

from django.db import migrations, models

import segments.models


def distinct_salts(apps, schema_editor):
    Segment = apps.get_model("segments", "Segment")
    for pk in Segment.objects.values_list("pk", flat=True).iterator(chunk_size=500):
        Segment.objects.filter(pk=pk).update(webhook_secret_salt=secrets.token_hex(16))


class Migration(migrations.Migration):
    dependencies = [
        ("segments", "0003_membershipchange_cause_merge"),
    ]

    operations = [
        migrations.AddField(
            model_name="segment",
            name="webhook_secret_salt",
            field=models.CharField(
                default=segments.models.new_webhook_secret_salt, editable=False, max_length=32
            ),
        ),
        migrations.RunPython(distinct_salts, migrations.RunPython.noop),
    ]
