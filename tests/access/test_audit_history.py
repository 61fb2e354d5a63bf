"""A history nobody can rewrite: audit rows and consent records refuse UPDATE and DELETE in
PostgreSQL whatever the path, only erasure opens consent history (audited), and the audit
log's hash chain shows any change made round the trigger (as a database owner could)."""

import threading
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from access.audit_chain import (
    GENESIS,
    AuditAnchor,
    AuditAnchorForgedError,
    audit_anchor_line,
    audit_anchor_parse,
    audit_row_hash,
)
from access.models import AuditLog
from access.selectors import audit_chain_verify
from access.services import audit_chain_anchor, audit_record, history_rewrite
from access.tasks import audit_chain_anchor_task
from consent import services as consent_services
from consent.models import ConsentRecord
from profiles.models import Profile

pytestmark = pytest.mark.django_db


def refused(run) -> None:
    """`run` raises a database error (the trigger) and leaves the transaction usable."""
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        run()


def sql(statement: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def as_table_owner(statement: str, params: list | None = None) -> None:
    """What only a database superuser could do: change rows with triggers switched off."""
    with transaction.atomic():
        sql("SET LOCAL session_replication_role = replica")
        sql(statement, params)
        sql("SET LOCAL session_replication_role = DEFAULT")


@pytest.fixture
def consent_row() -> ConsentRecord:
    profile = Profile.objects.create(traits={"plan": "pro"})
    return consent_services.consent_record(
        profile=profile, purpose="push", granted=True, source="api"
    )


def test_audit_rows_refuse_queryset_update_and_delete_in_the_database():
    row = audit_record(actor=None, action="view", resource="profiles", profile_id=1)
    refused(lambda: AuditLog.objects.filter(pk=row.pk).update(action="erase"))
    refused(lambda: AuditLog.objects.filter(pk=row.pk).delete())
    refused(lambda: AuditLog.objects.filter(pk=row.pk)._raw_delete(connection.alias))
    assert AuditLog.objects.get(pk=row.pk).action == "view"


def test_audit_rows_refuse_raw_sql_even_with_the_erasure_setting():
    row = audit_record(actor=None, action="view", resource="profiles")
    refused(lambda: sql("UPDATE consent_auditlog SET action = 'x' WHERE id = %s", [row.pk]))
    refused(lambda: sql("DELETE FROM consent_auditlog WHERE id = %s", [row.pk]))

    def delete_inside_an_erasure():
        with history_rewrite(reason="erasure"):
            sql("DELETE FROM consent_auditlog WHERE id = %s", [row.pk])

    refused(delete_inside_an_erasure)
    assert AuditLog.objects.filter(pk=row.pk).exists()


def test_consent_records_refuse_queryset_raw_sql_and_a_profile_cascade(consent_row):
    refused(lambda: ConsentRecord.objects.filter(pk=consent_row.pk).update(granted=False))
    refused(lambda: ConsentRecord.objects.filter(pk=consent_row.pk).delete())
    refused(lambda: sql("DELETE FROM consent_consentrecord WHERE id = %s", [consent_row.pk]))
    refused(lambda: sql("UPDATE consent_consentrecord SET granted = false"))
    refused(lambda: Profile.objects.filter(pk=consent_row.profile_id).delete())
    # A setting of another name, or of an unknown reason, opens nothing.
    refused(
        lambda: (
            sql("SELECT set_config('cdp.allow_audit_rewrite', 'retention', true)"),
            ConsentRecord.objects.all().delete(),
        )
    )
    assert ConsentRecord.objects.get(pk=consent_row.pk).granted is True


def test_erasure_deletes_consent_history_through_the_audited_door_only(consent_row):
    with transaction.atomic():
        with history_rewrite(reason="erasure", details={"profiles": 1}):
            ConsentRecord.objects.filter(pk=consent_row.pk).delete()
        # The door closes at the end of the block, not at the end of the transaction.
        other = consent_services.consent_record(
            profile=consent_row.profile, purpose="push", granted=False, source="api"
        )
        refused(lambda: ConsentRecord.objects.filter(pk=other.pk).delete())
    assert list(ConsentRecord.objects.values_list("pk", flat=True)) == [other.pk]
    row = AuditLog.objects.get(action="history.rewrite")
    assert (row.resource_id, row.details) == ("erasure", {"profiles": 1})


def test_a_failed_erasure_leaves_the_door_shut(consent_row):
    with transaction.atomic():
        with pytest.raises(LookupError), history_rewrite(reason="erasure"):
            raise LookupError("the erasure failed half way")
        refused(lambda: ConsentRecord.objects.all().delete())
    assert not AuditLog.objects.filter(action="history.rewrite").exists()


def test_the_admin_offers_no_way_to_change_or_delete_history(client, consent_row):
    superuser = User.objects.create_superuser("root", "root@example.com", "pw-123456789")
    client.force_login(superuser)
    audit_row = AuditLog.objects.first()
    for url in (
        f"/admin/access/auditlog/{audit_row.pk}/delete/",
        f"/admin/consent/consentrecord/{consent_row.pk}/delete/",
    ):
        assert client.post(url, {"post": "yes"}).status_code == 403
    for url, pk in (
        ("/admin/access/auditlog/", audit_row.pk),
        ("/admin/consent/consentrecord/", consent_row.pk),
    ):
        client.post(url, {"action": "delete_selected", "_selected_action": [pk], "post": "yes"})
        assert client.get(f"{url}{pk}/change/").status_code == 200
    assert AuditLog.objects.filter(pk=audit_row.pk).exists()
    assert ConsentRecord.objects.filter(pk=consent_row.pk).exists()


def test_deleting_a_staff_user_keeps_their_audit_rows_and_the_chain(compliance):
    audit_record(actor=compliance, action="view", resource="profiles", profile_id=3)
    compliance.delete()
    row = AuditLog.objects.get(action="view")
    assert row.actor_id is None and row.actor_label == "user:compliance"
    assert audit_chain_verify().intact


def test_each_audit_row_carries_the_hash_of_the_one_before():
    rows = [audit_record(actor=None, action="view", resource="r", resource_id=i) for i in range(3)]
    stored = list(AuditLog.objects.order_by("id"))
    assert stored[0].prev_hash == GENESIS
    assert [r.prev_hash for r in stored[1:]] == [r.row_hash for r in stored[:-1]]
    assert [r.row_hash for r in stored] == [r.row_hash for r in rows]
    report = audit_chain_verify()
    assert (report.intact, report.rows_checked, report.head_hash) == (True, 3, rows[-1].row_hash)


def storable_text(max_size: int) -> st.SearchStrategy[str]:
    # PostgreSQL text and JSON hold no NUL character.
    return st.text(st.characters(exclude_characters="\x00"), max_size=max_size)


@settings(max_examples=25)
@given(
    details=st.dictionaries(
        storable_text(8),
        st.recursive(
            st.none()
            | st.booleans()
            | st.integers(-(2**53), 2**53)
            | st.floats(allow_nan=False, allow_infinity=False)
            | storable_text(12),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(storable_text(4), inner),
            max_leaves=6,
        ),
        max_size=4,
    ),
    ip=st.ip_addresses().map(str) | st.none(),
    resource_id=storable_text(64),
)
def test_a_row_read_back_from_the_database_hashes_as_it_was_written(details, ip, resource_id):
    written = audit_record(
        actor=None, action="x", resource="r", resource_id=resource_id, ip=ip, details=details
    )
    read = AuditLog.objects.get(pk=written.pk)
    assert audit_row_hash(read.__dict__, prev_hash=read.prev_hash) == written.row_hash


def test_audit_verify_names_the_first_changed_row():
    rows = [audit_record(actor=None, action="view", resource="r", resource_id=i) for i in range(4)]
    out = StringIO()
    call_command("audit_verify", stdout=out)
    assert "intact: 4 rows" in out.getvalue()
    as_table_owner("UPDATE consent_auditlog SET action = 'erase' WHERE id = %s", [rows[2].pk])
    as_table_owner("UPDATE consent_auditlog SET action = 'erase' WHERE id = %s", [rows[3].pk])
    with pytest.raises(CommandError, match=f"broken at row {rows[2].pk}: it was changed"):
        call_command("audit_verify")


def test_audit_verify_sees_a_removed_row_even_when_the_hashes_were_kept():
    rows = [audit_record(actor=None, action="view", resource="r", resource_id=i) for i in range(3)]
    as_table_owner("DELETE FROM consent_auditlog WHERE id = %s", [rows[1].pk])
    with pytest.raises(CommandError, match=f"broken at row {rows[2].pk}: it does not link"):
        call_command("audit_verify")


def test_the_audit_page_says_whether_the_chain_is_intact(client, compliance):
    row = audit_record(actor=None, action="view", resource="r")
    client.force_login(compliance)
    page = client.get("/privacy/audit/").content.decode()
    assert "Hash chain intact" in page
    as_table_owner("UPDATE consent_auditlog SET resource = 'other' WHERE id = %s", [row.pk])
    # The page rehashes new rows only; a change to an old row shows at the next full check.
    from django.core.cache import cache

    cache.clear()
    page = client.get("/privacy/audit/").content.decode()
    assert f"Hash chain broken</strong> at row {row.pk}" in page


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain():
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(15):
                with transaction.atomic():
                    audit_record(actor=None, action="view", resource=f"w{n}", resource_id=i)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    report = audit_chain_verify()
    assert (report.intact, report.rows_checked) == (True, 90)
    assert AuditLog.objects.values("prev_hash").distinct().count() == 90


# --- anchors outside the database ----------------------------------------------------------


def rewrite_chain_from(row_id: int, *, action: str) -> None:
    """What a database superuser could do round the trigger and the chain: change a row, then
    recompute the hash of it and of every row after it, so that the chain verifies again."""
    as_table_owner("UPDATE consent_auditlog SET action = %s WHERE id = %s", [action, row_id])
    previous = AuditLog.objects.filter(id__lt=row_id).order_by("-id").first()
    prev = previous.row_hash if previous else GENESIS
    for row in AuditLog.objects.filter(id__gte=row_id).order_by("id"):
        row_hash = audit_row_hash(row.__dict__, prev_hash=prev)
        as_table_owner(
            "UPDATE consent_auditlog SET prev_hash = %s, row_hash = %s WHERE id = %s",
            [prev, row_hash, row.pk],
        )
        prev = row_hash


def anchor_lines(settings) -> list[bytes]:
    with open(settings.AUDIT_ANCHOR_PATH, "rb") as file:
        return file.read().splitlines()


def test_an_anchor_line_reads_back_only_with_its_signature():
    anchor = AuditAnchor(
        at=datetime(2026, 12, 7, 18, 0, tzinfo=UTC), rows=3, head_id=9, head_hash="ab" * 32
    )
    line = audit_anchor_line(anchor, key=b"k1")
    assert audit_anchor_parse(line, key=b"k1") == anchor
    with pytest.raises(AuditAnchorForgedError, match="signature"):
        audit_anchor_parse(line, key=b"another key")
    with pytest.raises(AuditAnchorForgedError, match="signature"):
        audit_anchor_parse(line.replace(b'"rows":3', b'"rows":4'), key=b"k1")
    with pytest.raises(AuditAnchorForgedError, match="not an anchor"):
        audit_anchor_parse(b"{not json", key=b"k1")


def test_audit_verify_anchors_the_head_outside_the_database(settings):
    rows = [audit_record(actor=None, action="view", resource="r", resource_id=i) for i in range(3)]
    out = StringIO()
    call_command("audit_verify", stdout=out)
    assert "intact: 3 rows" in out.getvalue() and "0 earlier anchor(s) match" in out.getvalue()
    (line,) = anchor_lines(settings)
    anchor = audit_anchor_parse(line, key=settings.AUDIT_ANCHOR_KEY.encode())
    assert (anchor.rows, anchor.head_id, anchor.head_hash) == (3, rows[-1].pk, rows[-1].row_hash)
    audit_record(actor=None, action="view", resource="r", resource_id=3)
    out = StringIO()
    call_command("audit_verify", stdout=out)
    assert "intact: 4 rows" in out.getvalue() and "1 earlier anchor(s) match" in out.getvalue()
    assert len(anchor_lines(settings)) == 2


def test_a_chain_rewritten_with_recomputed_hashes_no_longer_matches_its_anchor(
    settings, client, compliance
):
    rows = [audit_record(actor=None, action="view", resource="r", resource_id=i) for i in range(5)]
    call_command("audit_verify", stdout=StringIO())
    rewrite_chain_from(rows[1].pk, action="erase")
    # The chain alone is fooled: every link and hash is right again.
    assert audit_chain_verify().intact
    with pytest.raises(
        CommandError, match=f"broken at row {rows[-1].pk}: it no longer has the hash anchored at"
    ):
        call_command("audit_verify")
    assert len(anchor_lines(settings)) == 1  # a rewritten chain is not anchored
    client.force_login(compliance)
    page = client.get("/privacy/audit/").content.decode()
    assert f"Hash chain broken</strong> at row {rows[-1].pk}" in page


def test_a_log_emptied_and_refilled_is_missing_its_anchored_head(settings):
    rows = [audit_record(actor=None, action="view", resource="r", resource_id=i) for i in range(2)]
    call_command("audit_verify", stdout=StringIO())
    as_table_owner("DELETE FROM consent_auditlog")
    audit_record(actor=None, action="view", resource="r", resource_id="new")
    with pytest.raises(CommandError, match=f"broken at row {rows[-1].pk}: it is missing"):
        call_command("audit_verify")


def test_a_forged_anchor_line_is_reported(settings):
    audit_record(actor=None, action="view", resource="r")
    call_command("audit_verify", stdout=StringIO())
    forged = AuditAnchor(at=datetime.now(UTC), rows=1, head_id=1, head_hash="0" * 64)
    with open(settings.AUDIT_ANCHOR_PATH, "ab") as file:
        file.write(audit_anchor_line(forged, key=b"a guessed key"))
    with pytest.raises(CommandError, match="line 2: its signature does not match"):
        call_command("audit_verify")


def test_beat_anchors_new_rows_and_refuses_to_anchor_a_rewritten_chain(settings):
    rows = [audit_record(actor=None, action="view", resource="r", resource_id=i) for i in range(2)]
    audit_chain_anchor_task.delay()
    rows.append(audit_record(actor=None, action="view", resource="r", resource_id=2))
    audit_chain_anchor_task.delay()
    key = settings.AUDIT_ANCHOR_KEY.encode()
    anchors = [audit_anchor_parse(line, key=key) for line in anchor_lines(settings)]
    assert [(a.rows, a.head_id) for a in anchors] == [(2, rows[1].pk), (3, rows[2].pk)]
    rewrite_chain_from(rows[0].pk, action="erase")
    audit_record(actor=None, action="view", resource="r", resource_id=3)
    report = audit_chain_anchor(full=False)
    assert (report.broken_row_id, len(anchor_lines(settings))) == (rows[2].pk, 2)
