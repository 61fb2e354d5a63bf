"""Erasure: remove a subject from every table, cache and derived artifact, then verify.

What goes, in order:
1. hooks that other apps registered (`erasure_hook_register`): their derived data and model
   artifacts (factors, cached recommendations, training inputs...);
2. every row of every model with a foreign key (or many-to-many) to `profiles.Profile` whose
   profile is the subject's: events, identities, consents, memberships, deliveries... found
   through the app registry, so new tables are covered without registration;
3. events not yet resolved to a profile that carry the subject's user or anonymous id;
4. the profiles themselves;
5. cache entries holding an identifier, or keyed `profile:<id>`;
6. access exports made earlier for the same subject.

Then only hashed tombstones remain, and `erasure_sweep_and_verify` scans every model and the
cache; rows of the "message" tables (events, quarantined messages, and any registered with
`erasure_sweep_model_register`) that merely mention an identifier are deleted as it meets them.
"""

import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from consent.hashing import identifier_hash
from consent.models import ErasureTombstone, PrivacyRequest
from consent.services import scan
from profiles.models import Event, Profile

logger = logging.getLogger(__name__)

DELETE_BATCH = 10_000

ErasureHook = Callable[..., Any]
_HOOKS: dict[str, ErasureHook] = {}
_SWEEP_MODELS: set[str] = {"profiles.Event", "profiles.QuarantinedMessage"}


def erasure_hook_register(name: str, fn: ErasureHook) -> None:
    """Register `fn(*, profile_ids: list[int], identifiers: list[str]) -> int | None`, called
    before the profiles are deleted (so it can still read them). It removes what its app
    derived from these profiles that a foreign key to Profile does not already reach: model
    artifacts, caches, files. Return how many things it removed. Idempotent: it may run
    again for the same subject. Register from your AppConfig.ready(); the name de-duplicates."""
    _HOOKS[name] = fn


def erasure_sweep_model_register(label: str) -> None:
    """Also delete rows of this model ("app.Model") that merely mention the subject."""
    _SWEEP_MODELS.add(label)


def erasure_hooks() -> dict[str, ErasureHook]:
    return dict(_HOOKS)


def profile_relations() -> list[tuple[type[models.Model], str]]:
    """(model, field name) for every FK / M2M-through FK pointing at Profile."""
    found = []
    for model in apps.get_models(include_auto_created=True):
        if model is Profile or not model._meta.managed:
            continue
        for f in model._meta.local_fields:
            if f.is_relation and f.related_model is Profile:
                found.append((model, f.name))
    return found


def _delete_in_batches(queryset: models.QuerySet) -> int:
    model = queryset.model
    total = 0
    while True:
        pks = list(queryset.values_list("pk", flat=True)[:DELETE_BATCH])
        if not pks:
            return total
        with transaction.atomic():
            deleted, _ = model._base_manager.filter(pk__in=pks).delete()
        total += deleted


def subject_erase(
    *, profile_ids: list[int], identifiers: Iterable[str], request: PrivacyRequest | None = None
) -> dict[str, Any]:
    """Remove the subject everywhere; returns counts per table (no identifiers)."""
    started = time.monotonic()
    needles = sorted({v for v in identifiers if v})
    removed: dict[str, int] = {}
    timings: dict[str, float] = {}
    lap = [time.monotonic()]

    def timed(phase: str) -> None:
        now = time.monotonic()
        timings[phase] = round(now - lap[0], 3)
        lap[0] = now

    def add(label: str, count: int) -> None:
        if count:
            removed[label] = removed.get(label, 0) + count

    for name, hook in erasure_hooks().items():
        add(f"hook:{name}", int(hook(profile_ids=list(profile_ids), identifiers=needles) or 0))
    timed("hooks")

    if profile_ids:
        for model, field_name in profile_relations():
            count = _delete_in_batches(
                model._base_manager.filter(**{f"{field_name}__in": profile_ids})
            )
            add(model._meta.label, count)
    timed("related rows")

    unresolved = Q(pk__in=[])
    for value in needles:
        unresolved |= Q(user_id=value) | Q(anonymous_id=value)
    add("profiles.Event", _delete_in_batches(Event.objects.filter(unresolved)))

    if profile_ids:
        with transaction.atomic():
            Profile.objects.filter(pk__in=profile_ids).update(merged_into=None)
            _, per_model = Profile.objects.filter(pk__in=profile_ids).delete()
        for label, count in per_model.items():
            add(label, count)
    timed("unresolved events and profiles")

    add("cache", scan.cache_erase(needles, profile_ids=profile_ids))
    add("exports", _exports_erase(needles, keep=request))
    timed("cache and exports")
    if request is not None:
        ErasureTombstone.objects.bulk_create(
            ErasureTombstone(identifier_hash=h, kind=kind, request=request)
            for kind, h in request.subject_hashes.items()
        )
    logger.info(
        "erasure removed %s rows/items for %d profiles in %.2fs",
        sum(removed.values()),
        len(profile_ids),
        time.monotonic() - started,
    )
    return {"profiles": len(profile_ids), "removed": removed, "seconds": timings}


