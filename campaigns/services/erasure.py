"""Campaigns' part of an erasure, registered as a consent erasure hook (see `CampaignsConfig`)."""

from campaigns.models import Delivery, DeliveryEvent, Entry, PushSubscription


def campaign_data_erase(*, profile_ids: list[int], identifiers: list[str]) -> dict[str, int]:
    """Delete what campaigns hold about these profiles: their journeys, their deliveries and
    what they did with them (opens, clicks, unsubscribes, bounces), their browsers' push
    subscriptions. Campaign rows name people by
    profile id only, so `identifiers` are not needed here. Returns rows deleted per model label."""
    removed: dict[str, int] = {}
    for model, rows in (
        (DeliveryEvent, DeliveryEvent.objects.filter(delivery__profile_id__in=profile_ids)),
        (Delivery, Delivery.objects.filter(profile_id__in=profile_ids)),
        (Entry, Entry.objects.filter(profile_id__in=profile_ids)),
        (PushSubscription, PushSubscription.objects.filter(profile_id__in=profile_ids)),
    ):
        _, per_model = rows.delete()
        if per_model.get(model._meta.label):
            removed[model._meta.label] = per_model[model._meta.label]
    return removed
