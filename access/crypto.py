"""Secrets the platform must read back (not only compare), encrypted at rest with a key
derived from SECRET_KEY (Fernet: AES-128-CBC with an HMAC-SHA256 tag), one derived key per
purpose. A database dump alone reveals nothing; changing SECRET_KEY makes them unreadable
(`secret_decrypt` then raises SecretUnreadable)."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from django.utils.crypto import salted_hmac


class SecretUnreadable(ValueError):
    """The ciphertext was not written under this SECRET_KEY and purpose."""


def _fernet(purpose: str) -> Fernet:
    key = salted_hmac(f"access.crypto.{purpose}", "fernet-key", algorithm="sha256").digest()
    return Fernet(base64.urlsafe_b64encode(key))


def secret_encrypt(plaintext: str, *, purpose: str) -> str:
    return _fernet(purpose).encrypt(plaintext.encode()).decode()


def secret_decrypt(ciphertext: str, *, purpose: str) -> str:
    try:
        return _fernet(purpose).decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(f"a {purpose} secret cannot be read with this SECRET_KEY") from None
