"""The decide route under /v1/ (mounted beside ingestion in cdp/urls.py), and the same route by
full path for the web nodes' WSGI front (cdp/wsgi.py, profiles.ingest_middleware), which
serves it as it serves ingestion: past Django's handler and its middleware (metrics recorded,
security headers kept). That handler's work around the view (URL resolving through every
/v1/ pattern, the CSP middleware's policy built for a JSON answer, request signals) cost
~40% of the web CPU of a repeat decision, measured in one process."""

from django.urls import re_path

from experiences import decide_views

urlpatterns = [re_path(r"^decide/?$", decide_views.decide, name="decide")]

DECIDE_ROUTES = {f"/v1/decide{slash}": (decide_views.decide, {}) for slash in ("", "/")}
