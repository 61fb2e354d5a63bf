"""Identity keys: the advisory locks that serialise work on them, and the keys an event
carries."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from django.db import connection

from profiles.identifiers import EventIdentifiers, Key, event_identifiers
from profiles.models import Event


def _lock_id(key: Key) -> int:
    digest = hashlib.blake2b(f"{key[0]}\x1f{key[1]}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def identity_keys_lock(*, keys: Iterable[Key]) -> None:
    """Hold a transaction-scoped lock on each identity key (Postgres; no-op elsewhere).

    Locks are taken in ascending order of their 64-bit ids in one statement, so concurrent
    callers cannot deadlock on them. Callers must be inside a transaction.
    """
    if connection.vendor != "postgresql":
        return
    lock_ids = sorted({_lock_id(key) for key in keys})
    if not lock_ids:
        return
    with connection.cursor() as cursor:
        # unnest yields the array's order, so the locks are taken in sorted order.
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(%s::bigint[]) AS k", [lock_ids]
        )


def event_identifiers_of(*, event: Event) -> EventIdentifiers:
    """The identifiers identity resolution takes from a stored event (an alias's previousId
    among them; a group's traits left out)."""
    return event_identifiers(
        user_id=event.user_id,
        anonymous_id=event.anonymous_id,
        # A group's traits describe the company (its email is info@acme.com), not the person.
        traits=None if event.type == "group" else event.traits,
        context=event.context,
        previous_id=getattr(event, "previous_id", None) if event.type == "alias" else None,
    )
