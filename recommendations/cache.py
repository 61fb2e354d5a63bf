"""Cached recommendation lists, in the default cache (Redis in production).

A list is stored with two version tokens: the profile's (replaced when the pipeline records an
interaction of theirs) and the catalog's (replaced when the serving model, the business rules
or an item's availability change). A read fetches the tokens and the list in one round trip
and takes the list only if it was built under the current tokens. Replacing a token makes
every list built with the old one stale at once, without finding them; a stale list is
overwritten by the next answer for the same request, or expires after RECS_CACHE_SECONDS.

Keys about a profile contain `profile:<id>`, the convention consent's erasure scan follows to
find and delete them.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache

GLOBAL_VERSION_KEY = "recs:catalog:version"


def _profile_version_key(profile_id: int) -> str:
    return f"recs:profile:{profile_id}:version"


@dataclass(frozen=True)
class Lookup:
    """One answer's place in the cache: its key, the tokens current when it was looked up, and
    the answer found there under those tokens (None: build it, then `list_store`)."""

    key: str
    versions: str
    found: Any

    @property
    def catalog_version(self) -> str:
        """The catalog's token alone (serving model, rules, availability)."""
        return self.versions.split(".")[0]


def list_lookup(*, profile_id: int | None, request: dict[str, Any]) -> Lookup:
    """The answer for the profile (or none) and the request's parameters, if current."""
    version_keys = [GLOBAL_VERSION_KEY]
    if profile_id is not None:
        version_keys.append(_profile_version_key(profile_id))
    digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:16]
    who = f"profile:{profile_id}" if profile_id is not None else "anonymous"
    key = f"recs:list:{who}:{digest}"
    found = cache.get_many([*version_keys, key])
    missing = {name: secrets.token_hex(4) for name in version_keys if name not in found}
    if missing:
        # No token yet (a cold cache): start one, so the next change can replace it.
        cache.set_many(missing, timeout=None)
        found |= missing
    versions = ".".join(str(found[name]) for name in version_keys)
    stored = found.get(key)
    current = isinstance(stored, dict) and stored.get("versions") == versions
    return Lookup(key=key, versions=versions, found=stored["answer"] if current else None)


def list_store(lookup: Lookup, value: Any) -> None:
    cache.set(
        lookup.key,
        {"versions": lookup.versions, "answer": value},
        timeout=settings.RECS_CACHE_SECONDS,
    )


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
