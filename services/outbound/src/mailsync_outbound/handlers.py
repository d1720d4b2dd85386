"""Account events in: outbound's view of which account sends for whom (R3)."""

from __future__ import annotations

from mailsync_contracts import AccountConnected, AccountDisconnected, AccountReauthRequired
from mailsync_outbound import repository
from mailsync_outbound.repository import SendingAccount
from mailsync_platform.database import DbConnection


async def account_connected(event: AccountConnected, conn: DbConnection) -> None:
    data = event.data
    await repository.upsert_connected(
        conn,
        SendingAccount(
            account_id=data.account_id,
            company_id=event.company_id,
            user_id=data.user_id,
            email=data.email,
            account_type=data.account_type,
            smtp_host=data.smtp.host if data.smtp else None,
            smtp_port=data.smtp.port if data.smtp else None,
            smtp_security=data.smtp.security if data.smtp else None,
            is_default=data.is_default,
            state="active",
        ),
    )


async def account_reauth_required(event: AccountReauthRequired, conn: DbConnection) -> None:
    await repository.set_state(conn, event.data.account_id, "reauth_required")


async def account_disconnected(event: AccountDisconnected, conn: DbConnection) -> None:
    await repository.set_state(conn, event.data.account_id, "disconnected")
