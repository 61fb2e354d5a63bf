"""Tracking plans: per source, a JSON Schema for the properties of each planned event, and a
mode saying what happens to violations (flag them on the event, or quarantine the message)."""

from typing import Any

from django.db import transaction
from jsonschema import Draft202012Validator, exceptions, validators

from cdp.models import Source
from profiles.models import TrackingPlan


class InvalidTrackingPlanError(ValueError):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def tracking_plan_errors(event_schemas: Any) -> list[str]:
    """What is wrong with a plan's `{event name: JSON Schema}` mapping; empty when it is valid.
    A schema without `$schema` is read as JSON Schema 2020-12."""
    if not isinstance(event_schemas, dict):
        return ["The plan must be a JSON object mapping event names to JSON Schemas."]
    errors = []
    for name, schema in event_schemas.items():
        if not name.strip():
            errors.append("An event name may not be blank.")
            continue
        if not isinstance(schema, dict | bool):
            errors.append(f"{name!r}: the schema must be a JSON object.")
            continue
        validator = validators.validator_for(schema, default=Draft202012Validator)
        try:
            validator.check_schema(schema)
        except exceptions.SchemaError as error:
            where = "/".join(str(part) for part in error.absolute_path) or "(root)"
            errors.append(f"{name!r}: not a valid JSON Schema at {where}: {error.message}")
    return errors


def tracking_plan_save(*, source: Source, mode: str, event_schemas: dict[str, Any]) -> TrackingPlan:
    """Create or replace the tracking plan of a source."""
    if mode not in TrackingPlan.Mode.values:
        raise InvalidTrackingPlanError([f"Unknown mode {mode!r}."])
    errors = tracking_plan_errors(event_schemas)
    if errors:
        raise InvalidTrackingPlanError(errors)
    with transaction.atomic():
        plan, _ = TrackingPlan.objects.update_or_create(
            source=source, defaults={"mode": mode, "event_schemas": event_schemas}
        )
    return plan
