"""Consent, privacy requests, suppression and retention.

Consent records are append-only history: nothing updates or deletes them (`save()` refuses an
update, `delete()` refuses outright, and on PostgreSQL a trigger refuses any UPDATE or DELETE)
but an erasure, through `access.services.history_rewrite`. The current consent of a profile is
derived from its records (the latest per purpose wins).

Identifiers that must outlive an erasure (suppressions, tombstones, finished requests) are kept
only as keyed hashes (`consent.hashing.identifier_hash`), never in clear.
"""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from access.models import AppendOnlyModel


class LegalBasis(models.TextChoices):
    CONSENT = "consent", "Consent (GDPR art. 6(1)(a))"
    CONTRACT = "contract", "Contract (art. 6(1)(b))"
    LEGAL_OBLIGATION = "legal_obligation", "Legal obligation (art. 6(1)(c))"
    LEGITIMATE_INTEREST = "legitimate_interest", "Legitimate interest (art. 6(1)(f))"


class Purpose(models.Model):
    """What we use data for. `granted_by_default` answers for profiles that never said."""

    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    legal_basis = models.CharField(
        max_length=32, choices=LegalBasis.choices, default=LegalBasis.CONSENT
    )
    granted_by_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class ConsentCategoryMapping(models.Model):
    """Maps a consent category sent by a CMP or SDK (Segment's categoryPreferences keys,
    OneTrust ids in RudderStack's consentManagement, Google Consent Mode fields) to a purpose.
    Categories are matched case-insensitively (stored lower-case)."""

    category = models.CharField(max_length=120, unique=True)
    purpose = models.ForeignKey(Purpose, on_delete=models.CASCADE, related_name="categories")

    class Meta:
        ordering = ["category"]

    def __str__(self) -> str:
        return f"{self.category} → {self.purpose.code}"


class ConsentSource(models.TextChoices):
    API = "api", "REST API"
    SDK = "sdk", "SDK event context"
    UI = "ui", "Console"
    IMPORT = "import", "Import"
    # The person's own choice through a signed link in a message (campaigns' unsubscribe).
    PREFERENCE_CENTER = "preference_center", "Preference centre"


class ConsentRecord(AppendOnlyModel):
    profile = models.ForeignKey(
        "profiles.Profile", on_delete=models.CASCADE, related_name="consent_records"
    )
    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="records")
    granted = models.BooleanField()
    source = models.CharField(max_length=32, choices=ConsentSource.choices)
    policy_version = models.CharField(max_length=64, blank=True)
    # When the person decided (event time for SDK signals); recorded_at is when we learnt it.
    occurred_at = models.DateTimeField(default=timezone.now)
    recorded_at = models.DateTimeField(auto_now_add=True)
    # Proof: which message/key/user brought it, the raw category values. Never free text PII.
    evidence = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(
                fields=["profile", "purpose", "-occurred_at", "-id"],
                name="consent_latest_idx",
            )
        ]

    def __str__(self) -> str:
        verb = "granted" if self.granted else "withdrew"
        return f"Profile {self.profile_id} {verb} {self.purpose_id}"


