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


# --- Identity resolution settings, fuzzy match candidates, merges ---------------------------


# Values that SDKs and forms send when they have no identifier at all.
DEFAULT_BLOCKED_VALUES = [
    "null",
    "none",
    "undefined",
    "nil",
    "nan",
    "0",
    "-1",
    "anonymous",
    "unknown",
    "n/a",
]


def default_blocked_values() -> list[str]:
    return list(DEFAULT_BLOCKED_VALUES)


def default_kind_priority() -> list[str]:
    return ["user_id", "email", "phone", "device_id", "anonymous_id"]


class MatchSettings(models.Model):
    """The one row of identity-resolution settings (Segment's identity resolution rules plus
    the fuzzy matcher's thresholds, field set and fitted model). Read with
    `identity.selectors.match_settings()`; JSON fields are validated by
    `identity.services.match_settings_update` against `identity.schemas`."""

    class TraitStrategy(models.TextChoices):
        RECENT = "recent", "Most recently set non-empty value wins"
        SURVIVOR = "survivor", "The surviving profile's value wins"

    class SurvivorRule(models.TextChoices):
        OLDEST = "oldest", "Oldest first seen"
        MOST_EVENTS = "most_events", "Most events"

    merge_threshold = models.FloatField(default=0.98)
    review_threshold = models.FloatField(default=0.8)
    # [{"path": "firstName", "kind": "first_name"}, ...]; empty = Segment's reserved traits.
    fields = models.JSONField(default=list, blank=True)
    # Identifier kinds, most trusted first, e.g. ["user_id", "email", "phone", "anonymous_id"].
    kind_priority = models.JSONField(default=default_kind_priority, blank=True)
    # {"user_id": 1}: at most that many identities of a kind per profile.
    kind_limits = models.JSONField(default=dict, blank=True)
    # ["null", "0", "anonymous", "re:^test-"]: identifier values that never identify anyone.
    blocked_values = models.JSONField(default=default_blocked_values, blank=True)
    trait_strategy = models.CharField(
        max_length=16, choices=TraitStrategy.choices, default=TraitStrategy.RECENT
    )
    survivor_rule = models.CharField(
        max_length=16, choices=SurvivorRule.choices, default=SurvivorRule.OLDEST
    )
    # The fitted Fellegi-Sunter model (identity.matching.Model.to_json()); {} = not fitted yet.
    model = models.JSONField(default=dict, blank=True)
    model_fitted_at = models.DateTimeField(null=True, blank=True)
    # Profiles updated after this moment are matched by the next incremental run.
    matched_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "match settings"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(review_threshold__gt=0)
                & models.Q(review_threshold__lte=models.F("merge_threshold"))
                & models.Q(merge_threshold__lte=1),
                name="matchsettings_thresholds_ordered",
            )
        ]

    def __str__(self) -> str:
        return "Identity resolution settings"


class CandidateStatus(models.TextChoices):
    PENDING = "pending"
    MERGED = "merged"
    REJECTED = "rejected"
    # One of the two profiles was merged away or erased before anyone decided.
    STALE = "stale"


class MatchCandidate(models.Model):
    """Two profiles that may be one person, waiting for (or given) a staff decision."""

    class Reason(models.TextChoices):
        FUZZY = "fuzzy", "Similar traits"
        LIMIT = "limit", "Shared identifier, but merging would break a per-kind limit"

    # Always profile_a.pk < profile_b.pk, so a pair has one row.
    profile_a = models.ForeignKey("profiles.Profile", on_delete=models.CASCADE, related_name="+")
    profile_b = models.ForeignKey("profiles.Profile", on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=8, choices=Reason.choices, default=Reason.FUZZY)
    probability = models.FloatField()
    weight = models.FloatField()
    # identity.matching.Explanation.to_json(): each field's values, level and weight.
    explanation = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=8, choices=CandidateStatus.choices, default=CandidateStatus.PENDING
    )
    decided_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["profile_a", "profile_b"], name="candidate_pair_uniq"),
            models.CheckConstraint(
                condition=models.Q(profile_a__lt=models.F("profile_b")),
                name="candidate_pair_ordered",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-probability"], name="candidate_status_prob_idx")
        ]

    def __str__(self) -> str:
        return f"{self.profile_a_id} ~ {self.profile_b_id} ({self.probability:.3f}, {self.status})"


