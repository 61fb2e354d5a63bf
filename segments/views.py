"""Pages: segment list, builder (live preview via htmx), segment page (size chart, members,
history, "why is this profile in/out"), and the clustering/propensity models page."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from access.roles import ADMIN, COMPLIANCE, MARKETER, has_role, roles_required
from profiles.models import Profile
from segments import conditions, selectors, services
from segments.forms import DefinitionErrors, SegmentForm, parse_definition
from segments.models import ModelRun, Segment

READ = (MARKETER, COMPLIANCE, ADMIN)
BUILD = (MARKETER, ADMIN)


@roles_required(*READ)
def segment_list(request: HttpRequest) -> HttpResponse:
    archived = request.GET.get("archived") == "1"
    segments = list(selectors.segment_list(include_archived=archived))
    rows = [{"segment": s, "words": conditions.describe(s.definition)} for s in segments]
    return render(
        request,
        "segments/list.html",
        {"rows": rows, "archived": archived, "can_build": has_role(request.user, *BUILD)},
    )


def _builder(request: HttpRequest, segment: Segment | None) -> HttpResponse:
    if request.method == "POST":
        form = SegmentForm(request.POST, segment=segment)
        if form.is_valid():
            data = form.cleaned_data
            if segment is None:
                segment = services.segment_create(
                    name=data["name"],
                    definition=data["definition"],
                    description=data["description"],
                    webhook_url=data["webhook_url"],
                    actor=request.user,
                )
                messages.success(
                    request, f"Segment “{segment.name}” saved; its members are being computed."
                )
            else:
                services.segment_update(
                    segment=segment,
                    name=data["name"],
                    definition=data["definition"],
                    description=data["description"],
                    webhook_url=data["webhook_url"],
                    actor=request.user,
                )
                messages.success(request, f"Segment “{segment.name}” updated.")
            return redirect("segments:detail", segment.pk)
        definition_text = request.POST.get("definition", "")
    else:
        starter = segment.definition if segment else selectors.starter_definition()
        initial = {"definition": json.dumps(starter)}
        if segment is not None:
            initial.update(
                name=segment.name, description=segment.description, webhook_url=segment.webhook_url
            )
        form = SegmentForm(initial=initial, segment=segment)
        definition_text = initial["definition"]
    return render(
        request,
        "segments/builder.html",
        {
            "form": form,
            "segment": segment,
            "definition_text": definition_text,
            "vocabulary": selectors.builder_vocabulary(exclude=segment.pk if segment else None),
        },
    )


@roles_required(*BUILD)
def segment_new(request: HttpRequest) -> HttpResponse:
    return _builder(request, None)


@roles_required(*BUILD)
def segment_edit(request: HttpRequest, segment_id: int) -> HttpResponse:
    return _builder(request, get_object_or_404(Segment, pk=segment_id))


@roles_required(*BUILD)
@require_POST
def segment_preview(request: HttpRequest) -> HttpResponse:
    """htmx partial: live count, sample and plain-words description of an unsaved definition."""
    context: dict[str, Any] = {}
    try:
        definition = parse_definition(request.POST.get("definition", ""))
    except DefinitionErrors as error:
        context["errors"] = error.pointers
    else:
        preview = selectors.definition_preview(definition, sample_size=8)
        context.update(
            words=conditions.describe(definition), count=preview.count, sample=preview.sample
        )
    return render(request, "segments/_preview.html", context)


@roles_required(*BUILD)
@require_GET
def event_properties(request: HttpRequest) -> JsonResponse:
    event = request.GET.get("event", "")[:255]
    return JsonResponse(selectors.observed_event_properties(event=event) if event else {})


@roles_required(*READ)
def segment_detail(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = get_object_or_404(Segment, pk=segment_id)
    members = Paginator(selectors.segment_members(segment=segment).order_by("-id"), 25)
    page = members.get_page(request.GET.get("page"))
    snapshots = selectors.segment_snapshots(segment=segment)
    size = selectors.segment_size(segment=segment)
    # The live size closes the series, so a new segment's chart is a line, not a dot.
    chart = {
        "labels": [s.at.strftime("%Y-%m-%d %H:%M") for s in snapshots] + ["now"],
        "datasets": [{"label": "Members", "data": [s.size for s in snapshots] + [size]}],
    }
    return render(
        request,
        "segments/detail.html",
        {
            "segment": segment,
            "words": conditions.describe(segment.definition),
            "definition_json": json.dumps(segment.definition, indent=2),
            "size": size,
            "page": page,
            "history": selectors.segment_history(segment=segment, limit=20),
            "chart": chart,
            "can_build": has_role(request.user, *BUILD),
        },
    )


@roles_required(*READ)
@require_GET
def segment_explain(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = get_object_or_404(Segment, pk=segment_id)
    raw = request.GET.get("profile", "").strip().lstrip("#")
    context: dict[str, Any] = {"segment": segment}
    if not raw.isdigit():
        context["error"] = "Enter a profile id (a number)."
    else:
        profile = Profile.objects.filter(pk=int(raw)).first()
        if profile is None:
            context["error"] = f"No profile #{raw}."
        else:
            context.update(
                profile=profile,
                explained=selectors.segment_explain(
                    segment=segment, profile=profile, viewer=request.user
                ),
            )
    return render(request, "segments/_explain.html", context)


@roles_required(*BUILD)
@require_POST
def segment_action(request: HttpRequest, segment_id: int, action: str) -> HttpResponse:
    segment = get_object_or_404(Segment, pk=segment_id)
    if action == "refresh":
        result = services.segment_refresh(segment=segment)
        messages.success(
            request,
            f"Refreshed: {result.size} members "
            f"({len(result.entered)} entered, {len(result.exited)} left).",
        )
    elif action == "duplicate":
        copy = services.segment_duplicate(segment=segment, actor=request.user)
        messages.success(request, f"Duplicated as “{copy.name}”.")
        return redirect("segments:edit", copy.pk)
    elif action == "archive":
        services.segment_archive(segment=segment, actor=request.user)
        messages.success(request, f"Archived “{segment.name}”.")
    elif action == "restore":
        services.segment_unarchive(segment=segment, actor=request.user)
        messages.success(request, f"Restored “{segment.name}”.")
    else:
        raise Http404("unknown action")
    return redirect("segments:detail", segment.pk)


@roles_required(*READ)
def model_list(request: HttpRequest) -> HttpResponse:
    return render(request, "segments/models.html", _models_context(request))


def _models_context(request: HttpRequest) -> dict[str, Any]:
    runs = list(selectors.model_runs(limit=30))
    active = {kind: selectors.active_model(kind=kind) for kind in ModelRun.Kind.values}
    return {
        "runs": runs,
        "drift": selectors.propensity_drift(),
        "serving": [(kind, label, active[kind]) for kind, label in ModelRun.Kind.choices],
        "cluster_run": active[ModelRun.Kind.CLUSTER],
        "busy": any(r.status in ("queued", "running") for r in runs),
        "can_build": has_role(request.user, *BUILD),
    }


@roles_required(*BUILD)
@require_POST
def model_train(request: HttpRequest) -> HttpResponse:
    kind = request.POST.get("kind", "")
    if kind not in ModelRun.Kind.values:
        return HttpResponse("unknown model kind", status=400)
    services.model_train_request(kind=kind, actor=request.user)
    if request.headers.get("HX-Request"):
        return render(request, "segments/_runs.html", _models_context(request))
    messages.success(request, "Training queued.")
    return redirect("segments:models")


@roles_required(*BUILD)
@require_POST
def model_rollback(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(ModelRun, pk=run_id)
    try:
        services.model_rollback(run=run, actor=request.user)
    except services.RollbackRefused as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Run #{run.pk} serves again.")
    return redirect("segments:models")


@roles_required(*READ)
@require_GET
def profile_panel(request: HttpRequest, profile_id: int) -> HttpResponse:
    """htmx fragment for the profile page: segments, model scores and consent state."""
    profile = get_object_or_404(Profile, pk=profile_id)
    return render(
        request,
        "segments/_profile_panel.html",
        {
            "profile": profile,
            "audience": selectors.profile_audience(profile=profile),
            "can_see_consent_history": has_role(request.user, COMPLIANCE, ADMIN),
        },
    )


@roles_required(*BUILD)
@require_POST
def cluster_name(request: HttpRequest, run_id: int, cluster: int) -> HttpResponse:
    run = get_object_or_404(ModelRun, pk=run_id, kind=ModelRun.Kind.CLUSTER)
    try:
        services.cluster_rename(run=run, cluster=cluster, name=request.POST.get("name", ""))
    except ValueError as error:
        return HttpResponse(str(error), status=400, content_type="text/plain")
    messages.success(request, f"Cluster {cluster} renamed.")
    return redirect("segments:models")


@roles_required(*READ)
@require_GET
def model_progress(request: HttpRequest) -> HttpResponse:
    return render(request, "segments/_runs.html", _models_context(request))
