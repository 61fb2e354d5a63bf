"""Privacy requests: opened by a system (verified) or by staff (verified later), then run.

Requests run through `privacy_request_process`, which the Celery task, the beat schedule and
`manage.py process_privacy_requests` all call. Services never queue the task themselves (the
tasks call these services, and are the layer above them): the view or API view that leaves a
request ready to run queues `consent.tasks.privacy_request_process_task` after commit, and the
beat schedule runs any verified request still waiting. Every step writes an audit row naming
profiles by id only.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from access.models import ApiKey
from access.services import audit_record
from consent import selectors
from consent.hashing import SUBJECT_KINDS, identifier_hash
from consent.models import (
    PrivacyRequest,
    PrivacyRequestComment,
    Regulation,
    RegulationType,
    RequestStatus,
)
from consent.services.erasure import erasure_sweep_and_verify, subject_erase
from consent.services.subject_export import subject_export_build
from consent.services.suppression import suppression_create, suppression_remove
from profiles.models import Profile
from profiles.services import profile_traits_patch

logger = logging.getLogger(__name__)


class PrivacyRequestError(ValueError):
    """A request that cannot be created or moved as asked (the message says why)."""


def privacy_request_create(
    *,
    regulation_type: str,
    subject: dict[str, Any],
    regulation: str = Regulation.GDPR,
    changes: dict[str, Any] | None = None,
    submitted_by: Any = None,
    api_key: ApiKey | None = None,
    due_at: datetime | None = None,
    ip: str | None = None,
) -> PrivacyRequest:
    """Open a request. One sent with an API key (which needs `privacy:write`) counts as
    verified by the system that sent it and is returned INITIALIZED, ready to run; one a staff
    member enters waits in NOT_VERIFIED until someone verifies the person's identity."""
    if regulation_type not in RegulationType.values:
        raise PrivacyRequestError(
            f"regulation_type must be one of {', '.join(RegulationType.values)}"
        )
    if regulation not in Regulation.values:
        raise PrivacyRequestError(f"regulation must be one of {', '.join(Regulation.values)}")
    try:
        identifiers = selectors.subject_identifiers(subject)
    except ValueError as exc:
        raise PrivacyRequestError(f"subject: {exc}") from exc
    if not identifiers:
        raise PrivacyRequestError("subject: give at least one of " + ", ".join(SUBJECT_KINDS))
    changes = changes or {}
    if regulation_type == RegulationType.RECTIFY:
        traits = changes.get("traits")
        if not isinstance(traits, dict) or not traits:
            raise PrivacyRequestError('changes: RECTIFY needs {"traits": {name: value, ...}}')
    elif changes:
        raise PrivacyRequestError("changes: only RECTIFY requests take changes")
    verified = api_key is not None
    now = timezone.now()
    with transaction.atomic():
        request = PrivacyRequest.objects.create(
            regulation_type=regulation_type,
            regulation=regulation,
            status=RequestStatus.INITIALIZED if verified else RequestStatus.NOT_VERIFIED,
            subject=identifiers,
            subject_hashes={k: identifier_hash(k, v) for k, v in identifiers.items()},
            subject_kinds=",".join(sorted(identifiers)),
            changes=changes,
            verified_at=now if verified else None,
            verification_note="Sent by an API key with privacy:write" if verified else "",
            submitted_by=submitted_by if getattr(submitted_by, "pk", None) else None,
            submitted_by_key=api_key,
            due_at=due_at or PrivacyRequest.due_for(regulation, now),
        )
        audit_record(
            actor=api_key or submitted_by,
            action="privacy.create",
            resource="privacy",
            resource_id=request.pk,
            ip=ip,
            details={"regulation_type": regulation_type, "subject_kinds": request.subject_kinds},
        )
    return request


