"""Writes for sources and API keys. A key is returned in clear once, at creation, and only its
digest is stored."""

import logging
import secrets
from dataclasses import dataclass

from allauth.account.models import EmailAddress
from django.contrib.auth.models import AbstractBaseUser, Group, User
from django.db import transaction
from django.utils import timezone

from cdp.auth import SCOPES
from cdp.models import ApiKey, Source
from cdp.roles import ADMIN, ROLES
from cdp.selectors import token_digest

logger = logging.getLogger(__name__)


class InvalidScopeError(ValueError):
    pass


@dataclass(frozen=True)
class IssuedKey:
    record: Source | ApiKey
    key: str


def source_create(*, name: str, write_key: str | None = None) -> IssuedKey:
    """Create a source; `write_key` lets an operator keep a key an SDK already ships with."""
    key = write_key or secrets.token_urlsafe(24)
    source = Source.objects.create(
        name=name, write_key_prefix=key[:8], write_key_hash=token_digest(key)
    )
    return IssuedKey(record=source, key=key)


def source_rotate_write_key(*, source: Source) -> IssuedKey:
    key = secrets.token_urlsafe(24)
    source.write_key_prefix = key[:8]
    source.write_key_hash = token_digest(key)
    source.save(update_fields=["write_key_prefix", "write_key_hash"])
    return IssuedKey(record=source, key=key)


def api_key_create(
    *, name: str, scopes: list[str], created_by: AbstractBaseUser | None = None
) -> IssuedKey:
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
    return IssuedKey(record=api_key, key=key)


def api_key_revoke(*, api_key: ApiKey) -> None:
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


def source_set_enabled(*, source: Source, enabled: bool) -> Source:
    """A disabled source's write key stops opening ingestion; its events and plan stay."""
    source.enabled = enabled
    source.save(update_fields=["enabled"])
    return source


class RoleChangeRefusedError(ValueError):
    pass


def staff_user_create(
    *, email: str, password: str, roles: list[str], actor: AbstractBaseUser | None = None
) -> User:
    """A staff login (email + password) holding `roles`. The email is the username too, and is
    recorded as verified for allauth: admins vouch for the people they add."""
    email = email.strip().lower()
    with transaction.atomic():
        user = User.objects.create_user(username=email[:150], email=email, password=password)
        EmailAddress.objects.create(user=user, email=email, primary=True, verified=True)
        staff_roles_set(user=user, roles=roles, actor=actor)
    logger.info("staff user %s created by %s", user.pk, getattr(actor, "pk", None))
    return user


def staff_roles_set(*, user: User, roles: list[str], actor: AbstractBaseUser | None = None) -> None:
    """Give `user` exactly `roles` (groups outside the role set are left alone). An admin cannot
    take the admin role from themselves, so the last admin cannot lock everyone out by mistake."""
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise RoleChangeRefusedError(f"unknown role(s) {', '.join(unknown)}")
    if actor is not None and actor.pk == user.pk and ADMIN not in roles:
        raise RoleChangeRefusedError("You cannot remove the admin role from yourself.")
    with transaction.atomic():
        user.groups.remove(*Group.objects.filter(name__in=set(ROLES) - set(roles)))
        user.groups.add(*Group.objects.filter(name__in=roles))
    if hasattr(user, "_cdp_roles"):
        del user._cdp_roles
    logger.info(
        "roles of staff user %s set to %s by %s",
        user.pk,
        ",".join(sorted(roles)) or "none",
        getattr(actor, "pk", None),
    )
