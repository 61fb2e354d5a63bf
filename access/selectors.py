import hashlib
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db.models import F, QuerySet

from access.audit_chain import CHAINED_FIELDS, GENESIS, audit_row_hash
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


@dataclass(frozen=True)
class AuditChainReport:
    rows_checked: int
    # The first row whose link or hash does not match, and why; None when the chain is intact.
    broken_row_id: int | None = None
    problem: str = ""
    head_id: int = 0
    head_hash: str = GENESIS

    @property
    def intact(self) -> bool:
        return self.broken_row_id is None


def audit_chain_verify(
    *, after_id: int = 0, after_hash: str = GENESIS, rows_before: int = 0
) -> AuditChainReport:
    """Walk the audit log in id order from the start (or from a row already verified),
    recomputing every hash. A changed row breaks its own hash; a removed or inserted row
    breaks the next row's link."""
    prev, head_id, checked = after_hash, after_id, rows_before
    columns = ("id", "prev_hash", "row_hash", *CHAINED_FIELDS)
    rows = AuditLog.objects.filter(id__gt=after_id).order_by("id").values_list(*columns)
    for values in rows.iterator(chunk_size=5000):
        row = dict(zip(columns, values, strict=True))
        if row["prev_hash"] != prev:
            problem = "does not link to the row before it (a row was removed or inserted)"
            return AuditChainReport(checked, row["id"], problem)
        if audit_row_hash(row, prev_hash=prev) != row["row_hash"]:
            return AuditChainReport(checked, row["id"], "was changed after it was written")
        prev, head_id = row["row_hash"], row["id"]
        checked += 1
    return AuditChainReport(checked, head_id=head_id, head_hash=prev)


_CHAIN_CHECKPOINT = "audit-chain-checkpoint"


def audit_chain_status() -> AuditChainReport:
    """The chain's state for the audit page, without rehashing a large log on every view:
    rows after the last verified one are checked now, and the whole chain again once the
    last full check is `AUDIT_CHAIN_FULL_CHECK_SECONDS` old; `manage.py audit_verify` always
    checks every row."""
    now = time.time()
    checkpoint = cache.get(_CHAIN_CHECKPOINT)
    if checkpoint is None or now - checkpoint["full_check_at"] > (
        settings.AUDIT_CHAIN_FULL_CHECK_SECONDS
    ):
        checkpoint = {"full_check_at": now, "after": {}}
    report = audit_chain_verify(**checkpoint["after"])
    if report.intact:
        checkpoint["after"] = {
            "after_id": report.head_id,
            "after_hash": report.head_hash,
            "rows_before": report.rows_checked,
        }
        cache.set(_CHAIN_CHECKPOINT, checkpoint, settings.AUDIT_CHAIN_FULL_CHECK_SECONDS)
    else:
        cache.delete(_CHAIN_CHECKPOINT)
    return report