def privacy_request_verify(
    *, request: PrivacyRequest, actor: Any, note: str = "", ip: str | None = None
) -> PrivacyRequest:
    """Staff confirmed the person's identity (`note` says how): the request becomes
    INITIALIZED, ready to run."""
    if request.status != RequestStatus.NOT_VERIFIED:
        raise PrivacyRequestError(f"request is {request.status}, not waiting for verification")
    with transaction.atomic():
        request.status = RequestStatus.INITIALIZED
        request.verified_at = timezone.now()
        request.verified_by = actor if getattr(actor, "pk", None) else None
        request.verification_note = note[:500]
        request.save(update_fields=["status", "verified_at", "verified_by", "verification_note"])
        audit_record(
            actor=actor, action="privacy.verify", resource="privacy", resource_id=request.pk, ip=ip
        )
    return request


def privacy_request_assign(
    *, request: PrivacyRequest, assignee: Any, actor: Any, ip: str | None = None
) -> PrivacyRequest:
    request.assigned_to = assignee
    request.save(update_fields=["assigned_to"])
    audit_record(
        actor=actor,
        action="privacy.assign",
        resource="privacy",
        resource_id=request.pk,
        ip=ip,
        details={"assignee_id": getattr(assignee, "pk", None)},
    )
    return request


def privacy_request_comment_add(
    *, request: PrivacyRequest, author: Any, body: str, ip: str | None = None
) -> PrivacyRequestComment:
    body = body.strip()
    if not body:
        raise PrivacyRequestError("comment must not be empty")
    comment = PrivacyRequestComment.objects.create(request=request, author=author, body=body)
    audit_record(
        actor=author, action="privacy.comment", resource="privacy", resource_id=request.pk, ip=ip
    )
    return comment


def privacy_request_cancel(
    *, request: PrivacyRequest, actor: Any, ip: str | None = None
) -> PrivacyRequest:
    updated = PrivacyRequest.objects.filter(
        pk=request.pk, status__in=[RequestStatus.NOT_VERIFIED, RequestStatus.INITIALIZED]
    ).update(status=RequestStatus.CANCELLED, finished_at=timezone.now())
    if not updated:
        raise PrivacyRequestError(f"a {request.status} request cannot be cancelled")
    _seal(request.pk)
    audit_record(
        actor=actor, action="privacy.cancel", resource="privacy", resource_id=request.pk, ip=ip
    )
    request.refresh_from_db()
    return request


def _progress(request_id: int, pct: int) -> None:
    PrivacyRequest.objects.filter(pk=request_id).update(progress=max(0, min(100, pct)))


def _seal(request_id: int) -> None:
    """Done: keep the subject only hashed, and of RECTIFY changes only the trait names."""
    request = PrivacyRequest.objects.get(pk=request_id)
    changes = request.changes
    if isinstance(changes.get("traits"), dict):
        changes = {"traits": sorted(changes["traits"])}
    PrivacyRequest.objects.filter(pk=request_id).update(subject={}, changes=changes)


@dataclass
class _Run:
    """One run of a request: what its steps read, and the outcome they build."""

    request: PrivacyRequest
    actor: Any
    identifiers: dict[str, str]
    profile_ids: list[int] = field(default_factory=list)
    status: str = RequestStatus.FINISHED
    result: dict[str, Any] = field(default_factory=dict)
    verification: dict[str, Any] = field(default_factory=dict)
    export_file: str = ""


def privacy_request_process(*, request: PrivacyRequest, actor: Any = None) -> PrivacyRequest:
    """Run a verified request: find the subject's profiles, run the steps of its regulation
    type (`_STEPS`), audit, record the outcome and keep the subject only hashed. Claimed with
    a conditional update, so a second worker (or the beat run) finding it RUNNING leaves it
    alone. A step that raises leaves the request FAILED, with the error, for staff to see."""
    if not _claim(request):
        request.refresh_from_db()
        return request
    request.refresh_from_db()
    run = _Run(request=request, actor=actor, identifiers=dict(request.subject))
    try:
        run.profile_ids = selectors.subject_profile_ids(identifiers=run.identifiers)
        run.result["profiles"] = len(run.profile_ids)
        for step in _STEPS[request.regulation_type]:
            step(run)
        _audit(run)
    except Exception as exc:
        logger.exception("privacy request %s failed", request.pk)
        run.status = RequestStatus.FAILED
        run.result["error_type"] = type(exc).__name__
        PrivacyRequest.objects.filter(pk=request.pk).update(error=f"{type(exc).__name__}: {exc}")
    _finish(run)
    request.refresh_from_db()
    return request


