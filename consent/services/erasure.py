"""Erasure: remove a subject from every table, cache and derived artifact, then verify.

Each app deletes its own rows. What goes, in order:
1. what the apps above consent hold (identities, merge records and match keys, segment
   memberships and history, and what later apps add): their erasure hooks
   (`erasure_hook_register`) delete it while the profiles still exist;
2. consent's own rows: the profiles' consent records;
3. the profiles app's rows (`profiles.services.profiles_erase`): the profiles' events, events not
   yet resolved to a profile that carry the subject's user or anonymous id, the profiles;
4. cache entries holding an identifier, or keyed `profile:<id>`;
5. access exports made earlier for the same subject.

Then only hashed tombstones remain, and `erasure_sweep_and_verify` scans every model, the
trained model artifacts, the stored files (MEDIA_ROOT) and the cache for the identifiers: the
proof that nothing is left, whoever forgot what. The models fitted on the subject's data are
retrained without them by their apps' hooks (segments, recommendations). Rows of the
message tables (events, quarantined messages) that merely mention an identifier are deleted,
by the profiles app, as the scan meets them.
"""

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings
from django.db import models
from django.utils import timezone

from access.services import history_rewrite
from consent.hashing import identifier_hash
from consent.models import ConsentRecord, ErasureTombstone, PrivacyRequest
from consent.services import scan
from profiles.models import Event, Profile, QuarantinedMessage
from profiles.services import events_delete, profiles_erase, quarantined_messages_delete

logger = logging.getLogger(__name__)


class ErasureHook(Protocol):
    def __call__(self, *, profile_ids: list[int], identifiers: list[str]) -> Mapping[str, int]: ...


# name -> hook, in registration order (the apps' ready(), so INSTALLED_APPS order).
ERASURE_HOOKS: dict[str, ErasureHook] = {}

# Tables of messages as received, where a row may merely mention the subject (someone else's
# event naming them, a quarantined message): the verification scan collects such rows and
# the profiles app deletes them.
_SWEEPERS: dict[type[models.Model], Callable[..., int]] = {
    Event: events_delete,
    QuarantinedMessage: quarantined_messages_delete,
}


def erasure_hook_register(*, name: str, hook: ErasureHook) -> None:
    """Let an app above consent delete what it holds about a subject when the subject is
    erased. Register once, from the app's `AppConfig.ready()`, under the app's label (a
    second registration under a name replaces the first).

    Contract: `hook(*, profile_ids, identifiers) -> {"app_label.Model": rows deleted, ...}`
    - is called by `subject_erase` before consent's and the profiles app's rows go, so the
      profiles (every profile of the subject, merged ones included) can still be read;
    - deletes every row of its own app that belongs to those profiles (foreign keys to them)
      or names them (profile ids inside JSON, ...), and what it derived from them: caches,
      files, model inputs; `identifiers` are the subject's raw identifiers (emails, user and
      anonymous ids, phones) for rows that hold them without a profile;
    - deletes only its own app's rows: other apps have their own hooks;
    - returns counts without identifiers (shown on the request as "Removed · <label>");
    - is idempotent: an erasure may run again for the same subject.
    Whatever a hook misses, the verification scan that follows reports (the request ends
    PARTIAL_SUCCESS), except rows that only point at a profile without naming it: those the
    profiles' deletion cascades to.
    """
    ERASURE_HOOKS[name] = hook


def subject_erase(
    *, profile_ids: Sequence[int], identifiers: Iterable[str], request: PrivacyRequest | None = None
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

    def add(counts: Mapping[str, int]) -> None:
        for label, count in counts.items():
            if count:
                removed[label] = removed.get(label, 0) + count

    for hook in ERASURE_HOOKS.values():
        add(hook(profile_ids=list(profile_ids), identifiers=needles))
    timed("hooks")

    # Append-only history; erasure is the one thing that removes it, through the one door
    # the database's trigger opens. Audit rows name profiles by id only and stay.
    with history_rewrite(
        reason="erasure",
        details={"profiles": len(profile_ids), "request": getattr(request, "pk", None)},
    ):
        add(ConsentRecord.objects.filter(profile_id__in=profile_ids).delete()[1])
    add(profiles_erase(profile_ids=profile_ids, identifiers=needles))
    timed("consent and profiles")

    add({"cache": scan.cache_erase(needles, profile_ids=profile_ids)})
    add({"exports": _exports_erase(needles, keep=request)})
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
    earlier_requests = PrivacyRequest.objects.exclude(export_file="")
    if keep is not None:
        earlier_requests = earlier_requests.exclude(pk=keep.pk)
    for earlier in earlier_requests:
        if wanted & set(earlier.subject_hashes.values()):
            path = Path(settings.MEDIA_ROOT) / earlier.export_file
            path.unlink(missing_ok=True)
            # The export is gone and so is the contact kept to deliver it (the subject of
            # an access request is otherwise sealed when its export is downloaded).
            PrivacyRequest.objects.filter(pk=earlier.pk).update(export_file="", subject={})
            count += 1
    return count


def erasure_sweep_and_verify(
    *, identifiers: Iterable[str], profile_ids: Iterable[int], request: PrivacyRequest | None
) -> dict[str, Any]:
    """Scan every model registered with Django and the cache for the identifiers.

    Rows of the message tables (events, quarantined messages) that merely mention the
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
        sweeper = _SWEEPERS.get(model)
        pks: list[Any] | None = [] if sweeper is not None else None
        found = scan.scan_model(model, needles, exclude_pks=exclude.get(label, ()), all_pks=pks)
        if sweeper is not None and pks:
            swept[label] = sweeper(ids=pks)
            found = scan.scan_model(model, needles, exclude_pks=exclude.get(label, ()))
        hits += found
    hits += scan.scan_artifacts(needles)
    remaining_profiles = Profile.objects.filter(pk__in=list(profile_ids)).count()
    cache_keys = scan.scan_cache(needles, profile_ids=profile_ids)
    # The request's own export (an access request erased later) is the subject's to download.
    own_export = [request.export_file] if request is not None and request.export_file else []
    files = scan.scan_files(needles, exclude=own_export)
    return {
        "clean": not hits and not cache_keys and not remaining_profiles and not files,
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
        # Paths only (under MEDIA_ROOT): they name an export or an upload, not the subject.
        "files": files,
        "profiles_remaining": remaining_profiles,
        "seconds": round(time.monotonic() - started, 3),
    }
