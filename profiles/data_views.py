"""The Data pages: sources and their write keys, tracking plans, bulk imports, the quarantine.

Marketers and admins see them; only admins change sources and plans (create a source, rotate
or disable a key, edit a plan); marketers and admins import files. A write key is shown once,
on the page that answers the POST that made it, and never stored in clear.
"""

import json
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from access import services as access_services
from access.models import Source
from access.pii import pii_for
from access.roles import ADMIN, MARKETER, has_role, roles_required
from access.row_files import ImportFileError
from profiles import selectors, services
from profiles.data_forms import (
    PLAN_EXAMPLE,
    CurrencyRateForm,
    DataImportForm,
    QuarantinedMessageForm,
    QuarantineFilterForm,
    SourceCreateForm,
    TrackingPlanForm,
)
from profiles.ingestion import TrackingPlanInvalidError, tracking_plan_save
from profiles.models import DataImport, QuarantinedMessage, TrackingPlan
from profiles.tasks import data_import_task

VIEW_ROLES = (MARKETER, ADMIN)
MANAGE_ROLES = (ADMIN,)
IMPORT_ROLES = (MARKETER, ADMIN)
QUARANTINE_PAGE_SIZE = 50


def _key_issued(request: HttpRequest, source: Source, key: str, *, rotated: bool) -> HttpResponse:
    response = render(
        request,
        "profiles/data/key_issued.html",
        {
            "source": source,
            "write_key": key,
            "rotated": rotated,
            "server_url": settings.SITE_URL.rstrip("/"),
        },
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
    inferred = plan_form is None and request.GET.get("infer") == "1"
    if inferred:
        plan_form = TrackingPlanForm(
            initial={
                "mode": plan.mode if plan else TrackingPlan.Mode.FLAG,
                "event_schemas": json.dumps(
                    selectors.tracking_plan_inferred(source=source), indent=2
                ),
            }
        )
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
            "plan_inferred": inferred,
            "recent_quarantine": selectors.quarantine_list(source=source)[:5],
            "latest_events": _latest_events(request, source),
            "server_url": settings.SITE_URL.rstrip("/"),
        },
    )


@require_GET
@roles_required(*VIEW_ROLES)
def source_live(request: HttpRequest, source_id: int) -> HttpResponse:
    """The live view's table alone, which the source page polls."""
    source = get_object_or_404(Source, pk=source_id)
    return render(
        request,
        "profiles/data/_live_events.html",
        {"source": source, "latest_events": _latest_events(request, source)},
    )


def _latest_events(request: HttpRequest, source: Source) -> list[Any]:
    """The live view's events, their properties as this viewer may see them (access.pii)."""
    pii = pii_for(request.user)
    events = list(selectors.source_latest_events(source=source))
    for event in events:
        event.properties_shown = pii.document(event.properties)
    return events


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
            actor=request.user,
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
    chosen, event = _quarantine_filter(form)
    paginator = Paginator(
        selectors.quarantine_list(source=chosen, event=event), QUARANTINE_PAGE_SIZE
    )
    page = paginator.get_page(request.GET.get("page"))
    pii = pii_for(request.user)
    for item in page:
        item.message_json = json.dumps(pii.document(item.message), indent=2, ensure_ascii=False)
        item.errors = pii.document(item.errors)
    return render(
        request,
        "profiles/data/quarantine.html",
        {
            "form": form,
            "page": page,
            "chosen": chosen,
            "event": event,
            "filter_query": request.GET.urlencode() if form.is_valid() else "",
        },
    )


def _quarantine_filter(form: QuarantineFilterForm) -> tuple[Source | None, str]:
    if not form.is_valid():
        return None, ""
    return form.cleaned_data["source"], form.cleaned_data["event"].strip()


def _replay_message(request: HttpRequest, result: services.ReplayResult) -> None:
    text = (
        f"Replayed: {result.stored} stored, {result.duplicates} already stored, "
        f"{result.dropped} dropped (suppressed or without consent), "
        f"{result.still_failing} still failing."
    )
    (messages.warning if result.still_failing else messages.success)(request, text)


@require_POST
@roles_required(*MANAGE_ROLES)
def quarantine_bulk(request: HttpRequest) -> HttpResponse:
    """Replay or discard every quarantined message matching the filter posted with it."""
    form = QuarantineFilterForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The filter is not valid: nothing was replayed or discarded.")
        return redirect("data:quarantine")
    chosen, event = _quarantine_filter(form)
    items = selectors.quarantine_list(source=chosen, event=event)
    scope = {"source": chosen.pk if chosen else None, "event": event or None}
    if request.POST.get("action") == "discard":
        deleted = services.quarantine_discard(items=items, actor=request.user, scope=scope)
        messages.success(request, f"{deleted} quarantined messages discarded.")
    else:
        _replay_message(
            request, services.quarantine_replay(items=items, actor=request.user, scope=scope)
        )
    query = {k: v for k, v in (("source", chosen.pk if chosen else ""), ("event", event)) if v}
    return redirect(
        f"{reverse('data:quarantine')}?{urlencode(query)}" if query else "data:quarantine"
    )


