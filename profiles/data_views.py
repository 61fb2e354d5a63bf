"""The Data pages: sources and their write keys, tracking plans, and the quarantine.

Marketers and admins see them; only admins change anything (create a source, rotate or
disable a key, edit a plan). A write key is shown once, on the page that answers the POST
that made it, and never stored in clear.
"""

import json

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from access import services as access_services
from access.models import Source
from access.pii import pii_for
from access.roles import ADMIN, MARKETER, has_role, roles_required
from profiles import selectors
from profiles.data_forms import (
    PLAN_EXAMPLE,
    QuarantineFilterForm,
    SourceCreateForm,
    TrackingPlanForm,
)
from profiles.ingestion import TrackingPlanInvalidError, tracking_plan_save
from profiles.models import TrackingPlan

VIEW_ROLES = (MARKETER, ADMIN)
MANAGE_ROLES = (ADMIN,)
QUARANTINE_PAGE_SIZE = 50


def _key_issued(request: HttpRequest, source: Source, key: str, *, rotated: bool) -> HttpResponse:
    response = render(
        request,
        "profiles/data/key_issued.html",
        {"source": source, "write_key": key, "rotated": rotated},
    )
    # The key is in this page only: keep it out of every cache and the back button's copy.
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@roles_required(*VIEW_ROLES)
def sources(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "profiles/data/sources.html",
        {"sources": selectors.sources_overview(), "form": SourceCreateForm()},
    )


@require_POST
@roles_required(*MANAGE_ROLES)
def source_create(request: HttpRequest) -> HttpResponse:
    form = SourceCreateForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "profiles/data/sources.html",
            {"sources": selectors.sources_overview(), "form": form},
        )
    issued = access_services.source_create(name=form.cleaned_data["name"], actor=request.user)
    return _key_issued(request, issued.record, issued.key, rotated=False)


def _source_page(
    request: HttpRequest, source_id: int, plan_form: TrackingPlanForm | None = None
) -> HttpResponse:
    source = selectors.source_overview(source_id=source_id)
    if source is None:
        raise Http404("No such source.")
    plan = getattr(source, "plan", None)
    if plan_form is None:
        plan_form = TrackingPlanForm(
            initial={
                "mode": plan.mode if plan else TrackingPlan.Mode.FLAG,
                "event_schemas": json.dumps(plan.event_schemas, indent=2)
                if plan and plan.event_schemas
                else "",
            }
        )
    if not has_role(request.user, *MANAGE_ROLES):
        for field in plan_form.fields.values():
            field.disabled = True
    return render(
        request,
        "profiles/data/source_detail.html",
        {
            "source": source,
            "plan": plan,
            "plan_form": plan_form,
            "plan_example": PLAN_EXAMPLE,
            "recent_quarantine": selectors.quarantine_list(source=source)[:5],
        },
    )


@require_GET
@roles_required(*VIEW_ROLES)
def source_detail(request: HttpRequest, source_id: int) -> HttpResponse:
    return _source_page(request, source_id)


@require_POST
@roles_required(*MANAGE_ROLES)
def source_plan_save(request: HttpRequest, source_id: int) -> HttpResponse:
    source = get_object_or_404(Source, pk=source_id)
    form = TrackingPlanForm(request.POST)
    if not form.is_valid():
        return _source_page(request, source_id, plan_form=form)
    try:
        tracking_plan_save(
            source=source,
            mode=form.cleaned_data["mode"],
            event_schemas=form.cleaned_data["event_schemas"],
        )
    except TrackingPlanInvalidError as error:
        form.add_error("event_schemas", str(error))
        return _source_page(request, source_id, plan_form=form)
    messages.success(request, f"Tracking plan of {source.name} saved.")
    return redirect("data:source", source_id=source.pk)


@require_POST
@roles_required(*MANAGE_ROLES)
def source_rotate_key(request: HttpRequest, source_id: int) -> HttpResponse:
    source = get_object_or_404(Source, pk=source_id)
    issued = access_services.source_rotate_write_key(source=source, actor=request.user)
    return _key_issued(request, source, issued.key, rotated=True)


@require_POST
@roles_required(*MANAGE_ROLES)
def source_set_enabled(request: HttpRequest, source_id: int) -> HttpResponse:
    source = get_object_or_404(Source, pk=source_id)
    enabled = request.POST.get("enabled") == "1"
    access_services.source_set_enabled(source=source, enabled=enabled, actor=request.user)
    messages.success(
        request,
        f"{source.name} {'enabled' if enabled else 'disabled'}: its write key "
        f"{'opens' if enabled else 'no longer opens'} ingestion.",
    )
    return redirect("data:source", source_id=source.pk)


@require_GET
@roles_required(*VIEW_ROLES)
def quarantine(request: HttpRequest) -> HttpResponse:
    form = QuarantineFilterForm(request.GET or None)
    chosen = form.cleaned_data["source"] if form.is_valid() else None
    paginator = Paginator(selectors.quarantine_list(source=chosen), QUARANTINE_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    pii = pii_for(request.user)
    for item in page:
        item.message_json = json.dumps(pii.document(item.message), indent=2, ensure_ascii=False)
        item.errors = pii.document(item.errors)
    return render(
        request,
        "profiles/data/quarantine.html",
        {"form": form, "page": page, "chosen": chosen},
    )
