"""Who may reach the platform and what they did: event sources with their write keys, API keys
for systems, and the audit log.

Neither key is stored in clear: a write key or API key is kept as its SHA-256 digest (they are
long random tokens, so a fast hash is enough and lets us look a key up by its digest) plus a
short prefix that staff can recognise.

The tables keep the names they were created with (in the `cdp` and `consent` apps): the move to
this app changed only where the models live, and renaming the tables would buy nothing.
"""

import json
from typing import Any

from django.conf import settings
from django.db import connections, models, transaction
from django.utils import timezone

from access.audit_chain import GENESIS, audit_row_canonical, audit_row_hash


class Source(models.Model):
    """A system that sends events (website, iOS app, CRM...), identified by its write key."""

    name = models.CharField(max_length=200, unique=True)
    write_key_prefix = models.CharField(max_length=12)
    write_key_hash = models.CharField(max_length=64, unique=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_event_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "cdp_source"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


# The actor label of audit rows written with no actor (automated consent signals, retention
# purges, scheduled jobs).
SYSTEM_ACTOR = "system"


class ApiKey(models.Model):
    """A key for systems calling the management API (`/api/v1/`), scoped per resource."""

    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=12)
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "cdp_apikey"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class AppendOnlyError(RuntimeError):
    pass


class AppendOnlyModel(models.Model):
    """Rows are written once. The guard is an invariant of the table, not a workflow.

    These Python guards are the first line; on PostgreSQL a trigger (access migration
    0003, consent migration 0005) refuses UPDATE and DELETE whatever the path (QuerySet,
    raw SQL, the admin), except inside `access.services.history_rewrite` (erasure)."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise AppendOnlyError(f"{type(self).__name__} rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"{type(self).__name__} rows are append-only")


# Serialises appends to the audit chain across connections (pg_advisory_xact_lock's key).
AUDIT_CHAIN_LOCK = 0x0A0D17C4A1


class AuditLogQuerySet(models.QuerySet):
    """Appends chain each new row to the last one (`prev_hash`, `row_hash`). On PostgreSQL
    one statement does it (`cdp_audit_append`, access migration 0004): it takes a
    transaction-scoped advisory lock, so concurrent writers never fork the chain, reads the
    last hash and inserts; the lock is held until the writer's transaction commits (at once,
    outside a transaction). The application computes each row's canonical form. (SQLite, the
    embedded default, has one writer: the hashes are computed here.)"""

    def bulk_create(self, objs, *args: Any, **kwargs: Any) -> list["AuditLog"]:
        rows = list(objs)
        if not rows:
            return rows
        if connections[self.db].vendor == "postgresql":
            return self._append_in_database(rows)
        with transaction.atomic(using=self.db):
            prev = (
                self.model._default_manager.using(self.db)
                .order_by("-id")
                .values_list("row_hash", flat=True)
                .first()
                or GENESIS
            )
            for row in rows:
                row.prev_hash = prev
                row.row_hash = prev = audit_row_hash(row.__dict__, prev_hash=prev)
            return super().bulk_create(rows, *args, **kwargs)

    def _append_in_database(self, rows: list["AuditLog"]) -> list["AuditLog"]:
        payload = [
            {
                "created_at": row.created_at.isoformat(),
                "actor_id": row.actor_id,
                "actor_label": row.actor_label,
                "action": row.action,
                "resource": row.resource,
                "resource_id": row.resource_id,
                "profile_id": row.profile_id,
                "ip": row.ip,
                "details": row.details,
                "canonical": audit_row_canonical(row.__dict__).decode(),
            }
            for row in rows
        ]
        with connections[self.db].cursor() as cursor:
            cursor.execute(
                "SELECT out_id, out_prev, out_hash FROM cdp_audit_append(%s::jsonb, %s)",
                [json.dumps(payload), AUDIT_CHAIN_LOCK],
            )
            appended = cursor.fetchall()
        for row, (pk, prev_hash, row_hash) in zip(rows, appended, strict=True):
            row.pk, row.prev_hash, row.row_hash = pk, prev_hash, row_hash
            row._state.adding, row._state.db = False, self.db
        return rows

    def create(self, **kwargs: Any) -> "AuditLog":
        return self.bulk_create([self.model(**kwargs)])[0]


class AuditLog(AppendOnlyModel):
    """Who viewed, exported, changed or erased what, when, from where. Profiles are named by
    id only, never by an identifier, so erasure never has to touch this table: no rewrite
    reason opens it (see `access.audit_chain` for the one change the database allows)."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # "user:<username>", "api-key:<prefix>" or "system"; survives the user's deletion.
    actor_label = models.CharField(max_length=160)
    action = models.CharField(max_length=32, db_index=True)
    resource = models.CharField(max_length=64, db_index=True)
    resource_id = models.CharField(max_length=64, blank=True)
    profile_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64, editable=False)
    row_hash = models.CharField(max_length=64, editable=False)

    objects = AuditLogQuerySet.as_manager()

    class Meta:
        db_table = "consent_auditlog"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.resource} {self.resource_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self._state.adding and not self.row_hash:
            raise AppendOnlyError("append audit rows with AuditLog.objects.create/bulk_create")
        super().save(*args, **kwargs)


class FileImport(models.Model):
    """What every worker-run import of a CSV or JSONL file records (profiles' DataImport,
    recommendations' ItemImport): its state, how far it got, and its bad rows by line number
    (`access.row_files` reads the rows). The concrete model adds its file and its counts."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        JSONL = "jsonl", "JSON Lines"

    file_name = models.CharField(max_length=255, blank=True, default="")
    format = models.CharField(max_length=8, choices=Format.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    # [{"line": 7, ...what was wrong...}, ...], the first MAX_REPORTED_ERRORS of them.
    errors = models.JSONField(default=list, blank=True)
    error_count = models.PositiveIntegerField(default=0)
    message = models.CharField(max_length=300, blank=True, default="")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-id"]

    @property
    def progress(self) -> int:
        """Percent of rows processed."""
        if self.status == self.Status.DONE:
            return 100
        if not self.total_rows:
            return 0
        return min(99, self.processed_rows * 100 // self.total_rows)

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)