def _claim(request: PrivacyRequest) -> bool:
    return bool(
        PrivacyRequest.objects.filter(
            pk=request.pk, status=RequestStatus.INITIALIZED, verified_at__isnull=False
        ).update(status=RequestStatus.RUNNING, started_at=timezone.now(), progress=0, error="")
    )


def _suppress(run: _Run) -> None:
    run.result["suppressed_identifiers"] = suppression_create(
        identifiers=run.identifiers,
        profile_ids=run.profile_ids,
        request=run.request,
        actor=run.actor,
    )


def _unsuppress(run: _Run) -> None:
    run.result["unsuppressed"] = suppression_remove(
        identifiers=run.identifiers,
        profile_ids=run.profile_ids,
        request=run.request,
        actor=run.actor,
    )


def _export(run: _Run) -> None:
    run.export_file = subject_export_build(
        request=run.request,
        profile_ids=run.profile_ids,
        progress=lambda pct: _progress(run.request.pk, pct),
    )


def _rectify(run: _Run) -> None:
    profiles = list(Profile.objects.filter(pk__in=run.profile_ids))
    for profile in profiles:
        profile_traits_patch(profile=profile, changes=run.request.changes["traits"])
    run.result["rectified_profiles"] = len(profiles)


def _erase(run: _Run) -> None:
    """Remove the subject everywhere, then prove it with a scan of every table and the cache
    for any identifier the subject was known by."""
    needles = set(run.identifiers.values()) | {
        value for _, value, _ in selectors.identities_of_profiles(profile_ids=run.profile_ids)
    }
    _progress(run.request.pk, 10)
    run.result.update(
        subject_erase(profile_ids=run.profile_ids, identifiers=needles, request=run.request)
    )
    _progress(run.request.pk, 70)
    _seal(run.request.pk)  # before the scan, which would find the subject on the request
    run.verification = erasure_sweep_and_verify(
        identifiers=needles, profile_ids=run.profile_ids, request=run.request
    )
    for label, count in run.verification["swept"].items():
        run.result["removed"][f"{label} (mentions)"] = count
    if not run.verification["clean"]:
        run.status = RequestStatus.PARTIAL_SUCCESS


_STEPS: dict[str, tuple[Callable[[_Run], None], ...]] = {
    RegulationType.SUPPRESS_ONLY: (_suppress,),
    RegulationType.SUPPRESS_WITH_DELETE: (_suppress, _erase),
    RegulationType.DELETE_ONLY: (_erase,),
    RegulationType.UNSUPPRESS: (_unsuppress,),
    RegulationType.ACCESS: (_export,),
    RegulationType.RECTIFY: (_rectify,),
}


def _audit(run: _Run) -> None:
    named: list[int | None] = list(run.profile_ids) or [None]
    for profile_id in named:
        audit_record(
            actor=run.actor,
            action=f"privacy.{run.request.regulation_type.lower()}",
            resource="privacy",
            resource_id=run.request.pk,
            profile_id=profile_id,
            details={"status": run.status},
        )


def _finish(run: _Run) -> None:
    failed = run.status == RequestStatus.FAILED
    PrivacyRequest.objects.filter(pk=run.request.pk).update(
        status=run.status,
        progress=F("progress") if failed else 100,
        result=run.result,
        verification=run.verification,
        export_file=run.export_file,
        finished_at=timezone.now(),
    )
    # An access request keeps the requester's contact until the export is delivered
    # (privacy_request_export_delivered): staff need it to send the file.
    if not failed and not run.export_file:
        _seal(run.request.pk)


def privacy_request_export_delivered(*, request: PrivacyRequest) -> None:
    """The export was downloaded for delivery: from now on the subject is kept only hashed."""
    if request.subject:
        _seal(request.pk)


def privacy_requests_process_due(*, limit: int = 50, actor: Any = None) -> list[PrivacyRequest]:
    """Process what is waiting (verified, not yet run), oldest due date first."""
    processed = []
    for request in list(selectors.privacy_requests_due()[:limit]):
        processed.append(privacy_request_process(request=request, actor=actor))
    return processed
