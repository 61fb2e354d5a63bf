"""The project's routes plus a stand-in quarantine page, to test links to pages that land later."""

from django.http import HttpResponse
from django.urls import path

from cdp.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    *project_urlpatterns,
    path("data/quarantine/", lambda request: HttpResponse("quarantine"), name="test-quarantine"),
]
