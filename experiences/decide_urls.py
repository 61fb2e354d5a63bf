"""The decide route under /v1/ (mounted beside ingestion in cdp/urls.py)."""

from django.urls import re_path

from experiences import decide_views

urlpatterns = [re_path(r"^decide/?$", decide_views.decide, name="decide")]
