"""Mailbox credentials encrypted at rest (R5) with rotatable Fernet keys.

A `MultiFernet` decrypts with any configured key and encrypts with the first, so rotating is:
prepend the new key, re-seal every stored password (`mailsync_ingest.key_rotation`, run at
every start), then drop the old key. The full procedure is in `key_rotation`'s docstring.
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
        fernets = [Fernet(k.encode()) for k in parts]
        self._primary = fernets[0]
        self._fernet = MultiFernet(fernets)

    def seal(self, secret: str) -> bytes:
        return self._fernet.encrypt(secret.encode())

    def open(self, sealed: bytes) -> SecretStr:
        try:
            return SecretStr(self._fernet.decrypt(sealed).decode())
        except InvalidToken:
            raise CredentialsUnreadable("no configured key decrypts these credentials") from None

    def rotate(self, sealed: bytes) -> bytes:
        return self._fernet.rotate(sealed)

    def reseal(self, sealed: bytes) -> bytes | None:
        """`sealed` encrypted with the primary key, or None when it already is (so a second
        pass changes nothing). Raises `CredentialsUnreadable` when no key decrypts it."""
        if self._sealed_with_primary(sealed):
            return None
        try:
            return self._fernet.rotate(sealed)
        except InvalidToken:
            raise CredentialsUnreadable("no configured key decrypts these credentials") from None

    def _sealed_with_primary(self, sealed: bytes) -> bool:
        try:
            self._primary.decrypt(sealed)
        except InvalidToken:
            return False
        return True
