"""Mailbox credentials encrypted at rest (R5) with rotatable Fernet keys.

A `MultiFernet` decrypts with any configured key and encrypts with the first, so rotating is:
prepend the new key, re-encrypt (`rotate`), then drop the old key.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr


class CredentialsUnreadable(RuntimeError):
    """Stored credentials cannot be decrypted with any configured key."""


class CredentialCipher:
    def __init__(self, keys: SecretStr) -> None:
        parts = [k.strip() for k in keys.get_secret_value().split(",") if k.strip()]
        if not parts:
            raise ValueError("MAILSYNC_CREDENTIALS_KEY holds no key")
        self._fernet = MultiFernet([Fernet(k.encode()) for k in parts])

    def seal(self, secret: str) -> bytes:
        return self._fernet.encrypt(secret.encode())

    def open(self, sealed: bytes) -> SecretStr:
        try:
            return SecretStr(self._fernet.decrypt(sealed).decode())
        except InvalidToken:
            raise CredentialsUnreadable("no configured key decrypts these credentials") from None

    def rotate(self, sealed: bytes) -> bytes:
        return self._fernet.rotate(sealed)
