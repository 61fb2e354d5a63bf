from django.urls import path

from campaigns import views

app_name = "campaigns"

urlpatterns = [
    path("", views.campaign_list, name="list"),
    path("new/", views.campaign_new, name="new"),
    path("editor/compose/", views.campaign_compose, name="compose"),
    path("editor/preview/", views.campaign_editor_preview, name="editor-preview"),
    path("editor/test-send/", views.campaign_editor_test_send, name="editor-test-send"),
    path("channels/", views.channel_list, name="channels"),
    path("dashboard/", views.marketing_dashboard, name="marketing"),
    path("dead-letters/", views.dead_letters, name="dead-letters"),
    path(
        "profile/<int:profile_id>/deliveries/",
        views.profile_deliveries,
        name="profile-deliveries",
    ),
    path("<int:campaign_id>/", views.campaign_detail, name="detail"),
    path("<int:campaign_id>/edit/", views.campaign_edit, name="edit"),
    path("<int:campaign_id>/results/", views.campaign_results, name="results"),
    path("<int:campaign_id>/preview/", views.campaign_preview, name="preview"),
    path("<int:campaign_id>/test-send/", views.campaign_test_send, name="test-send"),
    path("<int:campaign_id>/<str:status>/", views.campaign_status, name="status"),
]
