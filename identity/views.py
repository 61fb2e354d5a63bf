"""Identity pages: the review queue, merge history (with unmerge) and settings (with rescans).

Marketers and admins decide; compliance sees the same pages read-only (their POSTs are
refused); only admins change the settings.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from access.pii import pii_for
from access.roles import ADMIN, COMPLIANCE, MARKETER, has_role, roles_required
from identity import selectors, services
from identity.forms import DecisionForm, QueueFilterForm, SettingsForm
from identity.models import CandidateStatus, MatchCandidate, MergeRecord
from identity.tasks import identity_rescan_task

QUEUE_PAGE = 50


def _can_decide(request: HttpRequest) -> bool:
    return has_role(request.user, MARKETER, ADMIN)


def _htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


@roles_required(MARKETER, COMPLIANCE, ADMIN)
def review_queue(request: HttpRequest) -> HttpResponse:
    form = QueueFilterForm(request.GET)
    candidates: list[MatchCandidate] = []
    status = 200
    if form.is_valid():
        queryset = selectors.candidates_list(
            status=CandidateStatus.PENDING,
            min_probability=form.cleaned_data.get("min_probability"),
            max_probability=form.cleaned_data.get("max_probability"),
        )
        if form.cleaned_data.get("reason"):
            queryset = queryset.filter(reason=form.cleaned_data["reason"])
        pii = pii_for(request.user)
        candidates = list(queryset[:QUEUE_PAGE])
        for candidate in candidates:  # shown, never saved
            candidate.explanation = selectors.explanation_for(
                explanation=candidate.explanation, pii=pii
            )
    else:
        status = 400
    context = {
        "form": form,
        "candidates": candidates,
        "can_decide": _can_decide(request),
        "pending": selectors.candidates_pending_count(),
        "settings": selectors.match_settings(),
    }
    return render(request, "identity/queue.html", context, status=status)


@require_POST
@roles_required(MARKETER, ADMIN)
def decide(request: HttpRequest) -> HttpResponse:
    form = DecisionForm(request.POST, ids=request.POST.getlist("id"))
    if not form.is_valid():
        errors = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
        if _htmx(request):
            return HttpResponse(f'<div class="form-error">{errors}</div>', status=400)
        messages.error(request, errors)
        return redirect("identity:queue")
    candidates = list(MatchCandidate.objects.filter(pk__in=form.cleaned_data["ids"]))
    merge = form.cleaned_data["decision"] == "merge"
    done, problems = services.candidates_decide(
        candidates=candidates, merge=merge, actor=request.user
    )
    missing = len(form.cleaned_data["ids"]) - len(candidates)
    if missing:
        problems.append(f"{missing} suggestion(s) no longer exist")
    if _htmx(request) and len(candidates) == 1:
        candidate = candidates[0]
        candidate.refresh_from_db()
        pending = selectors.candidates_pending_count()
        return render(
            request,
            "identity/_decided.html",
            {"c": candidate, "problems": problems, "pending": pending},
        )
    verb = "merged" if merge else "marked as different people"
    if done:
        messages.success(request, f"{done} suggestion(s) {verb}.")
    for problem in problems:
        messages.warning(request, problem)
    return redirect(request.POST.get("next") or "identity:queue")


@roles_required(MARKETER, COMPLIANCE, ADMIN)
def merge_history(request: HttpRequest) -> HttpResponse:
    records = selectors.merge_history().order_by("-created_at", "-id")[:100]
    return render(
        request,
        "identity/merges.html",
        {"records": records, "can_decide": _can_decide(request)},
    )


@require_POST
@roles_required(MARKETER, ADMIN)
def unmerge(request: HttpRequest, merge_id: int) -> HttpResponse:
    record = MergeRecord.objects.filter(pk=merge_id).first()
    if record is None:
        raise Http404("No such merge")
    try:
        services.profile_unmerge(merge_record=record, actor=request.user)
    except ValueError as error:
        messages.error(request, f"Could not undo merge {merge_id}: {error}")
    else:
        messages.success(
            request, f"Profiles {record.survivor_id} and {record.duplicate_id} are apart again."
        )
    return redirect("identity:merges")


@roles_required(MARKETER, COMPLIANCE, ADMIN)
def settings_page(request: HttpRequest) -> HttpResponse:
    current = selectors.match_settings()
    is_admin = has_role(request.user, ADMIN)
    status = 200
    if request.method == "POST":
        if not is_admin:
            raise PermissionDenied
        form = SettingsForm(request.POST)
        if form.is_valid():
            try:
                services.match_settings_update(actor=request.user, **form.cleaned_data)
            except ValueError as error:
                detail = error.args[0] if isinstance(error.args[0], dict) else {"": str(error)}
                for where, message in detail.items():
                    field = where.split(".")[0]
                    form.add_error(field if field in form.fields else None, f"{where}: {message}")
            else:
                messages.success(request, "Settings saved.")
                return redirect("identity:settings")
        status = 400
    else:
        form = SettingsForm(initial=SettingsForm.initial_from(current))
    if not is_admin:
        for field in form.fields.values():
            field.disabled = True
    context = {
        "form": form,
        "is_admin": is_admin,
        "can_rescan": _can_decide(request),
        "current": current,
        "jobs": selectors.rescan_jobs()[:5],
    }
    return render(request, "identity/settings.html", context, status=status)


@require_POST
@roles_required(MARKETER, ADMIN)
def rescan_start(request: HttpRequest) -> HttpResponse:
    full = request.POST.get("full") == "1"
    try:
        job = services.rescan_job_create(full=full, actor=request.user)
    except services.RescanBusyError as error:
        messages.warning(request, str(error).capitalize() + ".")
    else:
        transaction.on_commit(lambda: identity_rescan_task.delay(job.pk))
        messages.success(request, f"{'Full' if full else 'Incremental'} rescan queued.")
    return redirect("identity:settings")


@roles_required(MARKETER, COMPLIANCE, ADMIN)
def rescan_progress(request: HttpRequest) -> HttpResponse:
    return render(request, "identity/_jobs.html", {"jobs": selectors.rescan_jobs()[:5]})
