"""On PostgreSQL, append-only tables refuse UPDATE and DELETE in the database itself, so no
path (QuerySet.update/delete, raw SQL, the admin, a cascade) gets round the models' guards.

`cdp_append_only()` is the trigger function every append-only table uses; its arguments are
the rewrite reasons that table admits. A reason is opened only by
`access.services.history_rewrite`, which sets `cdp.allow_audit_rewrite` for its own
transaction (set_config(..., is_local => true)) and audits the rewrite. The audit log admits
no reason; the one change it allows is clearing `actor_id` (and nothing else) when a staff
user is deleted, which the hash chain does not cover.

TRUNCATE is left alone: it is what the test suite's flush uses, and only the table's owner
may run it. SQLite, the embedded default, keeps the Python guards only.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION cdp_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    reason text := coalesce(current_setting('cdp.allow_audit_rewrite', true), '');
BEGIN
    IF reason <> '' AND reason = ANY (TG_ARGV) THEN
        RETURN coalesce(NEW, OLD);
    END IF;
    -- Nested: plpgsql does not promise to stop at the first false condition, and other
    -- tables have no actor_id.
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'consent_auditlog' THEN
        IF to_jsonb(NEW) -> 'actor_id' = 'null'::jsonb
                AND to_jsonb(NEW) - 'actor_id' = to_jsonb(OLD) - 'actor_id' THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION '% rows are append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;
"""

AUDIT_TRIGGER = """
CREATE OR REPLACE TRIGGER consent_auditlog_append_only
    BEFORE UPDATE OR DELETE ON consent_auditlog
    FOR EACH ROW EXECUTE FUNCTION cdp_append_only();
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION, params=None)
        schema_editor.execute(AUDIT_TRIGGER)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP TRIGGER IF EXISTS consent_auditlog_append_only ON consent_auditlog")


class Migration(migrations.Migration):
    dependencies = [
        ("access", "0002_auditlog_hash_chain"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
