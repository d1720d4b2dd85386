"""Every SQL statement of outbound."""

from __future__ import annotations

from dataclasses import dataclass

from mailsync_platform.database import DbConnection


@dataclass(frozen=True, slots=True)
class SendingAccount:
    account_id: str
    company_id: str
    user_id: str
    email: str
    account_type: str
    smtp_host: str | None
    smtp_port: int | None
    smtp_security: str | None
    is_default: bool
    state: str


async def upsert_connected(conn: DbConnection, account: SendingAccount) -> None:
    if account.is_default:
        await conn.execute(
            "UPDATE sending_accounts SET is_default = false"
            " WHERE company_id = $1 AND user_id = $2 AND account_id <> $3",
            account.company_id,
            account.user_id,
            account.account_id,
        )
    await conn.execute(
        "INSERT INTO sending_accounts (account_id, company_id, user_id, email, account_type,"
        " smtp_host, smtp_port, smtp_security, is_default, state)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT (account_id) DO UPDATE SET email = EXCLUDED.email,"
        " smtp_host = EXCLUDED.smtp_host, smtp_port = EXCLUDED.smtp_port,"
        " smtp_security = EXCLUDED.smtp_security, is_default = EXCLUDED.is_default,"
        " state = EXCLUDED.state, updated_at = now()",
        account.account_id,
        account.company_id,
        account.user_id,
        account.email,
        account.account_type,
        account.smtp_host,
        account.smtp_port,
        account.smtp_security,
        account.is_default,
        account.state,
    )


async def set_state(conn: DbConnection, account_id: str, state: str) -> None:
    await conn.execute(
        "UPDATE sending_accounts SET state = $2, updated_at = now() WHERE account_id = $1",
        account_id,
        state,
    )


async def default_account(
    conn: DbConnection, company_id: str, user_id: str
) -> SendingAccount | None:
    row = await conn.fetchrow(
        "SELECT * FROM sending_accounts WHERE company_id = $1 AND user_id = $2"
        " AND is_default AND state = 'active'",
        company_id,
        user_id,
    )
    if row is None:
        return None
    return SendingAccount(
        account_id=row["account_id"],
        company_id=row["company_id"],
        user_id=row["user_id"],
        email=row["email"],
        account_type=row["account_type"],
        smtp_host=row["smtp_host"],
        smtp_port=row["smtp_port"],
        smtp_security=row["smtp_security"],
        is_default=row["is_default"],
        state=row["state"],
    )
