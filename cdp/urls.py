"""Top-level routes: ingestion (Segment-compatible, /v1/), the management API (/api/v1/, listed
in cdp/api_urls.py), pages, and operational endpoints."""

from allauth.account.decorators import secure_admin_login
from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from access import views as access_views
from cdp import views

# The admin signs in through allauth's login (password, then the second factor), never its own
# password-only form.
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]

urlpatterns = [
    # Browsers ask for /favicon.ico whatever the page's <link rel=icon> says.
    path("favicon.ico", RedirectView.as_view(url=f"{settings.STATIC_URL}favicon.svg")),
    # First: ingestion is by far the busiest route, and resolving stops at the first match.
    path("v1/", include("profiles.ingest_urls")),
    # What a site or app shows a visitor in its placements (write key, CORS, as ingestion).
    path("v1/", include("experiences.decide_urls")),
    path("", views.dashboard, name="dashboard"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("accounts/sessions/<int:session_id>/end/", access_views.session_end, name="session-end"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up code as a file: no inline script (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("cdp.api_urls")),
    path("profiles/", include("profiles.urls")),
    path("segments/", include("segments.urls")),
    path("campaigns/", include("campaigns.urls")),
    path("recommendations/", include("recommendations.urls")),
    path("experiences/", include("experiences.urls")),
    path("identity/", include("identity.urls")),
    path("privacy/", include("consent.urls")),
    path("data/", include("profiles.data_urls")),
    path("settings/", include("access.urls")),
    # Links inside sent messages: open pixel, click redirects, unsubscribe (public, signed).
    path("m/", include("campaigns.public_urls")),
]

handler404 = "cdp.views.page_not_found"
handler500 = "cdp.views.server_error"
