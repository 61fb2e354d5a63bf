import hashlib
import os
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db.models import F, QuerySet

from access.audit_chain import (
    CHAINED_FIELDS,
    GENESIS,
    AuditAnchor,
    AuditAnchorForgedError,
    audit_anchor_parse,
    audit_row_hash,
)
from access.models import SYSTEM_ACTOR, ApiKey, AuditLog, Source


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_key_for_token(*, token: str) -> ApiKey | None:
    # Written out: every API request asks this, and building the ORM query was 0.42 of its
    # 0.52 ms of CPU (0.10 ms like this).
    keys = ApiKey.objects.raw(
        f"SELECT * FROM {ApiKey._meta.db_table} "  # noqa: S608 - the table name is ours
        "WHERE key_hash = %s AND revoked_at IS NULL LIMIT 1",
        [token_digest(token)],
    )
    return next(iter(keys), None)


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
    # The anchors outside the database (AUDIT_ANCHOR_PATH) the chain was checked against, the
    # latest one's time, and why the anchor file itself cannot be trusted, if it cannot.
    anchors_checked: int = 0
    anchored_at: datetime | None = None
    anchor_error: str = ""

    @property
    def intact(self) -> bool:
        return self.broken_row_id is None and not self.anchor_error


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


# The tail of the anchor file that holds its last line (a line is ~200 bytes).
_ANCHOR_TAIL_BYTES = 4096


def audit_anchor_key() -> bytes:
    return settings.AUDIT_ANCHOR_KEY.encode()


def audit_anchors_read(*, latest_only: bool = False) -> list[AuditAnchor]:
    """The anchors in AUDIT_ANCHOR_PATH, oldest first (none while nothing was anchored);
    `AuditAnchorForgedError` naming the first line the application did not sign."""
    path = Path(settings.AUDIT_ANCHOR_PATH)
    try:
        with path.open("rb") as file:
            if latest_only:
                size = file.seek(0, os.SEEK_END)
                file.seek(max(0, size - _ANCHOR_TAIL_BYTES))
            lines = file.read().splitlines()
    except FileNotFoundError:
        return []
    if latest_only:
        lines = [line for line in lines if line.strip()][-1:]
    anchors = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            anchors.append(audit_anchor_parse(line, key=audit_anchor_key()))
        except AuditAnchorForgedError as exc:
            where = "its last line" if latest_only else f"line {number}"
            raise AuditAnchorForgedError(f"{path}, {where}: {exc}") from exc
    return anchors


def _anchor_mismatch(anchors: list[AuditAnchor]) -> tuple[AuditAnchor, str] | None:
    # An intact chain whose row still has an anchored hash is, up to that row, the chain that
    # was anchored (each hash covers every row before it).
    ids = [anchor.head_id for anchor in anchors if anchor.head_id]
    stored: dict[int, str] = {}
    for start in range(0, len(ids), 5000):
        rows = AuditLog.objects.filter(id__in=ids[start : start + 5000])
        stored.update(rows.values_list("id", "row_hash"))
    for anchor in anchors:
        if not anchor.head_id:
            continue
        when = f"{anchor.at:%Y-%m-%d %H:%M:%S} UTC"
        row_hash = stored.get(anchor.head_id)
        if row_hash is None:
            return anchor, f"is missing, yet it was the head anchored at {when} (rows were removed)"
        if row_hash != anchor.head_hash:
            return anchor, (
                f"no longer has the hash anchored at {when} (the chain was rewritten up to it)"
            )
    return None


def audit_chain_check_anchors(
    report: AuditChainReport, *, latest_only: bool = False
) -> AuditChainReport:
    """`report` (a walk of the chain) checked against the anchors outside the database: every
    anchor, or the latest one only."""
    if not report.intact:
        return report
    try:
        anchors = audit_anchors_read(latest_only=latest_only)
    except AuditAnchorForgedError as exc:
        return replace(report, anchor_error=f"the anchor file is not as written: {exc}")
    mismatch = _anchor_mismatch(anchors)
    if mismatch is not None:
        anchor, problem = mismatch
        return replace(report, broken_row_id=anchor.head_id, problem=problem)
    return replace(
        report, anchors_checked=len(anchors), anchored_at=anchors[-1].at if anchors else None
    )


def audit_chain_verify_since_anchor() -> AuditChainReport:
    """The rows after the latest anchor rehashed, once that anchor's row is seen to still hold
    the anchored hash (the whole chain while nothing is anchored): what beat checks before it
    anchors a new head."""
    try:
        latest = audit_anchors_read(latest_only=True)
    except AuditAnchorForgedError as exc:
        return AuditChainReport(0, anchor_error=f"the anchor file is not as written: {exc}")
    if not latest:
        return audit_chain_verify()
    anchor = latest[0]
    mismatch = _anchor_mismatch(latest)
    if mismatch is not None:
        return AuditChainReport(anchor.rows, broken_row_id=anchor.head_id, problem=mismatch[1])
    report = audit_chain_verify(
        after_id=anchor.head_id, after_hash=anchor.head_hash, rows_before=anchor.rows
    )
    return replace(report, anchors_checked=1, anchored_at=anchor.at)


_CHAIN_CHECKPOINT = "audit-chain-checkpoint"


def audit_chain_status() -> AuditChainReport:
    """The chain's state for the audit page, without rehashing a large log on every view:
    rows after the last verified one are checked now, and the whole chain again once the
    last full check is `AUDIT_CHAIN_FULL_CHECK_SECONDS` old, and against the latest anchor
    outside the database; `manage.py audit_verify` always checks every row and anchor."""
    now = time.time()
    checkpoint = cache.get(_CHAIN_CHECKPOINT)
    if checkpoint is None or now - checkpoint["full_check_at"] > (
        settings.AUDIT_CHAIN_FULL_CHECK_SECONDS
    ):
        checkpoint = {"full_check_at": now, "after": {}}
    report = audit_chain_check_anchors(audit_chain_verify(**checkpoint["after"]), latest_only=True)
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
