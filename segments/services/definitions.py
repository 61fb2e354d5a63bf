"""Writes to segment definitions: check, create, update, archive, duplicate."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from access.queueing import task_named
from access.services import audit_record
from segments import conditions, selectors
from segments.compiler import base_profiles, compiled_sql
from segments.models import (
    MembershipChange,
    Segment,
)
from segments.services.realtime import segment_index_invalidate
from segments.services.task_names import SEGMENT_REFRESH_TASK


def segment_definition_check(
    *, definition: Any, segment: Segment | None = None
) -> conditions.Dependencies:
    """Validate a definition fully: schema, semantics, referenced segments exist, no cycle,
    known consent purposes. Raises conditions.InvalidDefinition; returns its dependencies."""
    conditions.validate(definition, segment_exists=lambda i: Segment.objects.filter(pk=i).exists())
    resolver = selectors.definition_resolver()
    own_id = segment.pk if segment else None
    for pointer, node in conditions.walk_with_pointers(definition):
        if "segment" in node:
            _segment_reference_check(pointer, node["segment"], own_id, resolver)
        if "consent" in node and not selectors.consent_purpose_known(node["consent"]):
            _refuse(pointer, f"unknown consent purpose {node['consent']!r}")
    # Compiled once here, inside the caller's transaction, so that a definition the compiler
    # cannot turn into SQL fails before the segment is stored, not in its first refresh.
    compiled_sql(base_profiles().filter(selectors.definition_q(definition, now=timezone.now())))
    return conditions.dependencies(definition, resolver)


def _segment_reference_check(
    pointer: str,
    target_id: int,
    own_id: int | None,
    resolver: Callable[[int], Mapping[str, Any] | None],
) -> None:
    """A segment may not contain itself, directly or through the segments it refers to."""
    if target_id == own_id:
        _refuse(pointer, "a segment cannot contain itself")
    if own_id is None:
        return  # a new segment: nothing can refer to it yet
    target = resolver(target_id)
    cycle = conditions.find_cycle(own_id, target or {"all": []}, resolver)
    if cycle:
        chain = " → ".join(f"#{i}" for i in [own_id, target_id, *cycle[1:]])
        _refuse(pointer, f"segments would refer in a cycle: {chain}")


def _refuse(pointer: str, message: str) -> NoReturn:
    raise conditions.InvalidDefinition([conditions.ConditionError(pointer, message)])


@transaction.atomic
def segment_create(
    *,
    name: str,
    definition: Mapping[str, Any],
    actor: User | None = None,
    description: str = "",
    webhook_url: str = "",
) -> Segment:
    """Create a segment and queue its first refresh after commit."""
    deps = segment_definition_check(definition=definition)
    segment = Segment.objects.create(
        name=name,
        description=description,
        definition=definition,
        definition_version=conditions.DEFINITION_VERSION,
        dependencies=deps.as_dict(),
        webhook_url=webhook_url,
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    segment_index_invalidate()
    _queue_refresh(segment, cause=MembershipChange.Cause.DEFINITION)
    _segment_audit(segment, "segment.create", actor)
    return segment


def _segment_audit(segment: Segment, action: str, actor: Any, **details: Any) -> None:
    audit_record(
        actor=actor,
        action=action,
        resource="segments",
        resource_id=segment.pk,
        details={"name": segment.name, **details},
    )


@transaction.atomic
def segment_update(
    *,
    segment: Segment,
    name: str | None = None,
    definition: Mapping[str, Any] | None = None,
    description: str | None = None,
    webhook_url: str | None = None,
    actor: Any = None,
) -> Segment:
    """Change a segment; a new definition is re-checked and membership refreshed."""
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    if name is not None:
        segment.name = name
    if description is not None:
        segment.description = description
    if webhook_url is not None:
        segment.webhook_url = webhook_url
    definition_changed = definition is not None and definition != segment.definition
    if definition_changed:
        deps = segment_definition_check(definition=definition, segment=segment)
        segment.definition = definition
        segment.definition_version = conditions.DEFINITION_VERSION
        segment.dependencies = deps.as_dict()
    segment.save()
    if definition_changed:
        # Segments that embed this one depend on what it depends on now.
        resolver = selectors.definition_resolver()
        for user in selectors.segments_using(segment_id=segment.pk):
            user.dependencies = conditions.dependencies(user.definition, resolver).as_dict()
            user.save(update_fields=["dependencies", "updated_at"])
            _queue_refresh(user, cause=MembershipChange.Cause.DEFINITION)
        _queue_refresh(segment, cause=MembershipChange.Cause.DEFINITION)
    segment_index_invalidate()
    _segment_audit(segment, "segment.update", actor, definition_changed=definition_changed)
    return segment


@transaction.atomic
def segment_archive(*, segment: Segment, actor: Any = None) -> Segment:
    """Archived segments stop refreshing; their members and history stay readable."""
    segment.status = Segment.Status.ARCHIVED
    segment.save(update_fields=["status", "updated_at"])
    segment_index_invalidate()
    _segment_audit(segment, "segment.archive", actor)
    return segment


@transaction.atomic
def segment_unarchive(*, segment: Segment, actor: Any = None) -> Segment:
    segment.status = Segment.Status.ACTIVE
    segment.save(update_fields=["status", "updated_at"])
    segment_index_invalidate()
    _segment_audit(segment, "segment.unarchive", actor)
    _queue_refresh(segment, cause=MembershipChange.Cause.REFRESH)
    return segment


def segment_duplicate(*, segment: Segment, actor: User | None = None) -> Segment:
    return segment_create(
        name=f"{segment.name} (copy)"[:200],
        definition=segment.definition,
        actor=actor,
        description=segment.description,
    )


def _queue_refresh(segment: Segment, *, cause: str) -> None:
    task_named(SEGMENT_REFRESH_TASK).delay_on_commit(segment.pk, cause)
