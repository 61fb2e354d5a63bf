"""Fuzzy matching runs over the profiles in the database (the services behind the Celery jobs
and `manage.py identity_rescan`).

- **Full**: every active profile is loaded, blocked, compared and scored; the model is refitted
  (EM, no labels) and refined from staff decisions; the blocking-key index (`MatchKey`) is
  rebuilt.
- **Incremental**: only profiles updated since the last run are prepared; their candidates are
  looked up in the `MatchKey` index (no rescan of the rest), loaded, and scored with the saved
  model.

Either way: pairs above the upper threshold are merged (unless a per-kind limit forbids it:
then queued), pairs between the thresholds are queued for review, pairs staff marked "not the
same person" are skipped. A pair above the threshold is queued instead when it has no evidence
beyond names or a conflicting field, or while the model's merges are held (too few profiles or
confident pairs, or a refit that would merge far more than the model before it): the summary
and each queued candidate say why (`identity.linkage`, `identity.matching.evidence`).
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from access.services import audit_record
from identity.blocking import DEFAULT_RULES, candidate_pairs, rule_keys
from identity.linkage import batch_match, hold_refresh, pairs_judge
from identity.matching import (
    LEVELS,
    Explanation,
    FieldSpec,
    Model,
    Prepared,
    Thresholds,
    columns_from_traits,
    compared_fields,
    fields_from_config,
    pairs_compare,
    pairs_explain,
    records_prepare,
    review_reason,
)
from identity.models import (
    CandidateStatus,
    Identity,
    MatchCandidate,
    MatchKey,
    MatchSettings,
    NotSamePerson,
    RescanJob,
)
from identity.rules import candidate_for_limit, held_breaks_limits, match_rules
from identity.selectors import match_settings
from identity.services.merge import PlannedMerge, profiles_merge_batch, survivor_order
from profiles.models import Profile

logger = logging.getLogger(__name__)

MAX_BLOCK = 200
LOAD_BATCH = 5000
# Merges per statement batch (and per transaction) in a rescan.
MERGE_BATCH = 500


class RescanBusyError(Exception):
    """Another rescan is queued or running."""


@dataclass
class RescanSummary:
    kind: str
    profiles: int = 0
    pairs: int = 0
    candidates: int = 0
    merged: int = 0
    queued: int = 0
    seconds: float = 0.0
    # Why the model's automatic merges wait for review ("" when they do not).
    held: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Progress = Callable[[float, str], None]


def _no_progress(fraction: float, step: str) -> None:
    return None


def _load(profile_ids: Sequence[int] | None = None) -> tuple[np.ndarray, list[dict]]:
    """(profile ids, traits) of active profiles (all, or those given), in id order."""
    queryset = Profile.objects.filter(merged_into__isnull=True).order_by("pk")
    if profile_ids is not None:
        queryset = queryset.filter(pk__in=list(profile_ids))
    ids, traits = [], []
    for pk, value in queryset.values_list("pk", "traits").iterator(chunk_size=LOAD_BATCH):
        ids.append(pk)
        traits.append(value if isinstance(value, dict) else {})
    return np.asarray(ids, dtype=np.int64), traits


def _labels_from_decisions(fields: Sequence[FieldSpec]) -> tuple[np.ndarray, np.ndarray]:
    """Level vectors of the pairs staff merged, read back from their stored explanations."""
    rows = []
    names = [(spec.path, LEVELS[spec.kind]) for spec in compared_fields(fields)]
    decided = MatchCandidate.objects.filter(
        status=CandidateStatus.MERGED, decided_by__isnull=False, reason="fuzzy"
    ).values_list("explanation", flat=True)
    for explanation in decided.iterator():
        by_path = {f.get("path"): f.get("level") for f in (explanation or {}).get("fields", [])}
        row = []
        for path, levels in names:
            label = by_path.get(path, "null")
            row.append(levels.index(label) + 1 if label in levels else 0)
        rows.append(row)
    if not rows:
        return np.zeros((0, len(names)), np.int8), np.zeros(0, bool)
    return np.asarray(rows, dtype=np.int8), np.ones(len(rows), dtype=bool)


def _keys_store(prepared: Prepared, ids: np.ndarray, *, replace_all: bool) -> None:
    """Write the blocking keys of these profiles into the MatchKey index."""
    if replace_all:
        MatchKey.objects.all().delete()
    else:
        MatchKey.objects.filter(profile_id__in=ids.tolist()).delete()
    rows: list[tuple[int, int, int]] = []
    for number, rule in enumerate(DEFAULT_RULES):
        for keys in rule_keys(prepared, rule):
            present = np.nonzero(keys)[0]
            signed = keys[present].view(np.int64)
            rows.extend(
                zip(ids[present].tolist(), [number] * len(present), signed.tolist(), strict=True)
            )
    if connection.vendor == "postgresql" and rows:
        buffer = io.StringIO("".join(f"{p}\t{r}\t{k}\n" for p, r, k in rows))
        with connection.cursor() as cursor:
            cursor.copy_from(buffer, MatchKey._meta.db_table, columns=("profile_id", "rule", "key"))
        return
    MatchKey.objects.bulk_create(
        [MatchKey(profile_id=p, rule=r, key=k) for p, r, k in rows], batch_size=2000
    )


def _neighbours(prepared: Prepared, ids: np.ndarray) -> set[int]:
    """Profile ids sharing a blocking key with the given (changed) profiles, from the index;
    keys shared by more than MAX_BLOCK profiles are skipped, as in a full run."""
    found: set[int] = set()
    for number, rule in enumerate(DEFAULT_RULES):
        wanted = {
            int(k)
            for keys in rule_keys(prepared, rule)
            for k in keys[keys != 0].view(np.int64).tolist()
        }
        wanted_list = list(wanted)
        for start in range(0, len(wanted_list), 1000):
            chunk = wanted_list[start : start + 1000]
            rows = MatchKey.objects.filter(rule=number, key__in=chunk).values_list(
                "key", "profile_id"
            )
            by_key: dict[int, list[int]] = {}
            for key, pid in rows:
                by_key.setdefault(key, []).append(pid)
            for members in by_key.values():
                if len(members) <= MAX_BLOCK:
                    found.update(members)
    return found - set(ids.tolist())


def identity_rescan(*, full: bool, progress: Progress = _no_progress) -> RescanSummary:
    """Run the matcher over the database's profiles (see the module docstring)."""
    started = time.perf_counter()
    moment = timezone.now()
    settings = match_settings()
    fields = fields_from_config(settings.fields)
    thresholds = Thresholds(merge=settings.merge_threshold, review=settings.review_threshold)
    model = _saved_model(settings.model)
    if model is not None and model.fields != fields:
        model = None  # the field set changed: refit
    if model is None or settings.matched_until is None:
        full = True
    summary = RescanSummary(kind="full" if full else "incremental")

    progress(0.05, "loading profiles")
    if full:
        ids, traits = _load()
        changed_mask = None
    else:
        changed_ids = list(
            Profile.objects.filter(
                merged_into__isnull=True, updated_at__gte=settings.matched_until
            ).values_list("pk", flat=True)
        )
        changed, changed_traits = _load(changed_ids)
        if len(changed) == 0:
            _finish(settings, moment)
            summary.seconds = time.perf_counter() - started
            return summary
        changed_prepared = records_prepare(columns_from_traits(changed_traits, fields), fields)
        _keys_store(changed_prepared, changed, replace_all=False)
        neighbours = _neighbours(changed_prepared, changed)
        ids, traits = _load(sorted(set(changed.tolist()) | neighbours))
        changed_mask = np.isin(ids, changed)
    summary.profiles = len(ids)
    if len(ids) < 2:
        if full:
            MatchKey.objects.all().delete()
        _finish(settings, moment)
        summary.seconds = time.perf_counter() - started
        return summary

    progress(0.2, "preparing")
    prepared = records_prepare(columns_from_traits(traits, fields), fields)
    progress(0.35, "blocking and comparing")
    if full:
        result = batch_match(
            prepared,
            thresholds=thresholds,
            max_block=MAX_BLOCK,
            decided=_labels_from_decisions(fields),
            previous=model,
            merged_before=_fuzzy_merges(),
        )
        model = result.model
        settings.model = model.to_json()
        settings.model_fitted_at = timezone.now()
        left, right, probability, decision = (
            result.left,
            result.right,
            result.probability,
            result.decision,
        )
    else:
        assert model is not None and changed_mask is not None
        left, right, _ = candidate_pairs(prepared, max_block=MAX_BLOCK)
        keep = changed_mask[left] | changed_mask[right]
        left, right = left[keep], right[keep]
        levels = pairs_compare(prepared, prepared, left, right)
        probability, decision = pairs_judge(model, prepared, left, levels, thresholds=thresholds)
        model.meta["hold"] = hold_refresh(
            model, merged_before=_fuzzy_merges(), merges=int((decision == 2).sum())
        )
        if model.meta["hold"]:
            decision[decision == 2] = 1
        settings.model["meta"]["hold"] = model.meta["hold"]  # what the review page shows
    summary.pairs = len(left)
    summary.held = model.meta["hold"]

    progress(0.7, "merging and queueing")
    selected = np.nonzero(decision >= 1)[0]
    selected = selected[np.argsort(-probability[selected], kind="stable")]
    summary.candidates = len(selected)
    merged_away = _decide(
        summary,
        model,
        thresholds,
        prepared,
        ids,
        left[selected],
        right[selected],
        decision[selected],
    )
    if full:
        # After the merges: the profiles merged away need no keys.
        progress(0.9, "indexing")
        alive = np.nonzero(~np.isin(ids, merged_away))[0]
        _keys_store(prepared.take(alive), ids[alive], replace_all=True)
    _finish(settings, moment)
    progress(1.0, "done")
    summary.seconds = time.perf_counter() - started
    logger.info("identity rescan: %s", summary.as_dict())
    return summary