class Suppression(models.Model):
    """A subject whose events are dropped at ingestion (counted, never stored)."""

    identifier_hash = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=32)
    # Kept as a plain id: the profile may be erased while the suppression stays.
    profile_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    request = models.ForeignKey(
        "PrivacyRequest", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    dropped_count = models.PositiveBigIntegerField(default=0)
    last_dropped_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Suppressed {self.kind} {self.identifier_hash[:10]}…"


class RegulationType(models.TextChoices):
    SUPPRESS_ONLY = "SUPPRESS_ONLY", "Suppress only"
    UNSUPPRESS = "UNSUPPRESS", "Unsuppress"
    SUPPRESS_WITH_DELETE = "SUPPRESS_WITH_DELETE", "Suppress and delete"
    DELETE_ONLY = "DELETE_ONLY", "Delete only"
    ACCESS = "ACCESS", "Access (export)"
    RECTIFY = "RECTIFY", "Rectify"


class Regulation(models.TextChoices):
    GDPR = "GDPR", "GDPR"
    CCPA = "CCPA", "CCPA"
    OTHER = "OTHER", "Other"


class RequestStatus(models.TextChoices):
    NOT_VERIFIED = "NOT_VERIFIED", "Waiting for identity verification"
    INITIALIZED = "INITIALIZED", "Initialized"
    RUNNING = "RUNNING", "Running"
    FINISHED = "FINISHED", "Finished"
    PARTIAL_SUCCESS = "PARTIAL_SUCCESS", "Partial success"
    FAILED = "FAILED", "Failed"
    CANCELLED = "CANCELLED", "Cancelled"


OPEN_STATUSES = {RequestStatus.NOT_VERIFIED, RequestStatus.INITIALIZED, RequestStatus.RUNNING}


def default_due_days(regulation: str) -> int:
    return settings.PRIVACY_DUE_DAYS.get(regulation, settings.PRIVACY_DUE_DAYS["OTHER"])


class PrivacyRequest(models.Model):
    regulation_type = models.CharField(max_length=32, choices=RegulationType.choices)
    regulation = models.CharField(max_length=8, choices=Regulation.choices, default="GDPR")
    status = models.CharField(
        max_length=16, choices=RequestStatus.choices, default=RequestStatus.INITIALIZED
    )
    # The subject as submitted ({"email": ...}); emptied once the request is done, when only
    # `subject_hashes` (kind -> keyed hash) remain as proof.
    subject = models.JSONField(default=dict, blank=True)
    subject_hashes = models.JSONField(default=dict, blank=True)
    subject_kinds = models.CharField(max_length=120, blank=True)
    # RECTIFY: {"traits": {...}} to set on the subject's profiles.
    changes = models.JSONField(default=dict, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    verification_note = models.CharField(max_length=500, blank=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    submitted_by_key = models.ForeignKey(
        "access.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_privacy_requests",
    )
    due_at = models.DateTimeField()
    progress = models.PositiveSmallIntegerField(default=0)
    # Counts of what was done (rows deleted per table, profiles found...), no PII.
    result = models.JSONField(default=dict, blank=True)
    # The post-erasure scan: {"clean": bool, "hits": [{"table", "column", "count"}], ...}
    verification = models.JSONField(default=dict, blank=True)
    export_file = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [models.Index(fields=["status", "due_at"], name="privacy_status_due_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(progress__lte=100), name="privacy_progress_at_most_100"
            )
        ]

    def __str__(self) -> str:
        return f"{self.regulation_type} #{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_overdue(self) -> bool:
        return self.is_open and self.due_at < timezone.now()

    @staticmethod
    def due_for(regulation: str, start=None):
        return (start or timezone.now()) + timedelta(days=default_due_days(regulation))


class PrivacyRequestComment(models.Model):
    request = models.ForeignKey(PrivacyRequest, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Comment on #{self.request_id}"


class ErasureTombstone(models.Model):
    """The minimal proof that a subject was erased: hashed identifier, when, by which request."""

    identifier_hash = models.CharField(max_length=64, db_index=True)
    kind = models.CharField(max_length=32)
    request = models.ForeignKey(
        PrivacyRequest, null=True, on_delete=models.SET_NULL, related_name="tombstones"
    )
    erased_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-erased_at"]

    def __str__(self) -> str:
        return f"Erased {self.kind} {self.identifier_hash[:10]}…"


class RetentionPolicy(models.Model):
    """Events named `event_name` older than `days` are purged; "*" covers every other name."""

    event_name = models.CharField(max_length=255, unique=True)
    days = models.PositiveIntegerField()
    enabled = models.BooleanField(default=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_purged = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["event_name"]
        verbose_name_plural = "retention policies"
        constraints = [
            models.CheckConstraint(condition=Q(days__gte=1), name="retention_days_gte_1")
        ]

    def __str__(self) -> str:
        return f"{self.event_name}: {self.days} days"
