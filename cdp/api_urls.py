"""Every management API route, in one file (STYLE.md rule 5)."""

from django.urls import path

from cdp import schema  # noqa: F401  (registers the API key scheme for OpenAPI)
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
