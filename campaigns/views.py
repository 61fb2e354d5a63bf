"""Pages: the public links in sent messages (open pixel, click redirect, unsubscribe).

The public views need no login: a signed token (campaigns.tracking) says which delivery they
are about, so they can neither be forged nor turned into an open redirect.
"""

from __future__ import annotations

import base64

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from access.auth import client_ip
from campaigns import services
from campaigns.tracking import click_token_read, open_token_read, unsubscribe_token_read

# The smallest transparent GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


@require_GET
@never_cache
def tracking_open(request: HttpRequest, token: str) -> HttpResponse:
    delivery_id = open_token_read(token)
    if delivery_id is not None:
        services.delivery_open_record(delivery_id=delivery_id)
    # The pixel answers the same whatever the token: a probe learns nothing.
    return HttpResponse(PIXEL, content_type="image/gif")


@require_GET
@never_cache
def tracking_click(request: HttpRequest, token: str) -> HttpResponse:
    found = click_token_read(token)
    if found is None:
        raise Http404("Unknown link.")
    delivery_id, url = found
    services.delivery_click_record(delivery_id=delivery_id, url=url)
    return HttpResponseRedirect(url)


# RFC 8058: mail providers POST "List-Unsubscribe=One-Click" to the link with no cookie and no
# CSRF token; the signed token is what authorises the request.
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    delivery_id = unsubscribe_token_read(token)
    if delivery_id is None:
        raise Http404("Unknown link.")
    if request.method == "GET":
        # A GET never unsubscribes: link scanners and previews follow every link.
        return render(request, "campaigns/unsubscribe.html", {})
    found = services.delivery_unsubscribe(delivery_id=delivery_id, ip=client_ip(request))
    if request.POST.get("List-Unsubscribe") == "One-Click":
        return HttpResponse("Unsubscribed.\n", content_type="text/plain")
    return render(request, "campaigns/unsubscribe.html", {"done": found, "gone": not found})
