"""Deleting profiles' rows: consent's erasure, retention and its consent stage call these, so
that the profiles app alone deletes its rows."""

from collections.abc import Iterable, Sequence
from datetime import datetime

from django.db import models, transaction
from django.db.models import Q

from profiles.models import Event, Profile, QuarantinedMessage

DELETE_BATCH = 10_000


def _delete_in_batches(rows: models.QuerySet, batch_size: int = DELETE_BATCH) -> int:
    # One short transaction per batch: a subject with millions of events neither holds locks
    # for long nor builds one huge transaction.
    total = 0
    while pks := list(rows.order_by("pk").values_list("pk", flat=True)[:batch_size]):
        total += _delete_by_ids(rows.model, pks)
    return total


def _delete_by_ids(model: type[models.Model], ids: Sequence[int]) -> int:
    total = 0
    for start in range(0, len(ids), DELETE_BATCH):
        with transaction.atomic():
            deleted, _ = model._base_manager.filter(
                pk__in=ids[start : start + DELETE_BATCH]
            ).delete()
        total += deleted
    return total


def events_delete(*, ids: Sequence[int]) -> int:
    """Delete these events, in batches; returns how many there were."""
    return _delete_by_ids(Event, ids)


def events_delete_matching(
    *, events: models.QuerySet[Event], batch_size: int = DELETE_BATCH
) -> int:
    """Delete the events of this query (retention's purge), in batches of `batch_size`; returns
    how many there were."""
    return _delete_in_batches(events, batch_size)


def quarantined_messages_delete_before(*, before: datetime, batch_size: int = DELETE_BATCH) -> int:
    """Delete the quarantined messages (whole payloads as sent) received before `before`, in
    batches (retention's purge); returns how many there were."""
    return _delete_in_batches(QuarantinedMessage.objects.filter(received_at__lt=before), batch_size)


def quarantined_messages_delete(*, ids: Sequence[int]) -> int:
    """Delete these quarantined messages, in batches; returns how many there were."""
    return _delete_by_ids(QuarantinedMessage, ids)


def profiles_erase(*, profile_ids: Sequence[int], identifiers: Iterable[str]) -> dict[str, int]:
    """The profiles app's part of an erasure (consent's erasure calls it once the apps above
    removed their rows): the profiles' events, events not yet resolved to a profile that carry
    one of `identifiers` as user or anonymous id, then the profiles. Returns how many rows went,
    per model label."""
    removed: dict[str, int] = {}
    unresolved = Q(pk__in=[])
    for value in identifiers:
        unresolved |= Q(user_id=value) | Q(anonymous_id=value)
    events = _delete_in_batches(Event.objects.filter(profile_id__in=profile_ids))
    events += _delete_in_batches(Event.objects.filter(unresolved))
    if events:
        removed[Event._meta.label] = events
    if profile_ids:
        with transaction.atomic():
            # Merged profiles point at each other; the links go first so the rows can.
            Profile.objects.filter(pk__in=profile_ids).update(merged_into=None)
            _, per_model = Profile.objects.filter(pk__in=profile_ids).delete()
        for label, count in per_model.items():
            if count:
                removed[label] = removed.get(label, 0) + count
    return removed
