"""Writes: the catalog (explicit and learned from events), bulk imports, interactions (the
pipeline stage), training runs and the model registry, the drift check. Everything public is
importable from here; see each module's docstring."""

from recommendations.services.catalog import (
    ItemExists,
    ProductSighting,
    UpsertResult,
    item_create,
    item_delete,
    item_update,
    items_learn,
    items_upsert,
)
from recommendations.services.drift import recommender_drift_check
from recommendations.services.erasure import recommendation_data_erase
from recommendations.services.imports import (
    ImportFileError,
    import_format,
    item_import_create,
    item_import_run,
)
from recommendations.services.interactions import interactions_record
from recommendations.services.rules import rule_set_save
from recommendations.services.training import (
    NotEnoughData,
    RollbackRefused,
    model_rollback,
    model_train,
    model_train_request,
    models_retrain_scheduled,
)

__all__ = [
    "ImportFileError",
    "ItemExists",
    "NotEnoughData",
    "ProductSighting",
    "RollbackRefused",
    "UpsertResult",
    "import_format",
    "interactions_record",
    "item_create",
    "item_delete",
    "item_import_create",
    "item_import_run",
    "item_update",
    "items_learn",
    "items_upsert",
    "model_rollback",
    "model_train",
    "model_train_request",
    "models_retrain_scheduled",
    "recommendation_data_erase",
    "recommender_drift_check",
    "rule_set_save",
]
