from django.urls import path

from segments import views

app_name = "segments"

urlpatterns = [
    path("", views.segment_list, name="list"),
    path("new/", views.segment_new, name="new"),
    path("preview/", views.segment_preview, name="preview"),
    path("properties/", views.event_properties, name="properties"),
    path("models/", views.model_list, name="models"),
    path("models/train/", views.model_train, name="model-train"),
    path("models/progress/", views.model_progress, name="model-progress"),
    path("models/<int:run_id>/rollback/", views.model_rollback, name="model-rollback"),
    path(
        "models/<int:run_id>/clusters/<int:cluster>/name/",
        views.cluster_name,
        name="cluster-name",
    ),
    path("profiles/<int:profile_id>/panel/", views.profile_panel, name="profile-panel"),
    path("<int:segment_id>/", views.segment_detail, name="detail"),
    path("<int:segment_id>/edit/", views.segment_edit, name="edit"),
    path("<int:segment_id>/explain/", views.segment_explain, name="explain"),
    path("<int:segment_id>/<str:action>/", views.segment_action, name="action"),
]
