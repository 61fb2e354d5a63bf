from django.urls import path

from identity import views

app_name = "identity"

urlpatterns = [
    path("", views.review_queue, name="queue"),
    path("decide/", views.decide, name="decide"),
    path("merges/", views.merge_history, name="merges"),
    path("merges/<int:merge_id>/unmerge/", views.unmerge, name="unmerge"),
    path("settings/", views.settings_page, name="settings"),
    path("rescans/", views.rescan_start, name="rescan"),
    path("rescans/progress/", views.rescan_progress, name="rescan-progress"),
]
