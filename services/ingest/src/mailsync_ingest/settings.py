"""Ingest configuration (env prefix MAILSYNC_)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from mailsync_platform.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    credentials_key: SecretStr = Field(
        description=(
            "Fernet key(s) encrypting mailbox credentials at rest, comma-separated: the first "
            "encrypts, all decrypt, so a key can be rotated without re-entering passwords."
        ),
    )
    poll_seconds: float = Field(
        default=5.0, gt=0, description="How often a mailbox is checked for new mail."
    )
    imap_timeout_seconds: float = Field(default=30.0, gt=0)
    fetch_batch: int = Field(default=50, ge=1, description="Messages fetched per IMAP round trip.")
