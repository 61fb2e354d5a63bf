import hashlib
from datetime import datetime

from django.contrib.auth.models import User
from django.db.models import F, QuerySet

from access.models import SYSTEM_ACTOR, ApiKey, AuditLog, Source


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_key_for_token(*, token: str) -> ApiKey | None:
    return ApiKey.objects.filter(key_hash=token_digest(token), revoked_at__isnull=True).first()


def source_for_write_key(*, write_key: str) -> Source | None:
    return Source.objects.filter(write_key_hash=token_digest(write_key), enabled=True).first()


def api_keys_list() -> QuerySet[ApiKey]:
    """Every API key, active ones first, newest first."""
    return ApiKey.objects.select_related("created_by").order_by(
        F("revoked_at").asc(nulls_first=True), "-created_at"
    )


def staff_users_list() -> QuerySet[User]:
    return User.objects.prefetch_related("groups").order_by("email", "username")


def audit_actions() -> list[str]:
    """Every action the audit log holds, for a filter's choices."""
    return sorted(AuditLog.objects.order_by().values_list("action", flat=True).distinct())


def audit_log_filtered(
    *,
    actor: str = "",
    action: str = "",
    resource: str = "",
    profile_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    include_system: bool = True,
) -> QuerySet[AuditLog]:
    """Audit rows, newest first; without `include_system`, not the rows nobody acted for
    (automated consent signals, retention purges, scheduled jobs)."""
    rows = AuditLog.objects.all()
    if not include_system:
        rows = rows.exclude(actor_label=SYSTEM_ACTOR)
    if actor:
        rows = rows.filter(actor_label__icontains=actor)
    if action:
        rows = rows.filter(action=action)
    if resource:
        rows = rows.filter(resource=resource)
    if profile_id is not None:
        rows = rows.filter(profile_id=profile_id)
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    if until is not None:
        rows = rows.filter(created_at__lt=until)
    return rows.order_by("-created_at", "-id")
