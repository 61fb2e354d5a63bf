"""Writes: the catalog (explicit and learned from events), bulk imports, interactions (the
pipeline stage), training runs and the model registry. Everything public is importable from
here; see each module's docstring."""

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
from recommendations.services.imports import (
    ImportFileError,
    import_format,
    item_import_create,
    item_import_run,
)
from recommendations.services.interactions import interactions_record

__all__ = [
    "ImportFileError",
    "ItemExists",
    "ProductSighting",
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
]
