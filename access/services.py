"""Writes for sources, API keys and staff access. A key is returned in clear once, at creation,
and only its digest is stored. Every change of access writes an audit row (consent's audit log)
naming who did it; the rows hold ids, names of sources and keys, scopes and roles, never a key."""

import logging
import os
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Literal

from allauth.account.models import EmailAddress
from allauth.usersessions.internal.flows.sessions import end_sessions
from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import connection, transaction
from django.utils import timezone

from access.audit_chain import AuditAnchor, audit_anchor_line
from access.auth import SCOPES, client_ip
from access.models import SYSTEM_ACTOR, ApiKey, AuditLog, Source
from access.roles import ADMIN, ROLES
from access.selectors import (
    AuditChainReport,
    audit_anchor_key,
    audit_chain_check_anchors,
    audit_chain_verify,
    audit_chain_verify_since_anchor,
    token_digest,
)

logger = logging.getLogger(__name__)


class InvalidScopeError(ValueError):
    pass


@dataclass(frozen=True)
class IssuedKey:
    record: Source | ApiKey
    key: str


def source_create(
    *, name: str, write_key: str | None = None, actor: User | None = None
) -> IssuedKey:
    """Create a source; `write_key` lets an operator keep a key an SDK already ships with."""
    key = write_key or secrets.token_urlsafe(24)
    with transaction.atomic():
        source = Source.objects.create(
            name=name, write_key_prefix=key[:8], write_key_hash=token_digest(key)
        )
        audit_record(
            actor=actor,
            action="source.create",
            resource="sources",
            resource_id=source.pk,
            details={"name": source.name, "key_prefix": source.write_key_prefix},
        )
    return IssuedKey(record=source, key=key)


def source_rotate_write_key(*, source: Source, actor: User | None = None) -> IssuedKey:
    key = secrets.token_urlsafe(24)
    source.write_key_prefix = key[:8]
    source.write_key_hash = token_digest(key)
    with transaction.atomic():
        source.save(update_fields=["write_key_prefix", "write_key_hash"])
        audit_record(
            actor=actor,
            action="source.rotate_key",
            resource="sources",
            resource_id=source.pk,
            details={"key_prefix": source.write_key_prefix},
        )
    return IssuedKey(record=source, key=key)


def api_key_create(*, name: str, scopes: list[str], created_by: User | None = None) -> IssuedKey:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise InvalidScopeError(
            f"unknown scope(s) {', '.join(unknown)}; valid scopes: {', '.join(SCOPES)}"
        )
    if not scopes:
        raise InvalidScopeError("an API key needs at least one scope")
    key = "cdp_" + secrets.token_urlsafe(32)
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            name=name,
            prefix=key[:12],
            key_hash=token_digest(key),
            scopes=sorted(set(scopes)),
            created_by=created_by,
        )
        audit_record(
            actor=created_by,
            action="apikey.create",
            resource="api_keys",
            resource_id=api_key.pk,
            details={"name": api_key.name, "prefix": api_key.prefix, "scopes": api_key.scopes},
        )
    return IssuedKey(record=api_key, key=key)


def api_key_revoke(*, api_key: ApiKey, actor: User | None = None) -> None:
    with transaction.atomic():
        revoked = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if revoked:
            audit_record(
                actor=actor,
                action="apikey.revoke",
                resource="api_keys",
                resource_id=api_key.pk,
                details={"prefix": api_key.prefix},
            )


def source_set_enabled(*, source: Source, enabled: bool, actor: User | None = None) -> Source:
    """A disabled source's write key stops opening ingestion; its events and plan stay."""
    source.enabled = enabled
    with transaction.atomic():
        source.save(update_fields=["enabled"])
        audit_record(
            actor=actor,
            action="source.enable" if enabled else "source.disable",
            resource="sources",
            resource_id=source.pk,
        )
    return source


class RoleChangeRefusedError(ValueError):
    pass


def staff_user_create(
    *, email: str, password: str, roles: list[str], actor: User | None = None
) -> User:
    """A staff login (email + password) holding `roles`. The email is the username too, and is
    recorded as verified for allauth: admins vouch for the people they add."""
    email = email.strip().lower()
    with transaction.atomic():
        user = User.objects.create_user(username=email[:150], email=email, password=password)
        EmailAddress.objects.create(user=user, email=email, primary=True, verified=True)
        audit_record(actor=actor, action="staff.create", resource="staff", resource_id=user.pk)
        staff_roles_set(user=user, roles=roles, actor=actor)
    logger.info("staff user %s created by %s", user.pk, getattr(actor, "pk", None))
    return user


