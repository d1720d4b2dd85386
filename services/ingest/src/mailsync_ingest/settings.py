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
        default=30.0,
        gt=0,
        description=(
            "How often a folder without push is checked: every folder on servers without "
            "IDLE, the folders other than the pushed one otherwise."
        ),
    )
    idle_renew_seconds: float = Field(
        default=540.0,
        gt=0,
        description="IDLE is re-issued this often, well before servers' 29-minute timeout.",
    )
    imap_timeout_seconds: float = Field(default=30.0, gt=0)
    imap_ca_file: str | None = Field(
        default=None,
        description=(
            "PEM file of an extra CA trusted for IMAP servers' certificates, beside the system "
            "store (a private CA); verification itself is never switched off."
        ),
    )
    fetch_batch: int = Field(
        default=200,
        ge=1,
        description="Messages recorded per transaction (their summaries in one round trip).",
    )
    fetch_batch_bytes: int = Field(
        default=2_000_000,
        ge=1,
        description=(
            "Bodies fetched per IMAP round trip, in bytes; a batch's next FETCH is on the wire "
            "while the previous answer is stored and parsed."
        ),
    )
    backfill_chunk: int = Field(
        default=500,
        ge=1,
        description="Initial-sync messages per turn before new mail is looked at again.",
    )
    max_message_bytes: int = Field(
        default=50_000_000,
        ge=1,
        description=(
            "Largest message fetched whole when the provider documents no smaller limit; "
            "larger ones are recorded from their header and flagged too_large."
        ),
    )
    folders_refresh_seconds: float = Field(
        default=300.0, gt=0, description="How often the folder list is read again."
    )
    reconnect_base_seconds: float = Field(default=1.0, gt=0)
    reconnect_max_seconds: float = Field(default=300.0, gt=0)
    lease_seconds: float = Field(
        default=20.0,
        gt=0,
        description="How long an account stays with a replica that stopped renewing.",
    )
    lease_renew_seconds: float = Field(
        default=2.0, gt=0, description="How often leases are renewed and new accounts claimed."
    )
    max_accounts_per_replica: int = Field(default=5000, ge=1)
