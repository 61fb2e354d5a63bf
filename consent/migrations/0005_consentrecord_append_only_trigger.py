"""Consent history refuses UPDATE and DELETE in PostgreSQL too (the trigger function is the
access app's, see access migration 0003); only an erasure, through
`access.services.history_rewrite(reason="erasure")`, may delete records."""

from django.db import migrations

TRIGGER = """
CREATE OR REPLACE TRIGGER consent_consentrecord_append_only
    BEFORE UPDATE OR DELETE ON consent_consentrecord
    FOR EACH ROW EXECUTE FUNCTION cdp_append_only('erasure');
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGGER)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "DROP TRIGGER IF EXISTS consent_consentrecord_append_only ON consent_consentrecord"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0004_consentsource_preference_center"),
        ("access", "0003_append_only_trigger"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
