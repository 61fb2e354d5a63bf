"""Consent purposes and retention policies, edited by compliance staff in the app. Every
change writes an audit row with each changed field's old and new value: that is their history
(the Policies page lists it)."""

from __future__ import annotations

from typing import Any

from django.db import models, transaction

from access.services import audit_record
from consent.models import Purpose, RetentionPolicy

PURPOSE_FIELDS = ("code", "name", "description", "legal_basis", "granted_by_default")
RETENTION_FIELDS = ("event_name", "days", "enabled")


def _save_audited(
    instance: models.Model,
    values: dict[str, Any],
    fields: tuple[str, ...],
    resource: str,
    actor: Any,
) -> models.Model:
    created = instance.pk is None
    changes = {
        name: [None if created else getattr(instance, name), values[name]]
        for name in fields
        if name in values and (created or getattr(instance, name) != values[name])
    }
    if not changes:
        return instance
    for name, (_, new) in changes.items():
        setattr(instance, name, new)
    with transaction.atomic():
        instance.save()
        audit_record(
            actor=actor,
            action=f"{resource}.{'create' if created else 'update'}",
            resource=resource,
            resource_id=instance.pk,
            details={"changes": changes},
        )
    return instance


def purpose_save(*, purpose: Purpose | None, values: dict[str, Any], actor: Any) -> Purpose:
    """Create (purpose None) or change a consent purpose, audited with what changed."""
    saved = _save_audited(purpose or Purpose(), values, PURPOSE_FIELDS, "purpose", actor)
    assert isinstance(saved, Purpose)
    return saved


def retention_policy_save(
    *, policy: RetentionPolicy | None, values: dict[str, Any], actor: Any
) -> RetentionPolicy:
    """Create (policy None) or change a retention policy, audited with what changed."""
    saved = _save_audited(policy or RetentionPolicy(), values, RETENTION_FIELDS, "retention", actor)
    assert isinstance(saved, RetentionPolicy)
    return saved
