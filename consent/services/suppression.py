"""Suppression: a subject's identifiers, kept hashed, whose messages are dropped at ingestion
and whose profiles are allowed nothing.

`suppression_cache` holds the suppressed hashes (and profile ids) per process; ingestion's
filter and the pipeline's consent stage read it, never the table. Apps above consent that keep
state for treating a person (personalisation decisions, ...) drop it through suppression hooks
(`suppression_hook_register`) when the person is suppressed.
"""

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from access.services import audit_record
from consent import selectors
from consent.hashing import SUBJECT_KINDS, identifier_hash, identifier_normalize
from consent.models import PrivacyRequest, Suppression

_VERSION_KEY = "consent:suppression-version"

SuppressionHook = Callable[..., Mapping[str, int]]
# name -> hook, in registration order (the apps' ready(), so INSTALLED_APPS order).
SUPPRESSION_HOOKS: dict[str, SuppressionHook] = {}


def suppression_hook_register(*, name: str, hook: SuppressionHook) -> None:
    """Let an app above consent delete what it keeps only to treat a person when the person
    is suppressed. Register once, from the app's `AppConfig.ready()`, under the app's label (a
    second registration under a name replaces the first).

    Contract: `hook(*, profile_ids: list[int]) -> {"app_label.Model": rows deleted}`
    - runs inside `suppression_create`'s transaction, after the suppression is written;
    - deletes its own app's rows of those profiles and of the profiles merged into them that
      a suppressed person must not leave behind (what suppression forbids from now on is
      enforced where the app reads consent, not here);
    - returns counts without identifiers (they go on the audit row);
    - is idempotent: a subject may be suppressed again.
    """
    SUPPRESSION_HOOKS[name] = hook


class Suppressed(NamedTuple):
    hashes: frozenset[str]
    kinds: frozenset[str]
    profile_ids: frozenset[int]


class SuppressionCache:
    """The suppressed identifiers' hashes (and profile ids), held per process and reloaded
    when another process bumps the version in the shared cache (checked at most every
    SUPPRESSION_REFRESH_SECONDS). Ingestion consults it for every message and the pipeline
    for every chunk, so the fast path is a set lookup; the process that creates or removes
    a suppression sees it at once, others within the refresh interval."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state = Suppressed(frozenset(), frozenset(), frozenset())
        self.version: str | None = None
        self.checked = 0.0

    def invalidate(self) -> None:
        with self.lock:
            self.version = None
            self.checked = 0.0

    def changed(self) -> None:
        """Suppression rows were written: this process reloads at once, others within the
        refresh interval of this transaction's commit."""
        self.invalidate()
        cache.set(_VERSION_KEY, uuid.uuid4().hex, timeout=None)
        # Other processes must reload after the rows are visible to them.
        transaction.on_commit(lambda: cache.set(_VERSION_KEY, uuid.uuid4().hex, timeout=None))

    def current(self) -> Suppressed:
        now = time.monotonic()
        if self.version is not None and now - self.checked < settings.SUPPRESSION_REFRESH_SECONDS:
            return self.state
        with self.lock:
            shared = cache.get(_VERSION_KEY)
            if shared is None or shared != self.version:
                rows = list(
                    Suppression.objects.values_list("identifier_hash", "kind", "profile_id")
                )
                self.state = Suppressed(
                    frozenset(h for h, _, _ in rows),
                    frozenset(k for _, k, _ in rows),
                    frozenset(p for _, _, p in rows if p is not None),
                )
                if shared is None:
                    shared = uuid.uuid4().hex
                    cache.add(_VERSION_KEY, shared, timeout=None)
                self.version = shared
            self.checked = now
            return self.state


suppression_cache = SuppressionCache()


@lru_cache(maxsize=65536)
def _message_identifier_hash(kind: str, value: str) -> str | None:
    """Normalise and hash an identifier as sent; cached, since the same people keep sending."""
    try:
        return identifier_hash(kind, identifier_normalize(kind, value))
    except ValueError:
        return None


