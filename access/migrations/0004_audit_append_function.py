"""On PostgreSQL, audit rows are appended by one database function, `cdp_audit_append`: it takes
the chain's lock, reads the last hash and inserts the rows with their hashes (SHA-256 of the
previous hash, a newline and the row's canonical form, which the application computes:
access.audit_chain) in one statement. The lock is then held for the function's run alone, not
across the application's round trips (under load, a web thread waiting for the GIL between
them held every other writer up: bench/audit.py).

Each statement of a volatile PL/pgSQL function takes a new snapshot, so the read of the last
hash, after the lock, sees the row its previous holder committed. SQLite keeps the Python path.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION cdp_audit_append(new_rows jsonb, lock_key bigint)
RETURNS TABLE (out_id bigint, out_prev varchar, out_hash varchar)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    prev varchar;
    new_row jsonb;
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    SELECT a.row_hash INTO prev FROM consent_auditlog a ORDER BY a.id DESC LIMIT 1;
    prev := coalesce(prev, repeat('0', 64));
    FOR new_row IN SELECT value FROM jsonb_array_elements(new_rows) LOOP
        out_prev := prev;
        out_hash := encode(
            sha256(convert_to(prev || E'\\n' || (new_row ->> 'canonical'), 'UTF8')), 'hex'
        );
        INSERT INTO consent_auditlog (
            created_at, actor_id, actor_label, action, resource, resource_id, profile_id, ip,
            details, prev_hash, row_hash
        ) VALUES (
            (new_row ->> 'created_at')::timestamptz, (new_row ->> 'actor_id')::integer,
            new_row ->> 'actor_label', new_row ->> 'action', new_row ->> 'resource',
            new_row ->> 'resource_id', (new_row ->> 'profile_id')::bigint,
            (new_row ->> 'ip')::inet, new_row -> 'details', out_prev, out_hash
        ) RETURNING consent_auditlog.id INTO out_id;
        RETURN NEXT;
        prev := out_hash;
    END LOOP;
END
$$;
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION, params=None)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS cdp_audit_append(jsonb, bigint)")


class Migration(migrations.Migration):
    dependencies = [
        ("access", "0003_append_only_trigger"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
