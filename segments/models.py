"""Segments: a definition (JSON condition tree, see segments/conditions.py), its materialised
membership with history and size snapshots, and the clustering/propensity models whose outputs
conditions can use."""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q


def new_webhook_secret_salt() -> str:
    return secrets.token_hex(16)


class Segment(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        ARCHIVED = "archived"

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    # Validated on every write by segments.conditions.validate (schema version below).
    definition = models.JSONField()
    definition_version = models.PositiveSmallIntegerField(default=1)
    # What the definition can depend on (trait keys, event names, ...), for real-time indexing.
    dependencies = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    # Optional: enter/exit changes are POSTed here (record-then-send, segments.tasks).
    webhook_url = models.URLField(max_length=2000, blank=True, default="")
    # The webhook signing secret is derived from SECRET_KEY and this salt, never stored
    # (segments.services.webhooks.webhook_secret); rotating the secret draws a new salt.
    webhook_secret_salt = models.CharField(
        max_length=32, default=new_webhook_secret_salt, editable=False
    )
    # After a rotation the previous secret signs too, until this time (Standard Webhooks
    # carries several signatures), so a receiver switches without refusing a delivery.
    previous_webhook_secret_salt = models.CharField(max_length=32, blank=True, editable=False)
    previous_webhook_secret_until = models.DateTimeField(null=True, blank=True)
    size = models.PositiveIntegerField(default=0)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["status"], name="segment_status_idx")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class SegmentMembership(models.Model):
    """A profile currently in a segment. Leaving deletes the row (history keeps the record)."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships")
    profile = models.ForeignKey(
        "profiles.Profile", on_delete=models.CASCADE, related_name="segment_memberships"
    )
    entered_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment", "profile"], name="membership_uniq")
        ]
        indexes = [models.Index(fields=["profile"], name="membership_profile_idx")]

    def __str__(self) -> str:
        return f"{self.profile_id} in {self.segment_id}"


class MembershipChange(models.Model):
    """History: one row per enter or exit."""

    class Kind(models.TextChoices):
        ENTER = "enter"
        EXIT = "exit"

    class Cause(models.TextChoices):
        REALTIME = "realtime", "An event was processed"
        REFRESH = "refresh", "Scheduled or manual refresh"
        DEFINITION = "definition", "The definition changed"
        MERGE = "merge", "Profiles were merged or unmerged"

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="changes")
    profile = models.ForeignKey(
        "profiles.Profile", on_delete=models.CASCADE, related_name="segment_changes"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices)
    cause = models.CharField(max_length=16, choices=Cause.choices)
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["segment", "-at"], name="change_segment_at_idx"),
            models.Index(fields=["profile", "-at"], name="change_profile_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.profile_id} {self.kind} {self.segment_id}"


class SegmentSnapshot(models.Model):
    """The size of a segment at a moment: the size-over-time chart."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="snapshots")
    at = models.DateTimeField()
    size = models.PositiveIntegerField()

    class Meta:
        ordering = ["at"]
        indexes = [models.Index(fields=["segment", "at"], name="snapshot_segment_at_idx")]

    def __str__(self) -> str:
        return f"{self.segment_id}: {self.size} at {self.at:%Y-%m-%d %H:%M}"


class WebhookDelivery(models.Model):
    """Record-then-send: a batch of enter/exit changes to POST to a segment's webhook."""

    class State(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="deliveries")
    url = models.URLField(max_length=2000)
    payload = models.JSONField()
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Webhook {self.pk} ({self.state})"


class ModelRun(models.Model):
    """One training of a clustering or propensity model; the active one per kind is used."""

    class Kind(models.TextChoices):
        CLUSTER = "cluster", "Clustering"
        PURCHASE_30D = "purchase_30d", "Purchase in the next 30 days"
        CHURN = "churn", "Churn"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        # Trained, but no better than its simple baseline on the held-out period: kept for the
        # record and never used (the previous good model keeps serving).
        NOT_USED = "not_used", "not used"
        FAILED = "failed"

    class Algorithm(models.TextChoices):
        SUPERVISED = "supervised", "Gradient-boosted + linear model on stacked cut-offs"
        BG_NBD = "bg_nbd", "BG/NBD repeat-buying model (no labels needed)"
        KMEANS = "kmeans", "k-means clustering"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.CharField(max_length=300, blank=True, default="")
    is_active = models.BooleanField(default=False)
    algorithm = models.CharField(max_length=16, choices=Algorithm.choices, blank=True, default="")
    # Why the run serves or not, in words for the models page (the activation guard's verdict).
    decision = models.CharField(max_length=300, blank=True, default="")
    format_version = models.PositiveSmallIntegerField(default=1)
    data_hash = models.CharField(max_length=64, blank=True, default="")
    features = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    # Clusters: [{"id", "size", "centroid": {...}, "description", "name"}] (`name` editable).
    summary = models.JSONField(default=list, blank=True)
    # The model card (segments.ml.card.ModelCard): importance, calibration, training window.
    card = models.JSONField(default=dict, blank=True)
    artifact = models.BinaryField(null=True, blank=True)
    # A propensity run's scores at training, in decile bins (segments.ml.drift.Distribution):
    # what the drift check compares today's scores with.
    score_reference = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind"], condition=Q(is_active=True), name="modelrun_one_active_per_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} run {self.pk} ({self.status})"


class ModelDrift(models.Model):
    """One day's drift check of a serving propensity run: today's profiles scored by it, put
    in its training scores' bins (`shares`), and the population stability index between the
    two (segments.ml.drift). One row per run and day: a check run twice rewrites it."""

    run = models.ForeignKey(ModelRun, on_delete=models.CASCADE, related_name="drift_checks")
    day = models.DateField()
    psi = models.FloatField()
    shares = models.JSONField(default=list)
    scored = models.PositiveIntegerField()
    checked_at = models.DateTimeField()

    class Meta:
        ordering = ["run", "day"]
        constraints = [
            models.UniqueConstraint(fields=["run", "day"], name="segments_modeldrift_run_day_uniq")
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} PSI {self.psi:.3f} on {self.day}"


class ProfileScore(models.Model):
    """The active model's output for a profile: cluster number, propensity score, or the
    predicted lifetime value the purchase run writes beside its scores."""

    class Kind(models.TextChoices):
        CLUSTER = "cluster", "Cluster"
        PURCHASE_30D = "purchase_30d", "Purchase in the next 30 days"
        CHURN = "churn", "Churn"
        PREDICTED_LTV = "predicted_ltv", "Predicted 12-month value"

    profile = models.ForeignKey(
        "profiles.Profile", on_delete=models.CASCADE, related_name="segment_scores"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    value = models.FloatField()
    run = models.ForeignKey(ModelRun, on_delete=models.CASCADE, related_name="scores")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["profile", "kind"], name="profilescore_uniq")
        ]
        indexes = [models.Index(fields=["kind", "value"], name="profilescore_kind_value_idx")]

    def __str__(self) -> str:
        return f"{self.profile_id} {self.kind}={self.value:.3f}"
