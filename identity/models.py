"""Exact identifiers: each normalized (kind, value) belongs to exactly one profile."""

from django.db import models


class IdentityKind(models.TextChoices):
    USER_ID = "user_id"
    ANONYMOUS_ID = "anonymous_id"
    EMAIL = "email"
    PHONE = "phone"
    DEVICE_ID = "device_id"


class Identity(models.Model):
    # A CharField, not a choices-bound field: later rules add kinds (crm_id, custom kinds).
    kind = models.CharField(max_length=32)
    value = models.CharField(max_length=320)
    profile = models.ForeignKey(
        "profiles.Profile", on_delete=models.CASCADE, related_name="identities"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "value"], name="identity_kind_value_uniq")
        ]
        indexes = [models.Index(fields=["profile", "kind"], name="identity_profile_kind_idx")]
        verbose_name_plural = "identities"

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"
