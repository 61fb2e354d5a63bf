"""The Data pages, mounted at /data/."""

from django.urls import path

from profiles import data_views

app_name = "data"

urlpatterns = [
    path("", data_views.sources, name="sources"),
    path("sources/new/", data_views.source_create, name="source-create"),
    path("sources/<int:source_id>/", data_views.source_detail, name="source"),
    path("sources/<int:source_id>/plan/", data_views.source_plan_save, name="source-plan"),
    path("sources/<int:source_id>/rotate/", data_views.source_rotate_key, name="source-rotate"),
    path("sources/<int:source_id>/enabled/", data_views.source_set_enabled, name="source-enabled"),
    path("sources/<int:source_id>/live/", data_views.source_live, name="source-live"),
    path("quarantine/", data_views.quarantine, name="quarantine"),
    path("quarantine/bulk/", data_views.quarantine_bulk, name="quarantine-bulk"),
    path("quarantine/<int:item_id>/", data_views.quarantined, name="quarantined"),
    path("quarantine/<int:item_id>/act/", data_views.quarantined_act, name="quarantined-act"),
    path("currencies/", data_views.currencies, name="currencies"),
    path("currencies/set/", data_views.currency_set, name="currency-set"),
    path("currencies/<str:code>/delete/", data_views.currency_delete, name="currency-delete"),
    path("imports/", data_views.imports, name="imports"),
    path("imports/new/", data_views.import_create, name="import-create"),
    path("imports/<int:job_id>/", data_views.import_detail, name="import"),
    path("imports/<int:job_id>/progress/", data_views.import_progress, name="import-progress"),
]
