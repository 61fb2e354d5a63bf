from django.urls import path

from experiences import views

app_name = "experiences"

urlpatterns = [
    path("", views.experience_list, name="list"),
    path("new/", views.experience_new, name="new"),
    path("placements/", views.placement_list, name="placements"),
    path("placements/new/", views.placement_new, name="placement-new"),
    path("placements/<int:placement_id>/", views.placement_edit, name="placement-edit"),
    path("<int:experience_id>/", views.experience_edit, name="edit"),
    path("<int:experience_id>/preview/", views.experience_preview, name="preview"),
    path("<int:experience_id>/results/", views.experience_results, name="results"),
]
