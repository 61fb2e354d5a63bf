"""Compliance console: the request queue, request detail (verify, assign, comment, process,
export, verification result), consent records of a profile, the audit log. Compliance and
admin only; every view of personal data writes an audit row."""

from datetime import datetime, time, timedelta

from django.apps import apps
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from access.auth import client_ip
from access.csv_export import csv_response
from access.pii import pii_for
from access.roles import ADMIN, COMPLIANCE, roles_required
from access.selectors import audit_actions, audit_chain_status, audit_log_filtered
from access.services import audit_record_request
from consent import selectors, services
from consent.forms import (
    AssignForm,
    AuditFilterForm,
    CommentForm,
    ConsentChangeForm,
    PrivacyRequestForm,
    PurposeForm,
    RetentionPolicyForm,
    VerifyForm,
)
from consent.models import (
    ConsentSource,
    PrivacyRequest,
    Purpose,
    RequestStatus,
    RetentionPolicy,
    Suppression,
)
from consent.tasks import privacy_request_process_task
from consent.views_common import export_response
from profiles.models import Profile

PRIVACY_ROLES = (COMPLIANCE, ADMIN)
STATUS_FILTERS = [("open", "Open"), *RequestStatus.choices, ("", "All")]


@roles_required(*PRIVACY_ROLES)
def queue(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "open")
    if status not in {value for value, _ in STATUS_FILTERS}:
        status = "open"
    form = PrivacyRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        created = services.privacy_request_create(
            regulation_type=form.cleaned_data["regulation_type"],
            regulation=form.cleaned_data["regulation"],
            subject={form.cleaned_data["subject_kind"]: form.cleaned_data["subject_value"]},
            changes=form.cleaned_data.get("changes"),
            submitted_by=request.user,
            ip=client_ip(request),
        )
        messages.success(request, f"Request #{created.pk} created; verify the identity to run it.")
        return redirect("privacy:request", request_id=created.pk)
    page = Paginator(selectors.privacy_requests_queue(status=status or None), 50).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "consent/queue.html",
        {
            "page": page,
            "status": status,
            "status_filters": STATUS_FILTERS,
            "form": form,
            "now": timezone.now(),
            "soon": timezone.now() + timedelta(days=7),
        },
    )


def _detail_context(request: HttpRequest, privacy_request: PrivacyRequest) -> dict:
    return {
        "req": privacy_request,
        "comments": privacy_request.comments.select_related("author"),
        "verify_form": VerifyForm(),
        "comment_form": CommentForm(),
        "assign_form": AssignForm(initial={"assignee": privacy_request.assigned_to_id}),
        "polling": privacy_request.status in (RequestStatus.INITIALIZED, RequestStatus.RUNNING),
        "removed": sorted(
            (_rows_in_words(label), count)
            for label, count in (privacy_request.result.get("removed") or {}).items()
        ),
        "finished": privacy_request.status
        in (RequestStatus.FINISHED, RequestStatus.FAILED, RequestStatus.CANCELLED),
    }


def _rows_in_words(model_label: str) -> str:
    """'identity.MatchKey' -> 'match keys': what an erasure removed, in words, not model names."""
    try:
        return str(apps.get_model(model_label)._meta.verbose_name_plural)
    except (LookupError, ValueError):
        return model_label


@roles_required(*PRIVACY_ROLES)
def request_detail(request: HttpRequest, request_id: int) -> HttpResponse:
    privacy_request = get_object_or_404(PrivacyRequest, pk=request_id)
    if request.headers.get("HX-Request"):
        return render(
            request,
            "consent/request_detail.html#status",
            _detail_context(request, privacy_request),
        )
    if privacy_request.subject:
        audit_record_request(
            request=request,
            action="view",
            resource="privacy",
            resource_id=privacy_request.pk,
        )
    return render(request, "consent/request_detail.html", _detail_context(request, privacy_request))


def _act(request: HttpRequest, request_id: int, action) -> HttpResponse:
    privacy_request = get_object_or_404(PrivacyRequest, pk=request_id)
    try:
        action(privacy_request)
    except services.PrivacyRequestError as exc:
        messages.error(request, str(exc))
    return redirect("privacy:request", request_id=privacy_request.pk)


@require_POST
@roles_required(*PRIVACY_ROLES)
def request_verify(request: HttpRequest, request_id: int) -> HttpResponse:
    form = VerifyForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say how the identity was verified before verifying.")
        return redirect("privacy:request", request_id=request_id)

    def verify(privacy_request: PrivacyRequest) -> None:
        services.privacy_request_verify(
            request=privacy_request,
            actor=request.user,
            note=form.cleaned_data["note"],
            ip=client_ip(request),
        )
        privacy_request_process_task.delay_on_commit(privacy_request.pk)

    return _act(request, request_id, verify)


@require_POST
@roles_required(*PRIVACY_ROLES)
def request_process(request: HttpRequest, request_id: int) -> HttpResponse:
    def run(privacy_request: PrivacyRequest) -> None:
        if privacy_request.status != RequestStatus.INITIALIZED:
            raise services.PrivacyRequestError(f"a {privacy_request.status} request cannot run")
        services.privacy_request_process(request=privacy_request, actor=request.user)

    return _act(request, request_id, run)


@require_POST
@roles_required(*PRIVACY_ROLES)
def request_cancel(request: HttpRequest, request_id: int) -> HttpResponse:
    return _act(
        request,
        request_id,
        lambda r: services.privacy_request_cancel(
            request=r, actor=request.user, ip=client_ip(request)
        ),
    )


