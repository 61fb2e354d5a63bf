"""Who may reach the platform and what they did: event sources with their write keys, API keys
for systems, and the audit log.

Neither key is stored in clear: a write key or API key is kept as its SHA-256 digest (they are
long random tokens, so a fast hash is enough and lets us look a key up by its digest) plus a
short prefix that staff can recognise.

The tables keep the names they were created with (in the `cdp` and `consent` apps): the move to
this app changed only where the models live, and renaming the tables would buy nothing.
"""

from django.conf import settings
from django.db import models


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
    """Rows are written once. The guard is an invariant of the table, not a workflow."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise AppendOnlyError(f"{type(self).__name__} rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"{type(self).__name__} rows are append-only")


class AuditLog(AppendOnlyModel):
    """Who viewed, exported, changed or erased what, when, from where. Profiles are named by
    id only, never by an identifier, so erasure never has to touch this table."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
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

    class Meta:
        db_table = "consent_auditlog"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.resource} {self.resource_id}"
