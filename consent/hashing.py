"""Normalising and hashing a subject's identifiers.

Suppressions, tombstones and finished requests keep identifiers only as these keyed hashes
(HMAC-SHA256 under PRIVACY_HASH_KEY), so a leaked table cannot be reversed by hashing a list
of known emails. The normalisation matches identity resolution's for the kinds we hash:
emails lower-cased, phones in E.164, ids as sent (trimmed).
"""

import hashlib
import hmac
from functools import lru_cache

import phonenumbers
from django.conf import settings

SUBJECT_KINDS = ("email", "user_id", "phone", "anonymous_id")


class InvalidIdentifierError(ValueError):
    pass


def identifier_normalize(kind: str, value: object) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise InvalidIdentifierError(f"{kind} must be a string")
    text = str(value).strip()
    if not text:
        raise InvalidIdentifierError(f"{kind} must not be empty")
    if len(text) > 320:
        raise InvalidIdentifierError(f"{kind} is longer than 320 characters")
    if kind == "email":
        if "@" not in text:
            raise InvalidIdentifierError("email is not an email address")
        return text.lower()
    if kind == "phone":
        try:
            number = phonenumbers.parse(text, settings.PHONE_DEFAULT_REGION)
        except phonenumbers.NumberParseException as exc:
            raise InvalidIdentifierError("phone is not a phone number") from exc
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return text


@lru_cache(maxsize=1)
def _key() -> bytes:
    return settings.PRIVACY_HASH_KEY.encode()


def identifier_hash(kind: str, normalized_value: str) -> str:
    message = f"{kind}:{normalized_value}".encode()
    return hmac.new(_key(), message, hashlib.sha256).hexdigest()
