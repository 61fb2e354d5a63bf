"""Bulk imports of profiles and events, for the Data page."""

from django.db.models import QuerySet

from profiles.models import DataImport


def data_imports_recent(*, limit: int = 20) -> QuerySet[DataImport]:
    return DataImport.objects.select_related("source", "requested_by").order_by("-id")[:limit]


def data_import_get(*, job_id: int) -> DataImport | None:
    return DataImport.objects.select_related("source", "requested_by").filter(pk=job_id).first()