def _fuzzy_merges() -> int:
    """Suggested pairs merged so far, by a run or by staff: pairs clearly one person."""
    return MatchCandidate.objects.filter(
        status=CandidateStatus.MERGED, reason=MatchCandidate.Reason.FUZZY
    ).count()


def _saved_model(data: dict[str, Any]) -> Model | None:
    """The model the settings hold, or None: not fitted yet, or saved in a format this
    version does not read (the next run refits)."""
    if not data:
        return None
    try:
        return Model.from_json(data)
    except ValueError:
        return None


def _finish(settings: MatchSettings, moment: Any) -> None:
    MatchSettings.objects.filter(pk=settings.pk).update(
        matched_until=moment, model=settings.model, model_fitted_at=settings.model_fitted_at
    )


def _decide(
    summary: RescanSummary,
    model: Model,
    thresholds: Thresholds,
    prepared: Prepared,
    ids: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    decision: np.ndarray,
) -> list[int]:
    """Queue the uncertain pairs and merge the sure ones (pairs in descending probability);
    returns the profiles merged away.

    Planned in memory first, with the decisions one merge at a time would take: a pair is
    skipped once either profile was merged away in this run (the next run compares the
    survivor), a merge that would break a per-kind limit is queued instead, the survivor is
    chosen by the settings' rule on the profiles as merged so far. Then the candidates are
    written in bulk and the merges done in batches of profiles that do not overlap
    (`profiles_merge_batch`), each with its own merge record.
    """
    kept = _pairs_undecided(ids, left, right)
    left, right, decision = left[kept], right[kept], decision[kept]
    explanations = pairs_explain(model, prepared, prepared, left, right) if len(kept) else []
    pairs = [
        (explanation, *sorted((int(ids[i]), int(ids[j]))), verdict)
        for explanation, i, j, verdict in zip(
            explanations, left.tolist(), right.tolist(), decision.tolist(), strict=True
        )
    ]
    profiles = _sides_load(sorted({pid for _, a, b, _ in pairs for pid in (a, b)}))
    limits = match_rules().limits
    candidates, plan = _merges_plan(
        summary,
        pairs,
        profiles,
        _held_values(list(profiles), limits),
        limits,
        thresholds=thresholds,
        hold=model.meta.get("hold", ""),
    )
    _candidates_store(candidates)
    merged_away = _merges_run(plan, candidates)
    summary.merged += len(merged_away)
    return merged_away