def suppression_ingest_filter(source: Any, message: Any) -> str | None:
    """Ingestion filter: "suppressed" when the message names a suppressed subject (the caller
    drops it, counts it, stores nothing), else None."""
    hashes, kinds, _ = suppression_cache.current()
    if not hashes or not isinstance(message, Mapping):
        return None
    candidates: list[tuple[str, Any]] = []
    if "user_id" in kinds and message.get("userId"):
        candidates.append(("user_id", message["userId"]))
    if "anonymous_id" in kinds and message.get("anonymousId"):
        candidates.append(("anonymous_id", message["anonymousId"]))
    context = message.get("context")
    for traits in (
        message.get("traits"),
        context.get("traits") if isinstance(context, Mapping) else None,
    ):
        if isinstance(traits, Mapping):
            for kind in ("email", "phone"):
                if kind in kinds and traits.get(kind):
                    candidates.append((kind, traits[kind]))
    for kind, value in candidates:
        if not isinstance(value, str | int) or isinstance(value, bool):
            continue
        digest = _message_identifier_hash(kind, str(value))
        if digest is not None and digest in hashes:
            Suppression.objects.filter(identifier_hash=digest).update(
                dropped_count=F("dropped_count") + 1, last_dropped_at=timezone.now()
            )
            return "suppressed"
    return None


def _subject_hash_pairs(
    identifiers: dict[str, str], profile_ids: list[int]
) -> dict[str, tuple[str, int | None]]:
    """hash -> (kind, profile id) for the subject's identifiers and its profiles' identities."""
    pairs: dict[str, tuple[str, int | None]] = {}
    owner = profile_ids[0] if profile_ids else None
    for kind, value in identifiers.items():
        pairs[identifier_hash(kind, value)] = (kind, owner)
    for kind, value, profile_id in selectors.identities_of_profiles(
        profile_ids=profile_ids, kinds=SUBJECT_KINDS
    ):
        try:
            normalized = identifier_normalize(kind, value)
        except ValueError:
            normalized = value
        pairs[identifier_hash(kind, normalized)] = (kind, profile_id)
    return pairs


@transaction.atomic
def suppression_create(
    *,
    identifiers: dict[str, str],
    profile_ids: list[int],
    request: PrivacyRequest | None = None,
    actor: Any = None,
) -> int:
    """Suppress the subject: every identifier it is known by; the suppression hooks delete
    what the apps kept to treat its profiles. Returns how many identifiers are new."""
    pairs = _subject_hash_pairs(identifiers, profile_ids)
    existing = set(
        Suppression.objects.filter(identifier_hash__in=pairs).values_list(
            "identifier_hash", flat=True
        )
    )
    Suppression.objects.bulk_create(
        [
            Suppression(identifier_hash=h, kind=kind, profile_id=pid, request=request)
            for h, (kind, pid) in pairs.items()
            if h not in existing
        ],
        ignore_conflicts=True,
    )
    suppression_cache.changed()
    removed: dict[str, int] = {}
    for hook in SUPPRESSION_HOOKS.values():
        removed.update(hook(profile_ids=list(profile_ids)))
    details: dict[str, Any] = {"identifiers": len(pairs)}
    if any(removed.values()):
        details["removed"] = {label: count for label, count in removed.items() if count}
    named: list[int | None] = list(profile_ids) or [None]
    for pid in named:
        audit_record(
            actor=actor,
            action="suppress",
            resource="privacy",
            resource_id=request.pk if request else "",
            profile_id=pid,
            details=details,
        )
    return len(pairs) - len(existing)


def suppression_remove(
    *,
    identifiers: dict[str, str],
    profile_ids: list[int],
    request: PrivacyRequest | None = None,
    actor: Any = None,
) -> int:
    """Lift the subject's suppression: every identifier it is known by. Returns how many
    suppressions went."""
    pairs = _subject_hash_pairs(identifiers, profile_ids)
    deleted, _ = Suppression.objects.filter(
        Q(identifier_hash__in=pairs) | Q(profile_id__in=profile_ids)
    ).delete()
    suppression_cache.changed()
    audit_record(
        actor=actor,
        action="unsuppress",
        resource="privacy",
        resource_id=request.pk if request else "",
        details={"removed": deleted},
    )
    return deleted
