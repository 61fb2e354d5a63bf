"""Chain the audit rows: each carries the hash of the one before (`access.audit_chain`).
Rows written before this migration are chained here, in id order; rerunning recomputes the
same hashes."""

import django.utils.timezone
from django.db import migrations, models

from access.audit_chain import GENESIS, audit_row_hash


def chain_existing_rows(apps, schema_editor):
    AuditLog = apps.get_model("access", "AuditLog")
    prev = GENESIS
    batch = []
    for row in AuditLog.objects.order_by("id").iterator(chunk_size=2000):
        row.prev_hash = prev
        row.row_hash = prev = audit_row_hash(row.__dict__, prev_hash=prev)
        batch.append(row)
        if len(batch) == 2000:
            AuditLog.objects.bulk_update(batch, ["prev_hash", "row_hash"])
            batch = []
    AuditLog.objects.bulk_update(batch, ["prev_hash", "row_hash"])


class Migration(migrations.Migration):
    dependencies = [
        ("access", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditlog",
            name="created_at",
            field=models.DateTimeField(db_index=True, default=django.utils.timezone.now),
        ),
        migrations.AddField(
            model_name="auditlog",
            name="prev_hash",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="auditlog",
            name="row_hash",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(chain_existing_rows, migrations.RunPython.noop),
    ]
