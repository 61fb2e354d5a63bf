"""The item catalog, interactions, bulk imports, training runs and the business rules.

An `Item` is written two ways: explicitly (the REST API, a bulk import) and learned from the
e-commerce events SDKs send (`Product Viewed`, `Product Added`, `Order Completed` products).
The names of the fields an explicit write set are kept in `catalog_fields`: events never
overwrite those, so the catalog a shop maintains wins over whatever a page happened to send.

An `Interaction` is one product touched by one event. It points at the event, not at a
profile: identity resolution moves a merged profile's events to the survivor, so the
interactions follow and merged profiles count as one person without a merge hook of ours.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from access.models import FileImport


class Availability(models.TextChoices):
    IN_STOCK = "in_stock", "In stock"
    OUT_OF_STOCK = "out_of_stock", "Out of stock"
    PREORDER = "preorder", "Pre-order"
    DISCONTINUED = "discontinued", "Discontinued"


class Item(models.Model):
    # The shop's product_id (or sku when it sends no product_id).
    external_id = models.CharField(max_length=255, unique=True)
    title = models.CharField(max_length=500, blank=True, default="")
    description = models.TextField(blank=True, default="")
    # A path, top level first: "Home > Kitchen > Mugs" (see catalog.CATEGORY_SEPARATOR).
    category = models.CharField(max_length=500, blank=True, default="", db_index=True)
    brand = models.CharField(max_length=200, blank=True, default="", db_index=True)
    price = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, default="")
    image_url = models.URLField(max_length=2000, blank=True, default="")
    url = models.URLField(max_length=2000, blank=True, default="")
    # Free-form facets (colour, size, material...), validated by catalog.ATTRIBUTES_SCHEMA.
    attributes = models.JSONField(default=dict, blank=True)
    availability = models.CharField(
        max_length=16, choices=Availability.choices, default=Availability.IN_STOCK
    )
    # Fields an explicit catalog write set; events never overwrite them.
    catalog_fields = models.JSONField(default=list, blank=True)
    # Event time of the newest event that updated this item: an older event arriving late
    # does not overwrite what a newer one said.
    learned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(price__isnull=True) | Q(price__gte=0), name="item_price_not_negative"
            )
        ]

    def __str__(self) -> str:
        return f"{self.external_id} {self.title}".strip()

    @property
    def in_stock(self) -> bool:
        return self.availability in IN_STOCK


# Availabilities that may be recommended.
IN_STOCK = frozenset({Availability.IN_STOCK, Availability.PREORDER})


class InteractionKind(models.TextChoices):
    VIEW = "view", "Viewed"
    CART = "cart", "Added to cart"
    PURCHASE = "purchase", "Purchased"


class Interaction(models.Model):
    event = models.ForeignKey("profiles.Event", on_delete=models.CASCADE, related_name="+")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="interactions")
    kind = models.CharField(max_length=8, choices=InteractionKind.choices)
    quantity = models.FloatField(default=1.0)
    occurred_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["event", "item", "kind"], name="interaction_event_item_kind_uniq"
            )
        ]
        indexes = [models.Index(fields=["occurred_at"], name="interaction_time_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.item_id} (event {self.event_id})"


class ItemImport(FileImport):
    """A bulk import of a CSV or JSONL file into the catalog, run by a worker; bad rows are
    reported by line number in `errors` (`{"line", "errors": {field: [...]}}`) and the good
    ones are kept."""

    file = models.FileField(upload_to="recommendations/imports/")
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)

    class Meta(FileImport.Meta):
        pass

    def __str__(self) -> str:
        return f"Item import {self.pk} ({self.status})"


class ModelRun(models.Model):
    """One training of a recommender, kept whatever came of it: its parameters, the hash of
    its training data, its validation metrics beside the serving model's and recent
    popularity's on the same window, the decision taken and why, and its artifact.

    One run serves at a time (`is_serving`); a new run takes over only when it beats the
    serving one (services.training), and any earlier run with an artifact can be put back.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        SKIPPED = "skipped", "Skipped (data unchanged)"
        FAILED = "failed"

    class Decision(models.TextChoices):
        NONE = "", "—"
        PROMOTED = "promoted", "Promoted to serving"
        CHALLENGER = "challenger", "Kept as challenger"

    kind = models.CharField(max_length=16)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.CharField(max_length=500, blank=True, default="")
    params = models.JSONField(default=dict, blank=True)
    format_version = models.PositiveSmallIntegerField(default=0)
    data_hash = models.CharField(max_length=64, blank=True, default="")
    # {"validation": {...this run...}, "champion": {...}, "popularity": {...},
    #  "bootstrap": {"mean", "low", "high"}, "people": n, "window": {"start", "end"}}
    metrics = models.JSONField(default=dict, blank=True)
    decision = models.CharField(
        max_length=12, choices=Decision.choices, blank=True, default=Decision.NONE
    )
    decision_reason = models.CharField(max_length=500, blank=True, default="")
    is_serving = models.BooleanField(default=False)
    artifact = models.BinaryField(null=True, blank=True)
    # The scores it gave recently active people at training, in decile bins
    # (segments.ml.drift.Distribution): what the drift check compares today's with.
    score_reference = models.JSONField(default=dict, blank=True)
    training_seconds = models.FloatField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_serving"],
                condition=Q(is_serving=True),
                name="recommendations_modelrun_one_serving",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} run {self.pk} ({self.status})"

    @property
    def ndcg(self) -> float | None:
        value = self.metrics.get("validation", {}).get("ndcg")
        return float(value) if value is not None else None


class ModelDrift(models.Model):
    """One day's check of the serving run (services.drift): the population stability index
    of today's scores against its training scores (None when it kept none), and the online
    outcome so far: recommendation blocks rendered in sent messages (`impressions`) and how
    many of them a person clicked (`clicks`), as the campaigns app counts them. One row per
    run and day: a check run twice rewrites it."""

    run = models.ForeignKey(ModelRun, on_delete=models.CASCADE, related_name="drift_checks")
    day = models.DateField()
    psi = models.FloatField(null=True, blank=True)
    shares = models.JSONField(default=list, blank=True)
    scored = models.PositiveIntegerField(default=0)
    impressions = models.PositiveIntegerField(default=0)
    clicks = models.PositiveIntegerField(default=0)
    checked_at = models.DateTimeField()

    class Meta:
        ordering = ["run", "day"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "day"], name="recommendations_modeldrift_run_day_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} drift on {self.day}"

    @property
    def ctr(self) -> float | None:
        return self.clicks / self.impressions if self.impressions else None


class RuleSet(models.Model):
    """One version of the business rules (recommendations.rules.RULES_SCHEMA); the newest
    serves. Versions are never edited: a change saves a new one, so a list can always be
    traced to the rules that shaped it."""

    version = models.PositiveIntegerField(unique=True)
    rules = models.JSONField(default=dict, blank=True)
    note = models.CharField(max_length=300, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"Rules v{self.version}"
