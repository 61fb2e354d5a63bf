"""What higher apps add to a profile's API `computed` object: segments add the serving
models' scores (`propensity`) and the predicted lifetime value. A registry, like identity's
merge hooks, because profiles import no app above them.

A provider takes a list of profiles and answers, per profile id, the keys it adds (one query for
the whole list, so a list endpoint keeps its fixed query count). Profiles it has nothing for may
be left out; the serializer fills the documented keys with their empty values.
"""

from collections.abc import Callable, Sequence
from typing import Any

from profiles.models import Profile

ComputedProvider = Callable[[Sequence[Profile]], dict[int, dict[str, Any]]]

_PROVIDERS: dict[str, ComputedProvider] = {}


def computed_provider_register(*, name: str, provider: ComputedProvider) -> None:
    """Register (or replace) the provider called `name`."""
    _PROVIDERS[name] = provider


def computed_extras(profiles: Sequence[Profile]) -> dict[int, dict[str, Any]]:
    """Every provider's keys for these profiles, merged per profile id."""
    merged: dict[int, dict[str, Any]] = {profile.pk: {} for profile in profiles}
    for provider in _PROVIDERS.values():
        for profile_id, extra in provider(profiles).items():
            merged.setdefault(profile_id, {}).update(extra)
    return merged
