"""Platform-level records: event sources with their write keys, and API keys for systems.

Neither key is stored in clear: a write key or API key is kept as its SHA-256 digest (they are
long random tokens, so a fast hash is enough and lets us look a key up by its digest) plus a
short prefix that staff can recognise.
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
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


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
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes
