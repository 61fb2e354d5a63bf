"""Campaigns: channels, campaigns with versioned definitions, journey entries and deliveries.

A campaign's definition (trigger, entry policy, goal, steps; see campaigns/definition.py) lives
in `CampaignVersion` rows. Editing a campaign that is no longer a draft writes a new version;
an `Entry` (one person's pass through the journey) keeps the version it entered with, so people
already inside finish the journey they started.

A `Delivery` is written before anything is sent (record-then-send): one per (version, step,
person, entry), so a task that runs twice finds the row and sends nothing more. Skips and
failures are rows too, with their reason, so every outcome is counted from one table.
"""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q


def new_secret_salt() -> str:
    return secrets.token_hex(16)


class Channel(models.Model):
    """Where messages go: an email sender, a push provider, a webhook endpoint.

    `config` is validated against its kind's JSON Schema (campaigns.definition.CHANNEL_SCHEMAS)
    on every write. No secret is stored: a webhook's signing secret is derived from SECRET_KEY
    and `secret_salt` (campaigns.services.channels.channel_secret) and shown once, when the
    channel is created or its secret rotated."""

    class Kind(models.TextChoices):
        EMAIL = "email"
        # Mobile push through a provider webhook in FCM HTTP v1's shape.
        PUSH = "push"
        # Browser Web Push (VAPID, RFC 8291) to the person's PushSubscriptions.
        WEB_PUSH = "web_push"
        WEBHOOK = "webhook"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=200)
    config = models.JSONField(default=dict, blank=True)
    secret_salt = models.CharField(max_length=32, default=new_secret_salt, editable=False)
    # After a rotation the previous secret signs too, until this time, so receivers can switch
    # without dropping a delivery (Standard Webhooks allows several signatures).
    previous_secret_salt = models.CharField(max_length=32, blank=True, editable=False)
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    # A receiver that answered 410 Gone, or failed for days, is disabled until someone looks.
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True, default="")
    # Set by the first failed send after a success, cleared by the next success.
    failing_since = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class Campaign(models.Model):
    class Kind(models.TextChoices):
        MARKETING = "marketing"
        # Receipts, password resets: no marketing consent needed, but never to the suppressed.
        TRANSACTIONAL = "transactional"

    class Status(models.TextChoices):
        DRAFT = "draft"
        ACTIVE = "active"
        PAUSED = "paused"
        ARCHIVED = "archived"

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.MARKETING)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    # Broadcasts walk their segment in batches of profile ids; the last id done is kept here so
    # that a batch task that died, or ran twice, resumes rather than starts again.
    broadcast_cursor = models.BigIntegerField(null=True, blank=True)
    broadcast_finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status"], name="campaign_status_idx")]

    def __str__(self) -> str:
        return self.name


class CampaignVersion(models.Model):
    """One definition of a campaign; the highest number is the current one."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    # Validated on every write by campaigns.definition.definition_validate.
    definition = models.JSONField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["campaign", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "number"], name="campaignversion_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} v{self.number}"


class Entry(models.Model):
    """One person's pass through one version of a journey.

    `step_path` locates the next step to run, e.g. [2, "then", 0] is the first step of the
    "then" list of the branch at step 2; `due_at` is when to run it (a wait stores its end
    here, so a wait survives any restart: a worker picks due entries up)."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        COMPLETED = "completed"
        EXITED = "exited"

    class ExitReason(models.TextChoices):
        GOAL = "goal", "Reached the goal"
        CAMPAIGN_ARCHIVED = "archived", "The campaign was archived"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="entries")
    version = models.ForeignKey(CampaignVersion, on_delete=models.PROTECT, related_name="entries")
    profile = models.ForeignKey(
        "profiles.Profile", on_delete=models.CASCADE, related_name="campaign_entries"
    )
    # The person's 1st, 2nd... entry into this campaign (entry policies count them).
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    exit_reason = models.CharField(max_length=16, choices=ExitReason.choices, blank=True)
    step_path = models.JSONField(default=list)
    due_at = models.DateTimeField(null=True, blank=True)
    # What set the person off: {"event": name, "properties": {...}} or {"segment": id, "on": ...}.
    # Templates read `event.properties` from here, so a send never depends on event retention.
    trigger = models.JSONField(default=dict, blank=True)
    entered_at = models.DateTimeField()
    # Until when reaching the goal counts (entered_at + the goal's window); null: no goal.
    goal_until = models.DateTimeField(null=True, blank=True)
    converted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-entered_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "profile", "number"], name="entry_campaign_profile_number_uniq"
            )
        ]
        indexes = [
            # The beat claim: active entries whose next step is due.
            models.Index(fields=["due_at"], name="entry_due_idx", condition=Q(status="active")),
            models.Index(fields=["profile", "campaign"], name="entry_profile_campaign_idx"),
        ]

    def __str__(self) -> str:
        return f"Entry {self.number} of {self.profile_id} in {self.campaign_id}"


