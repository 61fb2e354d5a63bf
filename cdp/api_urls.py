"""Every management API route, in one file (STYLE.md rule 5)."""

from django.urls import path

from cdp import schema  # noqa: F401  (registers the API key scheme for OpenAPI)
from consent import api as consent_api
from profiles import api as profiles_api

urlpatterns: list = [
    path("profiles/", profiles_api.ProfileListApi.as_view(), name="api-profile-list"),
    path(
        "profiles/<int:profile_id>/",
        profiles_api.ProfileDetailApi.as_view(),
        name="api-profile-detail",
    ),
    path(
        "profiles/<int:profile_id>/events/",
        profiles_api.ProfileEventsApi.as_view(),
        name="api-profile-events",
    ),
]

# Consent and privacy (consent/).
urlpatterns += [
    path("consents/", consent_api.ConsentCreateApi.as_view(), name="api-consents"),
    path("consent-purposes/", consent_api.PurposeListApi.as_view(), name="api-consent-purposes"),
    path(
        "profiles/<int:profile_id>/consents/",
        consent_api.ProfileConsentsApi.as_view(),
        name="api-profile-consents",
    ),
    path(
        "privacy-requests/",
        consent_api.PrivacyRequestListCreateApi.as_view(),
        name="api-privacy-requests",
    ),
    path(
        "privacy-requests/<int:request_id>/",
        consent_api.PrivacyRequestDetailApi.as_view(),
        name="api-privacy-request",
    ),
    path(
        "privacy-requests/<int:request_id>/export/",
        consent_api.PrivacyRequestExportApi.as_view(),
        name="api-privacy-request-export",
    ),
    path("audit/", consent_api.AuditLogListApi.as_view(), name="api-audit"),
]