class NotSamePerson(models.Model):
    """Staff said these two profiles are different people: never suggested again."""

    profile_a = models.ForeignKey("profiles.Profile", on_delete=models.CASCADE, related_name="+")
    profile_b = models.ForeignKey("profiles.Profile", on_delete=models.CASCADE, related_name="+")
    decided_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["profile_a", "profile_b"], name="notsame_pair_uniq"),
            models.CheckConstraint(
                condition=models.Q(profile_a__lt=models.F("profile_b")),
                name="notsame_pair_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.profile_a_id} ≠ {self.profile_b_id}"


class MergeRecord(models.Model):
    """One merge, with what an unmerge needs: both profiles as they were, and what moved."""

    survivor = models.ForeignKey("profiles.Profile", on_delete=models.CASCADE, related_name="+")
    duplicate = models.ForeignKey("profiles.Profile", on_delete=models.CASCADE, related_name="+")
    actor = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=200, blank=True, default="")
    candidate = models.ForeignKey(
        MatchCandidate, null=True, blank=True, on_delete=models.SET_NULL, related_name="merges"
    )
    # {"traits", "trait_timestamps", "context", computed features...} before the merge.
    survivor_before = models.JSONField(default=dict)
    duplicate_before = models.JSONField(default=dict)
    # Ids of what moved from the duplicate to the survivor.
    moved_identities = models.JSONField(default=list)
    moved_events = models.JSONField(default=list)
    moved_profiles = models.JSONField(default=list)  # profiles merged into the duplicate earlier
    # The highest event id when merged: events after it arrived since, on the survivor.
    last_event_id = models.BigIntegerField(default=0)
    # Provenance of the merged traits: {trait: "survivor" | "duplicate"}.
    trait_sources = models.JSONField(default=dict, blank=True)
    # What consent's merge rule ("consent") and each merge hook (segments, ...) returned,
    # handed back to it on unmerge.
    hooks = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    unmerged_at = models.DateTimeField(null=True, blank=True)
    unmerged_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["duplicate"], name="merge_duplicate_idx")]

    def __str__(self) -> str:
        return f"Merge of {self.duplicate_id} into {self.survivor_id}"


class RescanJob(models.Model):
    """A matching run (incremental or full), with progress the settings page shows."""

    class Kind(models.TextChoices):
        INCREMENTAL = "incremental"
        FULL = "full"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    # 0..1 and a word on the current step ("loading profiles", "comparing", ...).
    progress = models.FloatField(default=0)
    step = models.CharField(max_length=64, blank=True, default="")
    profiles = models.PositiveIntegerField(default=0)
    candidates = models.PositiveIntegerField(default=0)
    merged = models.PositiveIntegerField(default=0)
    queued = models.PositiveIntegerField(default=0)
    # Why this run merged nothing automatically, when its model's merges were held.
    held = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    requested_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # One run at a time: identity.services.rescan_job_create checks under a lock.

    def __str__(self) -> str:
        return f"{self.kind} rescan {self.pk} ({self.status})"


class MatchKey(models.Model):
    """The blocking keys of every active profile: the persistent index an incremental run
    looks a changed profile's candidates up in (identity.blocking, hashed to 64 bits)."""

    profile = models.ForeignKey("profiles.Profile", on_delete=models.CASCADE, related_name="+")
    rule = models.PositiveSmallIntegerField()
    key = models.BigIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["rule", "key"], name="matchkey_rule_key_idx"),
            models.Index(fields=["profile"], name="matchkey_profile_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.profile_id}: {self.rule}/{self.key}"
