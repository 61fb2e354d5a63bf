"""Personalised content: placements (named slots on a site or in an app), experiences that
fill them for an audience, and the decisions taken (who saw which variant), which make
assignment sticky and are the unit of an experience's results."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class Placement(models.Model):
    """A slot such as `home_hero`. Every content shown in it (the default and each variant's)
    is validated against `content_schema` (a JSON Schema) on write."""

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    content_schema = models.JSONField(default=dict, blank=True)
    default_content = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class Experience(models.Model):
    """Fills a placement for an audience. Validated on every write by
    experiences.definition.experience_problems: `audience` is a condition in the segment
    language (or null: everyone), `page` a list of page-context conditions, `variants` a list
    of {"name", "weight", "content"}."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        ACTIVE = "active"
        PAUSED = "paused"
        ENDED = "ended"

    class Allocation(models.TextChoices):
        SPLIT = "split"
        BANDIT = "bandit"
        SINGLE = "single"

    placement = models.ForeignKey(Placement, on_delete=models.PROTECT, related_name="experiences")
    name = models.CharField(max_length=200)
    audience = models.JSONField(null=True, blank=True)
    page = models.JSONField(default=list, blank=True)
    variants = models.JSONField(default=list)
    allocation = models.CharField(
        max_length=16, choices=Allocation.choices, default=Allocation.SPLIT
    )
    # The event a bandit (and the results) count as a conversion; clicks when empty.
    goal_event = models.CharField(max_length=255, blank=True, default="")
    # Lower first: the first active experience whose audience matches wins the placement.
    priority = models.IntegerField(default=100)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    holdout_percent = models.FloatField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    # The bandit's latest allocation: {variant: share}, and {variant: probability best}.
    bandit_shares = models.JSONField(default=dict, blank=True)
    bandit_probability_best = models.JSONField(default=dict, blank=True)
    bandit_refreshed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["placement_id", "priority", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(holdout_percent__gte=0) & Q(holdout_percent__lt=100),
                name="experience_holdout_range",
            ),
            models.CheckConstraint(
                condition=Q(starts_at__isnull=True)
                | Q(ends_at__isnull=True)
                | Q(ends_at__gt=models.F("starts_at")),
                name="experience_schedule_order",
            ),
        ]
        indexes = [models.Index(fields=["status"], name="experience_status_idx")]

    def __str__(self) -> str:
        return self.name

    @property
    def variant_names(self) -> list[str]:
        return [variant["name"] for variant in self.variants]


class Decision(models.Model):
    """A person's arm in an experience, taken at their first decision and kept (sticky):
    a variant, or the holdout (`variant` empty), who see the placement's default content.
    `decision_id` travels with the content to the page and back in the Experience Viewed /
    Clicked events, which tie impressions and clicks to the arm."""

    decision_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    profile = models.ForeignKey(
        "profiles.Profile", on_delete=models.CASCADE, related_name="experience_decisions"
    )
    experience = models.ForeignKey(Experience, on_delete=models.CASCADE, related_name="decisions")
    variant = models.CharField(max_length=100, blank=True, default="")
    in_holdout = models.BooleanField(default=False)
    decided_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["profile", "experience"], name="decision_sticky_uniq")
        ]
        indexes = [models.Index(fields=["experience", "variant"], name="decision_arm_idx")]

    def __str__(self) -> str:
        return f"{self.profile_id} in {self.experience_id}: {self.variant or 'holdout'}"
