from django.urls import path

from recommendations import views

app_name = "recommendations"

urlpatterns = [
    path("", views.catalog, name="catalog"),
    path("items/<int:item_id>/", views.item_detail, name="item"),
    path("imports/new/", views.import_new, name="import-new"),
    path("imports/<int:job_id>/", views.import_detail, name="import"),
    path("imports/<int:job_id>/progress/", views.import_progress, name="import-progress"),
    path("models/", views.models, name="models"),
    path("models/progress/", views.model_progress, name="model-progress"),
    path("models/train/", views.model_train, name="model-train"),
    path("models/<int:run_id>/serve/", views.model_serve, name="model-serve"),
    path("profiles/<int:profile_id>/", views.profile_block, name="profile-block"),
]
