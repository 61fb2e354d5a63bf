"""Segments' part of an erasure, registered as a consent erasure hook (see `SegmentsConfig`)."""

from django.conf import settings

from access.queueing import task_queue_debounced
from segments.models import MembershipChange, ProfileScore, SegmentMembership, WebhookDelivery


def segment_data_erase(*, profile_ids: list[int], identifiers: list[str]) -> dict[str, int]:
    """Delete what segments hold about these profiles: their memberships, membership history
    and model scores; and take their ids out of the webhook deliveries that announced their
    entering or leaving (a delivery left announcing nobody goes). Memberships are removed
    without recording an exit: the person is gone, not leaving. Segments hold profiles by id
    only, so `identifiers` are not needed here. Returns rows changed per model label."""
    ids = set(profile_ids)
    removed: dict[str, int] = {}
    # Deliveries are recorded with the changes they announce: only those segments' need a look.
    announced_in = set(
        MembershipChange.objects.filter(profile_id__in=ids).values_list("segment_id", flat=True)
    )
    rewritten: list[WebhookDelivery] = []
    emptied: list[int] = []
    for delivery in WebhookDelivery.objects.filter(segment_id__in=announced_in).only("payload"):
        payload = delivery.payload
        if ids.isdisjoint(payload.get("entered", []) + payload.get("exited", [])):
            continue
        entered = [pk for pk in payload.get("entered", []) if pk not in ids]
        exited = [pk for pk in payload.get("exited", []) if pk not in ids]
        if entered or exited:
            delivery.payload = {**payload, "entered": entered, "exited": exited}
            rewritten.append(delivery)
        else:
            emptied.append(delivery.pk)
    WebhookDelivery.objects.bulk_update(rewritten, ["payload"], batch_size=500)
    WebhookDelivery.objects.filter(pk__in=emptied).delete()
    if rewritten or emptied:
        removed[WebhookDelivery._meta.label] = len(rewritten) + len(emptied)
    for model in (SegmentMembership, MembershipChange, ProfileScore):
        deleted, _ = model.objects.filter(profile_id__in=ids).delete()
        if deleted:
            removed[model._meta.label] = deleted
    if removed.get(ProfileScore._meta.label):
        # Scored people were in the models' training population. A saved model keeps no row
        # per person (a scaler, centroids, trees: the verification scan searches the
        # artifacts too), but it was fitted on their data: it is retrained without them, each
        # kind only if its data changed (models_retrain_all).
        task_queue_debounced(
            "segments.tasks.models_retrain_all_task",
            seconds=settings.ERASURE_RETRAIN_DELAY_SECONDS,
        )
    return removed
