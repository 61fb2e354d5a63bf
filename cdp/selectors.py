import hashlib

from django.contrib.auth.models import User
from django.db.models import F, QuerySet

from cdp.models import ApiKey, Source


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