@require_POST
@roles_required(*PRIVACY_ROLES)
def request_assign(request: HttpRequest, request_id: int) -> HttpResponse:
    form = AssignForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose someone from the compliance team.")
        return redirect("privacy:request", request_id=request_id)
    return _act(
        request,
        request_id,
        lambda r: services.privacy_request_assign(
            request=r,
            assignee=form.cleaned_data["assignee"],
            actor=request.user,
            ip=client_ip(request),
        ),
    )


@require_POST
@roles_required(*PRIVACY_ROLES)
def request_comment(request: HttpRequest, request_id: int) -> HttpResponse:
    form = CommentForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A comment needs some text.")
        return redirect("privacy:request", request_id=request_id)
    return _act(
        request,
        request_id,
        lambda r: services.privacy_request_comment_add(
            request=r, author=request.user, body=form.cleaned_data["body"], ip=client_ip(request)
        ),
    )


@roles_required(*PRIVACY_ROLES)
def request_export(request: HttpRequest, request_id: int) -> HttpResponse:
    privacy_request = get_object_or_404(PrivacyRequest, pk=request_id)
    if not privacy_request.export_file:
        messages.error(request, "This request has no export.")
        return redirect("privacy:request", request_id=request_id)
    return export_response(request, privacy_request)


@roles_required(*PRIVACY_ROLES)
def profile_consents(request: HttpRequest, profile_id: int) -> HttpResponse:
    profile = get_object_or_404(Profile, pk=profile_id)
    form = ConsentChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.consent_record(
            profile=profile,
            purpose=form.cleaned_data["purpose"].code,
            granted=form.cleaned_data["granted"],
            source=ConsentSource.UI,
            policy_version=form.cleaned_data["policy_version"],
            evidence={"user_id": request.user.pk},
            actor=request.user,
            ip=client_ip(request),
        )
        messages.success(request, "Consent recorded.")
        return redirect("privacy:profile_consents", profile_id=profile.pk)
    audit_record_request(
        request=request,
        action="view",
        resource="consents",
        profile_id=profile.pk,
    )
    return render(
        request,
        "consent/profile_consents.html",
        {
            "profile": profile,
            "state": selectors.consent_current_state(profile=profile),
            "records": selectors.consent_records_of_profile(profile=profile)[:200],
            "form": form,
            "suppressions": Suppression.objects.filter(profile_id=profile.pk).count(),
        },
    )


def _audit_rows(form: AuditFilterForm):
    data = form.cleaned_data if form.is_valid() else {}

    def day(value, offset=0):
        if not value:
            return None
        return timezone.make_aware(datetime.combine(value + timedelta(days=offset), time.min))

    return audit_log_filtered(
        include_system=bool(data.get("include_system")),
        actor=data.get("actor") or "",
        action=data.get("action") or "",
        resource=data.get("resource") or "",
        profile_id=data.get("profile_id"),
        since=day(data.get("since")),
        until=day(data.get("until"), 1),
    )


@roles_required(*PRIVACY_ROLES)
def audit_log(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None, actions=audit_actions())
    rows = _audit_rows(form)
    if request.GET.get("format") == "csv":
        audit_record_request(
            request=request,
            action="export",
            resource="audit",
        )
        pii = pii_for(request.user)
        return csv_response(
            filename="audit-log.csv",
            header=["time", "actor", "action", "resource", "resource_id", "profile_id", "ip"],
            rows=(
                [
                    row.created_at.isoformat(),
                    row.actor_label,
                    row.action,
                    row.resource,
                    row.resource_id,
                    row.profile_id or "",
                    pii.value(row.ip or "", kind="ip"),
                ]
                for row in rows.iterator(chunk_size=2000)
            ),
        )
    page = Paginator(rows, 100).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "consent/audit.html",
        {"form": form, "page": page, "query": query.urlencode(), "chain": audit_chain_status()},
    )


# --- Consent purposes and retention policies -----------------------------------------------------

POLICY_KINDS = {
    "purposes": (Purpose, PurposeForm, services.purpose_save, "purpose"),
    "retention": (RetentionPolicy, RetentionPolicyForm, services.retention_policy_save, "policy"),
}


@roles_required(*PRIVACY_ROLES)
def policies(request: HttpRequest) -> HttpResponse:
    """Purposes and retention policies, with the history of their changes."""
    return render(
        request,
        "consent/policies.html",
        {
            "purposes": Purpose.objects.order_by("code"),
            "retention_policies": RetentionPolicy.objects.order_by("event_name"),
            "history": selectors.policy_history(),
        },
    )


@roles_required(*PRIVACY_ROLES)
def policy_edit(request: HttpRequest, kind: str, pk: int | None = None) -> HttpResponse:
    """Create (no pk) or edit a purpose or a retention policy."""
    if kind not in POLICY_KINDS:
        raise Http404("No such kind of policy.")
    model, form_class, save, keyword = POLICY_KINDS[kind]
    instance = get_object_or_404(model, pk=pk) if pk is not None else None
    # The form writes its values into the instance it is given: give it a copy, so the
    # service sees what changed.
    form = form_class(request.POST or None, instance=model.objects.get(pk=pk) if instance else None)
    if request.method == "POST" and form.is_valid():
        save(**{keyword: instance, "values": form.cleaned_data, "actor": request.user})
        messages.success(request, "Saved; the change is in the history below.")
        return redirect("privacy:policies")
    return render(
        request,
        "consent/policy_edit.html",
        {"form": form, "kind": kind, "instance": instance},
        status=400 if request.method == "POST" else 200,
    )
