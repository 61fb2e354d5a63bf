"""Segment-compatible ingestion routes, mounted at /v1/ (see profiles/ingest_views.py).

Full names are the HTTP Tracking API that server SDKs use; one letter routes are the browser
SDK's; all of them correct a sender's clock drift the same way (profiles.ingestion)."""

from collections.abc import Callable
from typing import Any

from django.urls import re_path

from profiles import ingest_views

_TYPES = {
    "identify": "i",
    "track": "t",
    "page": "p",
    "screen": "s",
    "group": "g",
    "alias": "a",
}

# (path under /v1/, view, its arguments, route name): every route but the browser SDK's settings.
_FIXED: list[tuple[str, Callable[..., Any], dict[str, Any], str | None]] = [
    ("batch", ingest_views.batch_ingest, {}, "ingest-batch"),
    ("import", ingest_views.batch_ingest, {}, None),
    ("b", ingest_views.batch_ingest, {}, "ingest-batch-browser"),
    *[
        (
            name,
            ingest_views.message_ingest,
            {"message_type": name},
            f"ingest-{name}",
        )
        for name in _TYPES
    ],
    *[
        (letter, ingest_views.message_ingest, {"message_type": name}, None)
        for name, letter in _TYPES.items()
    ],
]

# Full path (with or without its trailing slash) to (view, arguments): what the web nodes' WSGI
# front (profiles/ingest_middleware.py) serves without resolving URLs.
INGEST_ROUTES: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
    f"/v1/{path}{slash}": (view, kwargs) for path, view, kwargs, _ in _FIXED for slash in ("", "/")
}

urlpatterns = [
    *[re_path(rf"^{path}/?$", view, kwargs, name=name) for path, view, kwargs, name in _FIXED],
    re_path(
        r"^projects/(?P<write_key>[^/]{1,512})/settings/?$",
        ingest_views.project_settings,
        name="ingest-project-settings",
    ),
]