class Delivery(models.Model):
    """One message to one person from one send step of one entry, recorded before sending."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        # Claimed by a worker that is talking to the provider right now. A row left here by a
        # worker that died is never sent again (it may have reached the provider): the sweep
        # marks it failed instead (campaigns.services.delivery.deliveries_sweep).
        SENDING = "sending"
        SENT = "sent"
        SKIPPED = "skipped"
        FAILED = "failed"

    class SkipReason(models.TextChoices):
        NO_CONSENT = "no_consent", "No consent"
        SUPPRESSED = "suppressed", "Suppressed"
        CAPPED = "capped", "Frequency cap reached"
        NO_ADDRESS = "no_address", "No address"
        BOUNCED = "bounced", "The address bounced"
        EXITED = "exited", "Left the journey before the send"
        CHANNEL_DISABLED = "channel_disabled", "Channel disabled"
        # The campaign's control group enters but is never sent (its would-be send is kept).
        CONTROL = "control", "Control group"
        # The workspace-wide holdout (CAMPAIGN_HOLDOUT_PERCENT) receives no marketing at all.
        HOLDOUT = "holdout", "Workspace holdout"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="deliveries")
    version = models.ForeignKey(
        CampaignVersion, on_delete=models.PROTECT, related_name="deliveries"
    )
    entry = models.ForeignKey(Entry, on_delete=models.CASCADE, related_name="deliveries")
    profile = models.ForeignKey(
        "profiles.Profile", on_delete=models.CASCADE, related_name="campaign_deliveries"
    )
    # JSON pointer of the send step inside the definition, e.g. "/steps/3/branch/then/0".
    step = models.CharField(max_length=200)
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="deliveries")
    # Experiments (issue 15): the variant sent, and whether the person is in the control group.
    variant = models.CharField(max_length=64, blank=True, default="")
    is_control = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    skip_reason = models.CharField(max_length=32, choices=SkipReason.choices, blank=True)
    # Quiet hours delay a send to here (never drop it); retries after a transient error too.
    send_after = models.DateTimeField(null=True, blank=True)
    delay_reason = models.CharField(max_length=32, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True, default="")
    # SHA-256 of the rendered message: proves what was sent without keeping its text.
    message_digest = models.CharField(max_length=64, blank=True, default="")
    provider_message_id = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # Control group only: when the message would have gone (every rule passed); conversions
    # are counted from here, as from `sent_at` for those sent.
    would_send_at = models.DateTimeField(null=True, blank=True)
    # The first open and click by a person (bot-flagged ones are only DeliveryEvent rows).
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    # Not stored here: set by a transport as it sends, {slot: (model run, items served)} of
    # the recommendation blocks the message linked; recorded as RecommendationImpression rows.
    recommendation_blocks: dict[str, tuple[int | None, int]]

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "step", "profile", "entry"], name="delivery_once_per_step_uniq"
            )
        ]
        indexes = [
            models.Index(fields=["campaign", "-created_at", "-id"], name="delivery_campaign_idx"),
            models.Index(fields=["profile", "-created_at", "-id"], name="delivery_profile_idx"),
            # Frequency caps count a person's recent sends.
            models.Index(
                fields=["profile", "sent_at"],
                name="delivery_profile_sent_idx",
                condition=Q(status="sent"),
            ),
            # The sweep: queued rows whose task was lost, and rows stuck in "sending".
            models.Index(
                fields=["status", "updated_at"],
                name="delivery_pending_idx",
                condition=Q(status__in=["queued", "sending"]),
            ),
        ]

    def __str__(self) -> str:
        return f"Delivery {self.pk} ({self.status})"


class RecommendationImpression(models.Model):
    """A recommendation block shown in a sent email: the slot whose items it linked to and
    the recommender run that served them (campaigns.recommended). What the recommender's
    click-through is counted over, per run."""

    delivery = models.ForeignKey(
        Delivery, on_delete=models.CASCADE, related_name="recommendation_impressions"
    )
    slot = models.CharField(max_length=16)
    # None: served before any model was trained (live popularity).
    model_run = models.ForeignKey(
        "recommendations.ModelRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    items = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["delivery", "slot"], name="recimpression_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.slot} block of delivery {self.delivery_id}"


class DeliveryEvent(models.Model):
    """What happened to a sent message afterwards: opened, clicked, unsubscribed, bounced."""

    class Kind(models.TextChoices):
        OPEN = "open"
        CLICK = "click"
        UNSUBSCRIBE = "unsubscribe"
        # A hard bounce reported by the provider (soft bounces are not recorded).
        BOUNCE = "bounce"
        COMPLAINT = "complaint"

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    url = models.URLField(max_length=2000, blank=True, default="")
    at = models.DateTimeField()
    # Why an open or click looks machine-made (a link scanner, a mail privacy proxy's
    # prefetch; campaigns.bots), or "" for a person. Counted apart in results.
    bot_reason = models.CharField(max_length=32, blank=True, default="")
    # A click on an item of a recommendation block: the block (its slot and model run).
    recommendation = models.ForeignKey(
        RecommendationImpression,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="clicks",
    )

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["delivery", "kind"], name="deliveryevent_kind_idx")]

    def __str__(self) -> str:
        return f"{self.kind} of delivery {self.delivery_id}"


class BanditAllocation(models.Model):
    """One variant's posterior and allocation share at one moment of a bandit campaign (one
    row per variant per refresh; campaigns.services.experiments.bandit_refresh). The latest
    rows are what new people are assigned by; all of them draw the allocation over time."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="bandit_allocations"
    )
    at = models.DateTimeField()
    variant = models.CharField(max_length=64)
    exposed = models.PositiveIntegerField()
    converted = models.PositiveIntegerField()
    probability_best = models.FloatField()
    share = models.FloatField()

    class Meta:
        ordering = ["campaign", "-at", "variant"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "at", "variant"], name="banditallocation_uniq"
            ),
            models.CheckConstraint(
                condition=Q(share__gte=0, share__lte=1), name="banditallocation_share_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.variant} {self.share:.2f} at {self.at}"


class PushSubscription(models.Model):
    """A browser's Web Push subscription (the PushSubscription JSON a page's service worker
    gets from `pushManager.subscribe`), registered for a person through the API. Removed when
    the push service answers 404 or 410 (the browser unsubscribed)."""

    profile = models.ForeignKey(
        "profiles.Profile", on_delete=models.CASCADE, related_name="push_subscriptions"
    )
    endpoint = models.URLField(max_length=2000, unique=True)
    # The browser's P-256 public key and auth secret (base64url), for RFC 8291 encryption.
    p256dh = models.CharField(max_length=200)
    auth = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["profile", "id"]

    def __str__(self) -> str:
        return f"Push subscription {self.pk} of {self.profile_id}"


class VapidKey(models.Model):
    """The platform's VAPID key pair when none is configured (WEBPUSH_VAPID_PRIVATE_KEY):
    generated once, the private key stored encrypted (access.crypto). One row."""

    private_key_encrypted = models.TextField()
    public_key = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"VAPID key {self.pk}"