def _pairs_undecided(ids: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Positions of the pairs neither marked "not the same person" nor decided by staff."""
    rejected = set(NotSamePerson.objects.values_list("profile_a_id", "profile_b_id"))
    decided = set(
        MatchCandidate.objects.exclude(status=CandidateStatus.PENDING).values_list(
            "profile_a_id", "profile_b_id"
        )
    )
    keep = []
    for number, (i, j) in enumerate(zip(ids[left].tolist(), ids[right].tolist(), strict=True)):
        pair = (min(i, j), max(i, j))
        if pair not in rejected and pair not in decided:
            keep.append(number)
    return np.asarray(keep, dtype=np.int64)


def _sides_load(involved: list[int]) -> dict[int, _Side]:
    """What choosing survivors needs of these profiles, those not merged away."""
    return {
        pk: _Side(pk, first_seen, event_count)
        for start in range(0, len(involved), LOAD_BATCH)
        for pk, first_seen, event_count in Profile.objects.filter(
            pk__in=involved[start : start + LOAD_BATCH], merged_into__isnull=True
        ).values_list("pk", "first_seen", "event_count")
    }


def _held_values(profile_ids: list[int], limits: dict[str, int]) -> dict[int, dict[str, set[str]]]:
    """{profile id: {kind: values}} of the identifier kinds a per-kind limit applies to."""
    held: dict[int, dict[str, set[str]]] = {}
    if limits:
        for pid, kind, value in Identity.objects.filter(
            profile_id__in=profile_ids, kind__in=list(limits)
        ).values_list("profile_id", "kind", "value"):
            held.setdefault(pid, {}).setdefault(kind, set()).add(value)
    return held


_Plan = list[tuple[int, int, str, tuple[int, int]]]


def _merges_plan(
    summary: RescanSummary,
    pairs: list[tuple[Explanation, int, int, int]],
    profiles: dict[int, _Side],
    held: dict[int, dict[str, set[str]]],
    limits: dict[str, int],
    *,
    thresholds: Thresholds,
    hold: str,
) -> tuple[dict[tuple[int, int], MatchCandidate], _Plan]:
    """The candidates to store and the merges to do, (survivor, duplicate, reason, pair), in
    the pairs' order, as one merge at a time would decide them (see `_decide`). Queues the
    merges a per-kind limit stops; counts what is queued on the summary."""
    survivor_key = survivor_order(match_settings().survivor_rule)
    candidates: dict[tuple[int, int], MatchCandidate] = {}
    plan: _Plan = []
    for explanation, a, b, verdict in pairs:
        if a not in profiles or b not in profiles:
            continue  # merged in this run already; the next run sees the survivor
        if verdict == 2 and held_breaks_limits(held.get(a, {}), held.get(b, {}), limits):
            candidate_for_limit(first=Profile(pk=a), second=Profile(pk=b))
            summary.queued += 1
            continue
        why = "" if verdict == 2 else review_reason(explanation, thresholds=thresholds, hold=hold)
        candidates[(a, b)] = MatchCandidate(
            profile_a_id=a,
            profile_b_id=b,
            probability=explanation.probability,
            weight=explanation.weight,
            explanation={**explanation.to_json(), "held": why},
            reason=MatchCandidate.Reason.FUZZY,
        )
        if verdict != 2:
            summary.queued += 1
            continue
        survivor, duplicate = sorted((profiles[a], profiles[b]), key=survivor_key)
        plan.append(
            (survivor.pk, duplicate.pk, f"fuzzy match p={explanation.probability:.4f}", (a, b))
        )
        # The survivor as it will be once merged, for the next decisions.
        survivor.first_seen = min(
            (t for t in (survivor.first_seen, duplicate.first_seen) if t is not None),
            default=None,
        )
        survivor.event_count += duplicate.event_count
        for kind, values in held.pop(duplicate.pk, {}).items():
            held.setdefault(survivor.pk, {}).setdefault(kind, set()).update(values)
        del profiles[duplicate.pk]
    return candidates, plan


@dataclass
class _Side:
    """What choosing a survivor needs of a profile, as merged so far in the plan."""

    pk: int
    first_seen: datetime | None
    event_count: int


def _candidates_store(candidates: dict[tuple[int, int], MatchCandidate]) -> None:
    """Insert or refresh the candidates (their status is kept); sets their primary keys."""
    rows = list(candidates.values())
    for start in range(0, len(rows), MERGE_BATCH):
        MatchCandidate.objects.bulk_create(
            rows[start : start + MERGE_BATCH],
            update_conflicts=True,
            unique_fields=["profile_a", "profile_b"],
            update_fields=["probability", "weight", "explanation", "reason", "updated_at"],
        )
    missing = [key for key, row in candidates.items() if row.pk is None]
    for start in range(0, len(missing), MERGE_BATCH):
        chunk = missing[start : start + MERGE_BATCH]
        query = Q()
        for a, b in chunk:
            query |= Q(profile_a_id=a, profile_b_id=b)
        for pk, a, b in MatchCandidate.objects.filter(query).values_list(
            "pk", "profile_a_id", "profile_b_id"
        ):
            candidates[(a, b)].pk = pk


def _merges_run(
    plan: _Plan,
    candidates: dict[tuple[int, int], MatchCandidate],
) -> list[int]:
    """Do the planned merges in order, batched: a merge goes one round after the last merge
    that touched either of its profiles, so a round's merges never overlap. Returns the
    profiles merged away."""
    rounds: list[list[PlannedMerge]] = []
    last_round: dict[int, int] = {}
    for survivor, duplicate, reason, pair in plan:
        number = max(last_round.get(survivor, -1), last_round.get(duplicate, -1)) + 1
        last_round[survivor] = last_round[duplicate] = number
        if number == len(rounds):
            rounds.append([])
        rounds[number].append(PlannedMerge(survivor, duplicate, reason, candidates[pair]))
    merged_away: list[int] = []
    for merges in rounds:
        for start in range(0, len(merges), MERGE_BATCH):
            with transaction.atomic():
                records = profiles_merge_batch(merges=merges[start : start + MERGE_BATCH])
                MatchCandidate.objects.filter(
                    pk__in=[record.candidate_id for record in records]
                ).update(status=CandidateStatus.MERGED, decided_at=timezone.now())
                MatchKey.objects.filter(
                    profile_id__in=[record.duplicate_id for record in records]
                ).delete()
            merged_away.extend(record.duplicate_id for record in records)
    return merged_away


# --- Jobs -------------------------------------------------------------------------------------


# A job "running" for longer than this died with its worker: it no longer blocks new runs.
STALE_AFTER = timedelta(hours=2)


def rescan_job_create(*, full: bool, actor: Any = None) -> RescanJob:
    """Record a queued rescan; RescanBusyError if one is queued or running already."""
    with transaction.atomic():
        # The settings row serialises concurrent requests.
        MatchSettings.objects.get_or_create(pk=1)
        MatchSettings.objects.select_for_update().get(pk=1)
        active = RescanJob.objects.filter(
            status__in=[RescanJob.Status.QUEUED, RescanJob.Status.RUNNING],
            created_at__gt=timezone.now() - STALE_AFTER,
        )
        if active.exists():
            raise RescanBusyError("a rescan is already queued or running")
        job = RescanJob.objects.create(
            kind=RescanJob.Kind.FULL if full else RescanJob.Kind.INCREMENTAL,
            requested_by=actor if getattr(actor, "pk", None) else None,
        )
        audit_record(
            actor=actor,
            action="identity.rescan",
            resource="rescans",
            resource_id=job.pk,
            details={"kind": job.kind},
        )
        return job


def rescan_job_run(*, job: RescanJob) -> RescanSummary:
    """Run a queued job, recording progress on it as it goes (idempotent: a job already done
    or running is not run twice)."""
    claimed = RescanJob.objects.filter(pk=job.pk, status=RescanJob.Status.QUEUED).update(
        status=RescanJob.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        job.refresh_from_db()
        return RescanSummary(kind=job.kind)

    def progress(fraction: float, step: str) -> None:
        RescanJob.objects.filter(pk=job.pk).update(progress=fraction, step=step)

    try:
        summary = identity_rescan(full=job.kind == RescanJob.Kind.FULL, progress=progress)
    except Exception as error:
        RescanJob.objects.filter(pk=job.pk).update(
            status=RescanJob.Status.FAILED,
            error=type(error).__name__,
            finished_at=timezone.now(),
        )
        raise
    RescanJob.objects.filter(pk=job.pk).update(
        status=RescanJob.Status.DONE,
        progress=1.0,
        step="done",
        profiles=summary.profiles,
        candidates=summary.candidates,
        merged=summary.merged,
        queued=summary.queued,
        held=summary.held,
        finished_at=timezone.now(),
    )
    job.refresh_from_db()
    return summary