def _exports_erase(needles: list[str], *, keep: PrivacyRequest | None) -> int:
    """Delete earlier access exports of this subject (matched by hashed identifier)."""
    wanted = {
        identifier_hash(kind, value) for kind in ("email", "user_id", "phone") for value in needles
    }
    count = 0
    for earlier in PrivacyRequest.objects.exclude(export_file="").exclude(
        pk=keep.pk if keep else None
    ):
        if wanted & set(earlier.subject_hashes.values()):
            path = Path(settings.MEDIA_ROOT) / earlier.export_file
            path.unlink(missing_ok=True)
            PrivacyRequest.objects.filter(pk=earlier.pk).update(export_file="")
            count += 1
    return count


def erasure_sweep_and_verify(
    *, identifiers: Iterable[str], profile_ids: Iterable[int], request: PrivacyRequest | None
) -> dict[str, Any]:
    """Scan every model registered with Django and the cache for the identifiers.

    Rows of the message tables (`erasure_sweep_model_register`) that merely mention the
    subject (an event of someone else naming them, a quarantined message) are deleted when the
    scan meets them, and those tables scanned again; what is left anywhere is reported. One
    pass over each table in the common case, which is what keeps a large erasure fast."""
    started = time.monotonic()
    needles = sorted({v for v in identifiers if v})
    exclude = {"consent.PrivacyRequest": [request.pk]} if request is not None else {}
    hits: list[scan.ScanHit] = []
    swept: dict[str, int] = {}
    models_scanned = scan.scannable_models()
    for model in models_scanned:
        label = model._meta.label
        pks: list[Any] | None = [] if label in _SWEEP_MODELS else None
        found = scan.scan_model(model, needles, exclude_pks=exclude.get(label, ()), all_pks=pks)
        if pks:
            for start in range(0, len(pks), DELETE_BATCH):
                deleted, _ = model._base_manager.filter(
                    pk__in=pks[start : start + DELETE_BATCH]
                ).delete()
                swept[label] = swept.get(label, 0) + deleted
            found = scan.scan_model(model, needles, exclude_pks=exclude.get(label, ()))
        hits += found
    remaining_profiles = Profile.objects.filter(pk__in=list(profile_ids)).count()
    cache_keys = scan.scan_cache(needles, profile_ids=profile_ids)
    return {
        "clean": not hits and not cache_keys and not remaining_profiles,
        "scanned_at": timezone.now().isoformat(),
        "models_scanned": len(models_scanned),
        "identifiers_searched": len(needles),
        "swept": swept,
        "hits": [
            {
                "model": h.model,
                "table": h.table,
                "column": h.column,
                "count": h.count,
                "sample_ids": [str(pk) for pk in h.sample_pks],
            }
            for h in hits
        ],
        "cache_keys": len(cache_keys),
        "profiles_remaining": remaining_profiles,
        "seconds": round(time.monotonic() - started, 3),
    }