def _quarantined_page(
    request: HttpRequest, item: QuarantinedMessage, form: QuarantinedMessageForm | None = None
) -> HttpResponse:
    pii = pii_for(request.user)
    # Only someone who may see the message whole may edit it: a masked copy replayed would
    # store the masks.
    editable = has_role(request.user, *MANAGE_ROLES) and pii.visible
    if form is None:
        shown = item.message if editable else pii.document(item.message)
        form = QuarantinedMessageForm(
            initial={"message": json.dumps(shown, indent=2, ensure_ascii=False)}
        )
    if not editable:
        form.fields["message"].disabled = True
    item.errors = pii.document(item.errors)
    context = {"item": item, "form": form, "editable": editable}
    return render(
        request, "profiles/data/quarantined.html", context, status=400 if form.errors else 200
    )


@require_GET
@roles_required(*VIEW_ROLES)
def quarantined(request: HttpRequest, item_id: int) -> HttpResponse:
    item = get_object_or_404(QuarantinedMessage.objects.select_related("source"), pk=item_id)
    return _quarantined_page(request, item)


@require_POST
@roles_required(*MANAGE_ROLES)
def quarantined_act(request: HttpRequest, item_id: int) -> HttpResponse:
    """Replay one quarantined message as it is, or as edited in the form, or discard it."""
    item = get_object_or_404(QuarantinedMessage.objects.select_related("source"), pk=item_id)
    if request.POST.get("action") == "discard":
        services.quarantine_discard(items=item, actor=request.user, scope={"id": item.pk})
        messages.success(request, "The quarantined message was discarded.")
        return redirect("data:quarantine")
    form = QuarantinedMessageForm(request.POST)
    if not form.is_valid():
        return _quarantined_page(request, item, form)
    if form.cleaned_data["message"] != item.message:
        result = services.quarantine_message_edit(
            item=item, message=form.cleaned_data["message"], actor=request.user
        )
    else:
        result = services.quarantine_replay(
            items=QuarantinedMessage.objects.filter(pk=item.pk),
            actor=request.user,
            scope={"id": item.pk},
        )
    _replay_message(request, result)
    if result.still_failing:
        return redirect("data:quarantined", item_id=item.pk)
    return redirect("data:quarantine")


def _imports_page(request: HttpRequest, form: DataImportForm, status: int = 200) -> HttpResponse:
    return render(
        request,
        "profiles/data/imports.html",
        {"form": form, "imports": selectors.data_imports_recent()},
        status=status,
    )


@require_GET
@roles_required(*IMPORT_ROLES)
def imports(request: HttpRequest) -> HttpResponse:
    return _imports_page(request, DataImportForm())


@require_POST
@roles_required(*IMPORT_ROLES)
def import_create(request: HttpRequest) -> HttpResponse:
    form = DataImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _imports_page(request, form, status=400)
    upload = form.cleaned_data["file"]
    try:
        job = services.data_import_create(
            source=form.cleaned_data["source"],
            kind=form.cleaned_data["kind"],
            upload=upload,
            file_name=upload.name,
            actor=request.user,
        )
    except ImportFileError as error:
        form.add_error("file", str(error))
        return _imports_page(request, form, status=400)
    transaction.on_commit(lambda: data_import_task.delay(job.pk))
    return redirect("data:import", job_id=job.pk)


def _import_or_404(job_id: int) -> DataImport:
    job = selectors.data_import_get(job_id=job_id)
    if job is None:
        raise Http404("No such import.")
    return job


@require_GET
@roles_required(*IMPORT_ROLES)
def import_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    return render(request, "profiles/data/import_detail.html", {"job": _import_or_404(job_id)})


@require_GET
@roles_required(*IMPORT_ROLES)
def import_progress(request: HttpRequest, job_id: int) -> HttpResponse:
    """The progress panel alone, which the detail page polls until the import is finished."""
    return render(request, "profiles/data/_import_progress.html", {"job": _import_or_404(job_id)})


def _currencies_page(
    request: HttpRequest, form: CurrencyRateForm, *, status: int = 200
) -> HttpResponse:
    return render(
        request,
        "profiles/data/currencies.html",
        {
            "rates": selectors.currency_rates_list(),
            "unconverted": selectors.unconverted_revenue(),
            "form": form,
            "can_manage": has_role(request.user, *MANAGE_ROLES),
        },
        status=status,
    )


@require_GET
@roles_required(*VIEW_ROLES)
def currencies(request: HttpRequest) -> HttpResponse:
    """The workspace currency, the rates that convert orders into it (admins set them), and
    what waits for a rate."""
    return _currencies_page(request, CurrencyRateForm())


@require_POST
@roles_required(*MANAGE_ROLES)
def currency_set(request: HttpRequest) -> HttpResponse:
    form = CurrencyRateForm(request.POST)
    if not form.is_valid():
        return _currencies_page(request, form, status=400)
    code, rate = form.cleaned_data["currency"], form.cleaned_data["rate"]
    services.currency_rate_set(currency=code, rate=rate, actor=request.user)
    messages.success(
        request,
        f"1 {code} = {rate} {services.workspace_currency()} for the orders processed from now on.",
    )
    return redirect("data:currencies")


@require_POST
@roles_required(*MANAGE_ROLES)
def currency_delete(request: HttpRequest, code: str) -> HttpResponse:
    services.currency_rate_delete(currency=code, actor=request.user)
    messages.success(request, f"The rate for {code[:3]} is gone: new orders in it are kept apart.")
    return redirect("data:currencies")
