"""Write keys to sources, cached; tracking plans, saved and compiled."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from jsonschema import SchemaError
from jsonschema.validators import validator_for

from access.models import Source
from access.selectors import source_for_write_key, token_digest
from access.services import audit_record
from profiles.ingestion.errors import (
    TrackingPlanInvalidError,
)
from profiles.models import TrackingPlan

LOCAL_CACHE_SECONDS = 2
SOURCE_CACHE_SECONDS = 5
PLAN_CACHE_SECONDS = 5

# --- Write keys and sources ------------------------------------------------------------------


_local_sources: dict[str, tuple[float, Source]] = {}


def source_for_write_key_cached(*, write_key: str) -> Source | None:
    """The enabled source of a write key, with its tracking plan, cached so that a busy SDK
    costs no query and no network round trip per request.

    Two levels: this process's memory (LOCAL_CACHE_SECONDS) and the shared cache
    (SOURCE_CACHE_SECONDS), so disabling a source, rotating its key or editing its plan
    elsewhere than through `tracking_plan_save` takes effect within a few seconds. The local
    level is skipped inside a transaction (tests run in one that is rolled back) and cleared
    when a Source or TrackingPlan row is saved or deleted in this process.
    """
    if not write_key or len(write_key) > 512:
        return None
    digest = token_digest(write_key)
    use_local = not connection.in_atomic_block
    if use_local:
        hit = _local_sources.get(digest)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
    key = f"ingest:source:{digest}"
    source = cache.get(key)
    if source is None:
        source = source_for_write_key(write_key=write_key)
        if source is None:
            return None
        source._ingest_plan = _plan_state_load(source.pk)
        cache.set(key, source, SOURCE_CACHE_SECONDS)
    if use_local:
        if len(_local_sources) > 10_000:
            _local_sources.clear()
        _local_sources[digest] = (time.monotonic() + LOCAL_CACHE_SECONDS, source)
    return source


@receiver(post_save, sender=Source)
@receiver(post_delete, sender=Source)
@receiver(post_save, sender=TrackingPlan)
@receiver(post_delete, sender=TrackingPlan)
def _local_sources_forget(**kwargs: Any) -> None:
    _local_sources.clear()


# --- Tracking plans ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledPlan:
    mode: str
    validators: dict[str, Any]


_compiled_plans: dict[tuple[int, str], CompiledPlan] = {}


def _plan_cache_key(source_id: int) -> str:
    return f"ingest:plan:{source_id}"


def _schema_validator(schema: dict) -> Any:
    cls = validator_for(schema, default=validator_for({}))
    return cls(schema)


def _plan_state_load(source_id: int) -> tuple[str, dict, str]:
    """(mode, event_schemas, version) of a source's plan, ("", {}, "") without one."""
    plan = TrackingPlan.objects.filter(source_id=source_id).first()
    return (plan.mode, plan.event_schemas, plan.updated_at.isoformat()) if plan else ("", {}, "")


def plan_for_source(source: Source) -> CompiledPlan | None:
    state = getattr(source, "_ingest_plan", None)  # set by source_for_write_key_cached
    if state is None:
        state = cache.get(_plan_cache_key(source.pk))
        if state is None:
            state = _plan_state_load(source.pk)
            cache.set(_plan_cache_key(source.pk), state, PLAN_CACHE_SECONDS)
    mode, schemas, version = state
    if not mode:
        return None
    compiled = _compiled_plans.get((source.pk, version))
    if compiled is None:
        if len(_compiled_plans) > 1000:
            _compiled_plans.clear()
        compiled = CompiledPlan(
            mode=mode,
            validators={name: _schema_validator(schema) for name, schema in schemas.items()},
        )
        _compiled_plans[(source.pk, version)] = compiled
    return compiled


def tracking_plan_save(
    *, source: Source, mode: str, event_schemas: dict[str, dict], actor: Any = None
) -> TrackingPlan:
    """Create or replace the tracking plan of a source.

    `mode` is "flag" (keep violating events, with their violations recorded) or "quarantine"
    (quarantine violating and unplanned track events). `event_schemas` maps a track event name
    to the JSON Schema of its properties; each is checked against its meta-schema (draft 2020-12
    unless it names another with `$schema`). Raises TrackingPlanInvalidError saying which.
    """
    if mode not in TrackingPlan.Mode.values:
        raise TrackingPlanInvalidError(
            f"mode: must be one of {', '.join(TrackingPlan.Mode.values)}, not {mode!r}"
        )
    if not isinstance(event_schemas, dict):
        raise TrackingPlanInvalidError("event_schemas: must be an object of event name → schema")
    for name, schema in event_schemas.items():
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise TrackingPlanInvalidError(
                f"event_schemas: {name!r} is not a valid event name (1 to 255 characters)"
            )
        if not isinstance(schema, dict):
            raise TrackingPlanInvalidError(f"event_schemas[{name!r}]: must be a JSON object")
        try:
            validator_for(schema, default=validator_for({})).check_schema(schema)
        except SchemaError as exc:
            where = "/".join(str(part) for part in exc.path) or "(root)"
            raise TrackingPlanInvalidError(
                f"event_schemas[{name!r}]: not a valid JSON Schema at {where}: {exc.message}"
            ) from exc
    with transaction.atomic():
        plan, _ = TrackingPlan.objects.update_or_create(
            source=source, defaults={"mode": mode, "event_schemas": event_schemas}
        )
        audit_record(
            actor=actor,
            action="tracking_plan.save",
            resource="sources",
            resource_id=source.pk,
            details={"mode": mode, "events": sorted(event_schemas)[:100]},
        )
        keys = [_plan_cache_key(source.pk), f"ingest:source:{source.write_key_hash}"]
        cache.delete_many(keys)
        transaction.on_commit(partial(cache.delete_many, keys))
    return plan
