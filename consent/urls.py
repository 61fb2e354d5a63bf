from django.urls import path

from consent import views

app_name = "privacy"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("requests/<int:request_id>/", views.request_detail, name="request"),
    path("requests/<int:request_id>/verify/", views.request_verify, name="request_verify"),
    path("requests/<int:request_id>/process/", views.request_process, name="request_process"),
    path("requests/<int:request_id>/cancel/", views.request_cancel, name="request_cancel"),
    path("requests/<int:request_id>/assign/", views.request_assign, name="request_assign"),
    path("requests/<int:request_id>/comment/", views.request_comment, name="request_comment"),
    path("requests/<int:request_id>/export/", views.request_export, name="request_export"),
    path("profiles/<int:profile_id>/consents/", views.profile_consents, name="profile_consents"),
    path("audit/", views.audit_log, name="audit"),
    path("policies/", views.policies, name="policies"),
    path("policies/<str:kind>/new/", views.policy_edit, name="policy-new"),
    path("policies/<str:kind>/<int:pk>/", views.policy_edit, name="policy-edit"),
]
