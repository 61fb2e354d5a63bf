"""Top-level routes: ingestion (Segment-compatible, /v1/), the management API (/api/v1/, listed
in cdp/api_urls.py), pages, and operational endpoints."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from cdp import views

urlpatterns = [
    # First: ingestion is by far the busiest route, and resolving stops at the first match.
    path("v1/", include("profiles.ingest_urls")),
    path("", views.dashboard, name="dashboard"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("cdp.api_urls")),
    path("profiles/", include("profiles.urls")),
    path("segments/", include("segments.urls")),
    path("campaigns/", include("campaigns.urls")),
    path("recommendations/", include("recommendations.urls")),
    path("identity/", include("identity.urls")),
    path("privacy/", include("consent.urls")),
    path("data/", include("profiles.data_urls")),
    path("settings/", include("access.urls")),
    # Links inside sent messages: open pixel, click redirects, unsubscribe (public, signed).
    path("m/", include("campaigns.public_urls")),
]
