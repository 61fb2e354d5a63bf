"""Writes to profiles."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from profiles.models import Profile


def profile_traits_patch(*, profile: Profile, changes: dict[str, Any]) -> Profile:
    """Merge `changes` into a profile's traits; a None value deletes that key.

    Every key touched (set or deleted) gets the current time in `trait_timestamps`, so an
    event older than this edit that arrives later does not undo it. The row is locked while
    it changes, so a pipeline worker updating the same profile cannot lose this edit.
    """
    now = timezone.now().isoformat()
    with transaction.atomic():
        locked = Profile.objects.select_for_update().get(pk=profile.pk)
        traits = dict(locked.traits or {})
        timestamps = dict(locked.trait_timestamps or {})
        for key, value in changes.items():
            if value is None:
                traits.pop(key, None)
            else:
                traits[key] = value
            timestamps[key] = now
        locked.traits = traits
        locked.trait_timestamps = timestamps
        locked.save(update_fields=["traits", "trait_timestamps", "updated_at"])
    profile.traits = locked.traits
    profile.trait_timestamps = locked.trait_timestamps
    profile.updated_at = locked.updated_at
    return profile
