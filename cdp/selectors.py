import hashlib

from cdp.models import ApiKey, Source


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_key_for_token(*, token: str) -> ApiKey | None:
    return ApiKey.objects.filter(key_hash=token_digest(token), revoked_at__isnull=True).first()


def source_for_write_key(*, write_key: str) -> Source | None:
    return Source.objects.filter(write_key_hash=token_digest(write_key), enabled=True).first()
