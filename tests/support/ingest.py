"""ingest in-process against the session's stack: settings for a test, connect commands, mail."""

from __future__ import annotations

import secrets
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from pydantic import SecretStr
from starlette.applications import Starlette

from mailsync_contracts import ConnectAccount, ConnectAccountData, MailServer, SyncScope
from mailsync_devstack.dovecot import MailboxUser
from mailsync_devstack.stack import LocalStack
from mailsync_ingest.app import create_app
from mailsync_ingest.domain import Plan
from mailsync_ingest.settings import IngestSettings


def mail(subject: str, n: int, *, sender: str = "Ole Hansen <ole@customer.test>") -> bytes:
    """A small, well-formed message with a unique Message-ID."""
    message = EmailMessage()
    message["Message-ID"] = f"<sync-{n}-{secrets.token_hex(3)}@customer.test>"
    message["From"] = sender
    message["To"] = "owner@example.test"
    message["Subject"] = subject
    message["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"
    message.set_content(f"body {n}")
    return message.as_bytes()


class IngestUnderTest:
    """One ingest replica's settings; `app()` builds it, `with_(...)` varies a setting."""

    def __init__(self, stack: LocalStack, database_url: str, raw_dir: Path, **overrides: Any):
        values: dict[str, Any] = {
            "kafka_bootstrap": stack.kafka_bootstrap,
            "database_url": database_url,
            "raw_store_url": raw_dir.as_uri(),
            "credentials_key": SecretStr(Fernet.generate_key().decode()),
            "poll_seconds": 0.3,
            "lease_renew_seconds": 0.3,
            "lease_seconds": 5.0,
            "reconnect_base_seconds": 0.2,
            "outbox_poll_seconds": 0.2,
            "kafka_session_timeout_ms": 2000,
            "kafka_heartbeat_interval_ms": 400,
            "consumer_group": f"ingest-{secrets.token_hex(4)}",
        }
        values.update(overrides)
        self.settings = IngestSettings(**values)

    def app(self) -> Starlette:
        return create_app(self.settings)


def connect_command(
    stack: LocalStack,
    user: MailboxUser,
    account_id: str,
    password: str | None = None,
    *,
    plan: Plan = "premium",
    user_id: str | None = None,
    scope: SyncScope | None = None,
    history_days: int | None = None,
    company_id: str = "company-sync",
) -> ConnectAccount:
    """Connect `user`'s Dovecot mailbox as a personal account (plaintext IMAP on loopback)."""
    return ConnectAccount.build(
        company_id=company_id,
        source="crm",
        data=ConnectAccountData(
            account_id=account_id,
            user_id=user_id or f"user-of-{account_id}",
            email=user.email,
            imap=MailServer(host=stack.imap_host, port=stack.imap_port, security="plain"),
            username=user.email,
            password=SecretStr(user.password if password is None else password),
            account_type="personal",
            plan=plan,
            sync_scope=scope or SyncScope(),
            history_days=history_days,
        ),
    )
