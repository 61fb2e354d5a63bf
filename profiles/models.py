"""Profiles and the events that build them.

An `Event` is committed as soon as ingestion accepts it (durable before the response) with
`profile` unset; the pipeline later resolves it to a `Profile` and sets `processed_at`.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from access.models import FileImport


class EventType(models.TextChoices):
    IDENTIFY = "identify"
    TRACK = "track"
    PAGE = "page"
    SCREEN = "screen"
    GROUP = "group"
    ALIAS = "alias"


class Profile(models.Model):
    """One person. Computed features used by segments are columns, so they can be indexed."""

    traits = models.JSONField(default=dict, blank=True)
    # When each trait was last set, in event time, so late events never overwrite newer values.
    trait_timestamps = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True)
    first_seen = models.DateTimeField(null=True, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True, db_index=True)
    event_count = models.PositiveIntegerField(default=0)
    session_count = models.PositiveIntegerField(default=0)
    order_count = models.PositiveIntegerField(default=0)
    # In the workspace currency (WORKSPACE_CURRENCY), each order converted at the rate it was
    # processed with; orders in a currency without a rate are kept apart, per currency.
    revenue = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    revenue_unconverted = models.JSONField(default=dict, blank=True)  # {"JPY": "1200.00"}
    first_order_at = models.DateTimeField(null=True, blank=True)
    last_order_at = models.DateTimeField(null=True, blank=True)
    # Set when identity resolution merged this profile into another; kept for unmerge.
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_profiles"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["revenue"], name="profile_revenue_idx"),
            models.Index(fields=["order_count"], name="profile_order_count_idx"),
        ]

    def __str__(self) -> str:
        return f"Profile {self.pk}"


class Event(models.Model):
    # No index of its own on either foreign key: (source, message_id) and (profile, -timestamp)
    # below lead with them, and every index costs each insert and each processing update.
    source = models.ForeignKey(
        "access.Source", on_delete=models.PROTECT, related_name="events", db_index=False
    )
    message_id = models.CharField(max_length=255)
    type = models.CharField(max_length=16, choices=EventType.choices)
    # Track event name, or page/screen name.
    event = models.CharField(max_length=255, blank=True, default="")
    user_id = models.CharField(max_length=255, blank=True, default="")
    anonymous_id = models.CharField(max_length=255, blank=True, default="")
    # Corrected event time: receivedAt - (sentAt - originalTimestamp), as Segment does.
    timestamp = models.DateTimeField()
    original_timestamp = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()
    properties = models.JSONField(default=dict, blank=True)
    traits = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True)
    # The message as accepted (batch context merged in, ids as strings) except its `properties`
    # and `context`, which are the columns above: stored once. `message` rejoins them.
    payload = models.JSONField(default=dict)
    is_bot = models.BooleanField(default=False)
    # Tracking-plan violations of a source in "flag" mode; empty when the event conforms.
    violations = models.JSONField(default=list, blank=True)
    profile = models.ForeignKey(
        Profile,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="events",
        db_index=False,
    )
    processed_at = models.DateTimeField(null=True, blank=True)

    # Not columns: set from the payload on the events that profiles.services.events_claim
    # hands to processing (a group's `groupId`, an alias's `previousId`; None otherwise).
    group_id: str | None
    previous_id: str | None

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "message_id"], name="event_source_message_uniq"
            )
        ]
        # The profile indexes leave out events not yet processed (no profile): indexing them
        # would cost every ingested row two index entries that processing makes dead at once.
        # Every query on them names a profile, which implies the condition.
        indexes = [
            models.Index(
                fields=["profile", "-timestamp"],
                name="event_profile_time_idx",
                condition=Q(profile__isnull=False),
            ),
            # Real-time segment checks: "did this profile do X (in a window, how often, when
            # last)" reads only that profile's rows of that event, even for a profile with
            # thousands of events. Events by name across all profiles use the segments app's
            # (event, timestamp, profile) index, which made an (event, timestamp) one redundant.
            models.Index(
                fields=["profile", "event", "timestamp"],
                name="event_profile_name_time_idx",
                condition=Q(profile__isnull=False),
            ),
            models.Index(fields=["received_at"], name="event_received_idx"),
            models.Index(
                fields=["id"], name="event_pending_idx", condition=Q(processed_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event or ''} ({self.message_id})"

    @property
    def message(self) -> dict:
        """The whole message as accepted, for replay and export."""
        whole = {**self.payload, "context": self.context}
        if self.type in (EventType.TRACK, EventType.PAGE, EventType.SCREEN):
            whole["properties"] = self.properties
        return whole


class TrackingPlan(models.Model):
    """Per-source JSON Schemas for event properties, keyed by event name."""

    class Mode(models.TextChoices):
        FLAG = "flag", "Flag violations, keep the event"
        QUARANTINE = "quarantine", "Quarantine violating and unplanned events"

    source = models.OneToOneField("access.Source", on_delete=models.CASCADE, related_name="plan")
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.FLAG)
    # {"Order Completed": {<JSON Schema of properties>}, ...}
    event_schemas = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Tracking plan of {self.source}"


class QuarantinedMessage(models.Model):
    """A message that failed validation inside an accepted request: kept, never dropped."""

    source = models.ForeignKey("access.Source", on_delete=models.CASCADE, related_name="quarantine")
    received_at = models.DateTimeField(db_index=True)
    message_id = models.CharField(max_length=255, blank=True, default="")
    event = models.CharField(max_length=255, blank=True, default="")
    reason = models.TextField()
    errors = models.JSONField(default=list)
    message = models.JSONField()

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"Quarantined {self.message_id or self.pk}: {self.reason[:60]}"


class DroppedMessageCount(models.Model):
    """How many valid messages an ingest filter dropped, per source, reason and day.

    Dropped messages are not stored (that is the point of dropping them, e.g. for lack of
    consent), so this count is the only trace they leave; see `register_ingest_filter`.
    """

    source = models.ForeignKey("access.Source", on_delete=models.CASCADE, related_name="drops")
    reason = models.CharField(max_length=200)
    day = models.DateField()
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-day", "source", "reason"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "reason", "day"], name="dropped_count_source_reason_day_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.count} dropped from {self.source_id} on {self.day}: {self.reason}"


class DataImport(FileImport):
    """A bulk import of profiles or historical events from a CSV or JSONL file, run by a worker
    through ingestion (validation, dedup, consent, suppression). Rows ingestion refuses are
    reported by line number in `errors` (with the reason; rows dropped by consent or
    suppression are listed too); the good rows are kept. A redelivered task resumes after
    `processed_rows` (ingestion deduplicates the batch that was being stored when a worker
    died)."""

    class Kind(models.TextChoices):
        PROFILES = "profiles", "Profiles (traits and identifiers)"
        EVENTS = "events", "Historical events"

    source = models.ForeignKey("access.Source", on_delete=models.CASCADE, related_name="imports")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    file = models.FileField(upload_to="profiles/imports/")
    # Held by the worker importing a slice of the file (see profiles.services.imports).
    lease_until = models.DateTimeField(null=True, blank=True)
    accepted_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)
    dropped_count = models.PositiveIntegerField(default=0)

    class Meta(FileImport.Meta):
        pass

    def __str__(self) -> str:
        return f"{self.get_kind_display()} import {self.pk} ({self.status})"


class CurrencyRate(models.Model):
    """How much one unit of `currency` is worth in the workspace currency (WORKSPACE_CURRENCY);
    set by an admin on the Data page. Orders are converted when they are processed."""

    currency = models.CharField(max_length=3, unique=True)  # ISO 4217, upper case
    rate = models.DecimalField(max_digits=18, decimal_places=8)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["currency"]

    def __str__(self) -> str:
        return f"1 {self.currency} = {self.rate}"