def staff_roles_set(*, user: User, roles: list[str], actor: User | None = None) -> None:
    """Give `user` exactly `roles` (groups outside the role set are left alone). An admin cannot
    take the admin role from themselves, so the last admin cannot lock everyone out by mistake."""
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise RoleChangeRefusedError(f"unknown role(s) {', '.join(unknown)}")
    if actor is not None and actor.pk == user.pk and ADMIN not in roles:
        raise RoleChangeRefusedError("You cannot remove the admin role from yourself.")
    with transaction.atomic():
        before = sorted(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        user.groups.remove(*Group.objects.filter(name__in=set(ROLES) - set(roles)))
        user.groups.add(*Group.objects.filter(name__in=roles))
        audit_record(
            actor=actor,
            action="staff.roles",
            resource="staff",
            resource_id=user.pk,
            details={"before": before, "after": sorted(set(roles))},
        )
    if hasattr(user, "_cdp_roles"):
        del user._cdp_roles
    logger.info(
        "roles of staff user %s set to %s by %s",
        user.pk,
        ",".join(sorted(roles)) or "none",
        getattr(actor, "pk", None),
    )


def staff_session_end(*, request: Any, session: UserSession) -> None:
    """End one session of a staff user (logging out if it is the caller's own current one);
    the audit row is written by `access.accounts.AuditedUserSessionsAdapter`."""
    end_sessions(request, [session])


# --- audit ---------------------------------------------------------------------------------


def _actor_fields(actor: Any) -> tuple[Any, str]:
    if actor is None:
        return None, SYSTEM_ACTOR
    api_key = getattr(actor, "api_key", None)
    if isinstance(api_key, ApiKey):
        return None, f"api-key:{api_key.prefix}"
    if isinstance(actor, ApiKey):
        return None, f"api-key:{actor.prefix}"
    if getattr(actor, "is_authenticated", False) and getattr(actor, "pk", None):
        return actor, f"user:{actor.get_username()}"
    return None, "anonymous"


def audit_record(
    *,
    actor: Any,
    action: str,
    resource: str,
    resource_id: Any = "",
    profile_id: int | None = None,
    ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditLog:
    """Append an audit row. `details` must hold no PII (ids, counts, field names only)."""
    user, label = _actor_fields(actor)
    return AuditLog.objects.create(
        actor=user,
        actor_label=label[:160],
        action=action[:32],
        resource=resource[:64],
        resource_id=str(resource_id)[:64],
        profile_id=profile_id,
        ip=ip or None,
        details=details or {},
    )


@dataclass(frozen=True)
class AuditItem:
    """One row of `audit_record_many`: what it is about."""

    resource_id: Any
    profile_id: int | None
    details: dict[str, Any]


def audit_record_many(
    *, actor: Any, action: str, resource: str, items: Sequence[AuditItem]
) -> None:
    """Append one audit row per item in one statement (a batch of campaign sends); each row
    is what `audit_record` writes for it."""
    user, label = _actor_fields(actor)
    AuditLog.objects.bulk_create(
        AuditLog(
            actor=user,
            actor_label=label[:160],
            action=action[:32],
            resource=resource[:64],
            resource_id=str(item.resource_id)[:64],
            profile_id=item.profile_id,
            details=item.details,
        )
        for item in items
    )


def audit_record_request(
    *,
    request: Any,
    action: str,
    resource: str,
    resource_id: Any = "",
    profile_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditLog:
    """Append an audit row for what a request did, naming its caller and address."""
    return audit_record(
        actor=getattr(request, "user", None),
        action=action,
        resource=resource,
        resource_id=resource_id,
        profile_id=profile_id,
        ip=client_ip(request),
        details=details,
    )


# The reasons that may rewrite append-only history; each table's trigger names the ones it
# admits (access migration 0003, consent migration 0005).
RewriteReason = Literal["erasure"]
REWRITE_SETTING = "cdp.allow_audit_rewrite"


@contextmanager
def history_rewrite(
    *, reason: RewriteReason, actor: Any = None, details: dict[str, Any] | None = None
) -> Iterator[None]:
    """The one door through append-only history (consent records): inside the block, the
    database's append-only triggers admit `reason` for this transaction only, and an audit
    row records that the door was opened. Nothing else sets the setting; the block runs in
    its own savepoint, and the setting is cleared on the way out so later statements of an
    enclosing transaction are refused again (a rollback clears it too)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config(%s, %s, true)", [REWRITE_SETTING, reason])
        yield
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config(%s, '', true)", [REWRITE_SETTING])
        audit_record(
            actor=actor,
            action="history.rewrite",
            resource="history",
            resource_id=reason,
            details=details,
        )


def audit_chain_anchor(*, full: bool) -> AuditChainReport:
    """Check the audit chain and, when it is intact, append its head (rows, last id, last
    hash; signed with AUDIT_ANCHOR_KEY) to AUDIT_ANCHOR_PATH, outside the database. `full`
    rehashes every row and checks every anchor (`manage.py audit_verify`); otherwise only the
    rows after the latest anchor, which must itself still match (beat, every few minutes).
    A broken chain is not anchored: its report says why."""
    if full:
        report = audit_chain_check_anchors(audit_chain_verify())
    else:
        report = audit_chain_verify_since_anchor()
    if not report.intact:
        logger.error(
            "audit chain not anchored: row %s %s %s",
            report.broken_row_id,
            report.problem,
            report.anchor_error,
        )
        return report
    anchor = AuditAnchor(
        at=timezone.now(),
        rows=report.rows_checked,
        head_id=report.head_id,
        head_hash=report.head_hash,
    )
    path = settings.AUDIT_ANCHOR_PATH
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    # One write of one short line to a file opened for appending: concurrent writers (beat,
    # a command) never interleave, and nothing before it is rewritten.
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(descriptor, audit_anchor_line(anchor, key=audit_anchor_key()))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return replace(report, anchored_at=anchor.at)
