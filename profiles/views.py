"""Profile pages: the explorer (search) and the 360° view of one profile."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from access.pii import pii_for
from access.roles import ADMIN, COMPLIANCE, MARKETER, roles_required
from profiles import selectors, services
from profiles.forms import ProfileSearchForm
from profiles.models import Profile


def _wants_partial(request: HttpRequest) -> bool:
    # htmx asks for a fragment, except when restoring history (then it needs the whole page).
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


@roles_required(MARKETER, COMPLIANCE, ADMIN)
def profile_list(request: HttpRequest) -> HttpResponse:
    form = ProfileSearchForm(request.GET)
    page = None
    too_slow = False
    status = 200
    if form.is_valid():
        try:
            page = selectors.profile_search_page(
                query=form.cleaned_data["q"],
                after=form.cleaned_data["after"],
                before=form.cleaned_data["before"],
                filters=form.filters(),
                sort=form.cleaned_data["sort"] or "newest",
                page_number=form.cleaned_data["page"] or 1,
            )
        except selectors.SearchTooSlowError:
            too_slow = True
    else:
        status = 400
    template = "profiles/list.html#results" if _wants_partial(request) else "profiles/list.html"
    # The query string of the search and filters, for the pager's links to carry.
    kept = request.GET.copy()
    for name in ("after", "before", "page"):
        kept.pop(name, None)
    context = {
        "form": form,
        "page": page,
        "too_slow": too_slow,
        "query": form.data.get("q", ""),
        "kept": kept.urlencode(),
    }
    return render(request, template, context, status=status)


def _live_profile(profile_id: int) -> tuple[Profile, bool]:
    """The profile to show for an id, and whether it is another one (the id was merged away)."""
    profile = selectors.profile_get(profile_id=profile_id)
    if profile is None:
        raise Http404("No such profile")
    if profile.merged_into_id is None:
        return profile, False
    return selectors.profile_survivor(profile=profile), True


@roles_required(MARKETER, COMPLIANCE, ADMIN)
def profile_detail(request: HttpRequest, profile_id: int) -> HttpResponse:
    profile, moved = _live_profile(profile_id)
    if moved:
        return redirect("profiles:detail", profile_id=profile.pk)
    cursor = request.GET.get("cursor") or None
    try:
        timeline = selectors.profile_timeline(profile=profile, cursor=cursor)
    except ValueError as exc:
        context = {"profile": profile, "cursor_error": f"cursor: {exc}"}
        return render(request, "profiles/detail.html", context, status=400)
    context = {
        "profile": profile,
        "features": selectors.profile_feature_rows(profile=profile),
        "context_rows": selectors.profile_context_rows(
            context=pii_for(request.user).document(profile.context)
        ),
        "timeline": timeline,
        "older_page": cursor is not None,
    }
    services.profile_access_record(request=request, profile=profile, action="view")
    return render(request, "profiles/detail.html", context)


@roles_required(MARKETER, COMPLIANCE, ADMIN)
def profile_timeline(request: HttpRequest, profile_id: int) -> HttpResponse:
    """The next page of the timeline as list items, for the "Load older events" button."""
    profile, moved = _live_profile(profile_id)
    if moved:
        target = reverse("profiles:timeline", args=[profile.pk])
        return redirect(f"{target}?{request.GET.urlencode()}")
    try:
        timeline = selectors.profile_timeline(
            profile=profile, cursor=request.GET.get("cursor") or None
        )
    except ValueError as exc:
        return HttpResponse(f"cursor: {exc}", status=400, content_type="text/plain")
    services.profile_access_record(request=request, profile=profile, action="view")
    return render(
        request, "profiles/detail.html#timeline-items", {"profile": profile, "timeline": timeline}
    )
