"""Normalising and hashing a subject's identifiers.

Suppressions, tombstones and finished requests keep identifiers only as these keyed hashes
(HMAC-SHA256 under PRIVACY_HASH_KEY), so a leaked table cannot be reversed by hashing a list
of known emails. Identifiers are normalised by the rule identity keys follow
(`profiles.identifiers`: emails lower-cased, phones in E.164, ids trimmed), so that a subject
named in any form hashes to what the identity index holds, and a value the index could never
hold is refused (InvalidIdentifierError) instead of being hashed to something nobody matches.
"""

import hashlib
import hmac
from functools import lru_cache

from django.conf import settings

from profiles.identifiers import (
    ANONYMOUS_ID,
    EMAIL,
    PHONE,
    USER_ID,
    InvalidIdentifierError,
    identifier_normalize,
)

SUBJECT_KINDS = (EMAIL, USER_ID, PHONE, ANONYMOUS_ID)

__all__ = [
    "SUBJECT_KINDS",
    "InvalidIdentifierError",
    "identifier_hash",
    "identifier_normalize",
]


@lru_cache(maxsize=1)
def _key() -> bytes:
    return settings.PRIVACY_HASH_KEY.encode()


def identifier_hash(kind: str, normalized_value: str) -> str:
    """The keyed hash of one identifier, normalised with `identifier_normalize` first."""
    message = f"{kind}:{normalized_value}".encode()
    return hmac.new(_key(), message, hashlib.sha256).hexdigest()
