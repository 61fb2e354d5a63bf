"""The WSGI application, imported once by every web process (cdp/web.py) and by runserver: the
fixed ingestion routes, /v1/decide and cached recommendation lists are served in front of
Django's handler (profiles/ingest_middleware.py), everything else by it."""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")

django_application = get_wsgi_application()

from experiences.decide_urls import DECIDE_ROUTES  # noqa: E402 - needs Django set up
from profiles.ingest_middleware import IngestApplication  # noqa: E402
from recommendations.front import RECOMMENDATION_ROUTES  # noqa: E402

application = IngestApplication(
    django_application, more_routes=DECIDE_ROUTES, pattern_routes=RECOMMENDATION_ROUTES
)


def _warm_up() -> None:
    """Import every view (Django loads URLconfs on the first request) and what ingestion loads
    lazily, before this process serves: about a second of CPU that the first requests would
    otherwise spend holding the GIL while the process's other requests wait."""
    from profiles.ingestion import ingestion_warm_up

    get_resolver().url_patterns  # noqa: B018 - the property imports every URLconf and view
    ingestion_warm_up()


_warm_up()
# What is loaded by now lives as long as the process: frozen out of the collector, a full
# collection walks the objects of the requests in flight (thousands) instead of Django's,
# pandas' and the parsers' (~165,000). Those walks held the GIL, and so every thread of the
# process, for 100-300 ms under load during the ingest benchmark; frozen, a few ms.
gc.collect()
gc.freeze()
