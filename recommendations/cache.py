"""Cached recommendation lists, in the default cache (Redis in production).

A list's key carries two version tokens: the profile's (replaced when the pipeline records an
interaction of theirs) and the catalog's (replaced when the serving model, the business rules
or an item's availability change). Replacing a token orphans every list built with the old one
at once, without finding them; orphans expire after RECS_CACHE_SECONDS.

Keys about a profile contain `profile:<id>`, the convention consent's erasure scan follows to
find and delete them.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.cache import cache

GLOBAL_VERSION_KEY = "recs:catalog:version"


def _profile_version_key(profile_id: int) -> str:
    return f"recs:profile:{profile_id}:version"


def list_key(*, profile_id: int | None, request: dict[str, Any]) -> str:
    """The key of one answer: the profile (or none), the request's parameters, the versions."""
    keys = [GLOBAL_VERSION_KEY]
    if profile_id is not None:
        keys.append(_profile_version_key(profile_id))
    found = cache.get_many(keys)
    missing = {key: secrets.token_hex(4) for key in keys if key not in found}
    if missing:
        # No token yet (a cold cache): start one, so the next change can replace it.
        cache.set_many(missing, timeout=None)
        found |= missing
    tokens = ".".join(str(found[key]) for key in keys)
    digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:16]
    who = f"profile:{profile_id}" if profile_id is not None else "anonymous"
    return f"recs:list:{who}:{tokens}:{digest}"


def list_get(key: str) -> Any:
    return cache.get(key)


def list_set(key: str, value: Any) -> None:
    cache.set(key, value, timeout=settings.RECS_CACHE_SECONDS)


def profiles_invalidate(*, profile_ids: Iterable[int]) -> None:
    cache.set_many(
        {_profile_version_key(pk): secrets.token_hex(4) for pk in profile_ids}, timeout=None
    )


def profiles_forget(*, profile_ids: Iterable[int]) -> int:
    """Erasure: remove the profiles' version tokens (their lists are found by the erasure's
    own scan of `profile:<id>` keys)."""
    keys = [_profile_version_key(pk) for pk in profile_ids]
    present = len(cache.get_many(keys))
    cache.delete_many(keys)
    return present


def all_invalidate() -> None:
    cache.set(GLOBAL_VERSION_KEY, secrets.token_hex(4), timeout=None)
