"""Writes for sources and API keys. A key is returned in clear once, at creation, and only its
digest is stored."""

import secrets
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from cdp.auth import SCOPES
from cdp.models import ApiKey, Source
from cdp.selectors import token_digest


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
