"""Profile traits: set from events in event time, merged, patched by staff and the API.

`identify` traits (top level and `context.traits`) set profile traits; each trait remembers the
event time that set it in `Profile.trait_timestamps`, and an older event never overwrites a
newer value. `group` traits go under `traits["groups"][<groupId>]` (timestamped per group as
`"groups.<groupId>"`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from profiles.models import Profile


def trait_time(moment: datetime) -> str:
    """The fixed-width UTC text stored in `Profile.trait_timestamps`; it sorts as time does.

    Any code that sets traits (the profile API too) must stamp them with this format.
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def traits_set(profile: Profile, traits: Mapping[str, Any], at: str) -> None:
    """Set the traits an event at `at` (a `trait_time`) carries, except those set later."""
    for name, value in traits.items():
        if name == "groups":
            continue  # reserved for group traits
        previous = profile.trait_timestamps.get(name)
        if previous is None or at >= previous:
            profile.traits[name] = value
            profile.trait_timestamps[name] = at


def group_traits_set(profile: Profile, group_id: str, traits: Mapping[str, Any], at: str) -> None:
    """Replace the traits of one group, unless a later event set them."""
    stamp = f"groups.{group_id}"
    previous = profile.trait_timestamps.get(stamp)
    if previous is not None and at < previous:
        return
    groups = profile.traits.get("groups")
    if not isinstance(groups, dict):
        groups = {}
    groups[group_id] = dict(traits)
    profile.traits["groups"] = groups
    profile.trait_timestamps[stamp] = at


def profile_traits_merge(*, into: Profile, other: Profile) -> None:
    """Merge `other`'s traits into `into`, trait by trait: the more recently set value wins."""
    for name, value in other.traits.items():
        if name == "groups" and isinstance(value, dict):
            for group_id, group_traits in value.items():
                stamp = f"groups.{group_id}"
                theirs = other.trait_timestamps.get(stamp, "")
                ours = into.trait_timestamps.get(stamp)
                if ours is None or theirs > ours:
                    groups = into.traits.get("groups")
                    groups = groups if isinstance(groups, dict) else {}
                    groups[group_id] = group_traits
                    into.traits["groups"] = groups
                    into.trait_timestamps[stamp] = theirs
            continue
        theirs = other.trait_timestamps.get(name, "")
        ours = into.trait_timestamps.get(name)
        if name not in into.traits or (ours is not None and theirs > ours):
            into.traits[name] = value
            into.trait_timestamps[name] = theirs


def profile_traits_patch(*, profile: Profile, changes: dict[str, Any]) -> Profile:
    """Merge `changes` into a profile's traits; a None value deletes that key.

    Every key touched (set or deleted) gets the current time in `trait_timestamps`, so an
    event older than this edit that arrives later does not undo it. The row is locked while
    it changes, so a pipeline worker updating the same profile cannot lose this edit.
    """
    now = trait_time(timezone.now())
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
