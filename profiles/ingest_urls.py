"""Segment-compatible ingestion routes, mounted at /v1/ (see profiles/ingest_views.py).

Full names are the HTTP Tracking API that server SDKs use; one letter routes are the browser
SDK's (its timestamps are the device clock, so they are corrected for skew)."""

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

urlpatterns = [
    re_path(
        r"^(?:batch|import)/?$", ingest_views.batch_ingest, {"client": False}, name="ingest-batch"
    ),
    re_path(r"^b/?$", ingest_views.batch_ingest, {"client": True}, name="ingest-batch-browser"),
    *[
        re_path(
            rf"^{name}/?$",
            ingest_views.message_ingest,
            {"message_type": name, "client": False},
            name=f"ingest-{name}",
        )
        for name in _TYPES
    ],
    *[
        re_path(
            rf"^{letter}/?$",
            ingest_views.message_ingest,
            {"message_type": name, "client": True},
        )
        for name, letter in _TYPES.items()
    ],
    re_path(
        r"^projects/(?P<write_key>[^/]{1,512})/settings/?$",
        ingest_views.project_settings,
        name="ingest-project-settings",
    ),
]
