"""The WSGI application, imported once by every web process (cdp/web.py) and by runserver."""

import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")

application = get_wsgi_application()


def _warm_up() -> None:
    """Import every view (Django loads URLconfs on the first request) and what ingestion loads
    lazily, before this process serves: about a second of CPU that the first requests would
    otherwise spend holding the GIL while the process's other requests wait."""
    from profiles.ingestion import ingestion_warm_up

    get_resolver().url_patterns  # noqa: B018 - the property imports every URLconf and view
    ingestion_warm_up()


_warm_up()
