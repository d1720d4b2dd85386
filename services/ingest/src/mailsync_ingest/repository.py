"""Account SQL of ingest (mailbox positions live in `mailbox_store`); returns domain objects,
never driver records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from mailsync_contracts import AccountSettings
from mailsync_ingest.adapters.imap import ImapEndpoint, Security
from mailsync_ingest.domain import UserAccount
from mailsync_platform.database import DbConnection


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    company_id: str
    user_id: str
    email: str
    provider: str | None
    account_type: str
    member_user_ids: tuple[str, ...]
    imap: ImapEndpoint
    username: str
    sealed_password: bytes
    state: str
    is_default: bool
    settings: AccountSettings = AccountSettings()  # noqa: RUF009 (frozen, so shared safely)
    # R4: the provider's per-message limit; None when the provider documents none.
    max_message_bytes: int | None = None


_ACCOUNT_COLUMNS = (
    "account_id, company_id, user_id, email, provider, account_type, member_user_ids,"
    " imap_host, imap_port, imap_security, username, sealed_password, state, is_default,"
    " settings, max_message_bytes"
)


def _account(row: asyncpg.Record) -> Account:
    security: Security = row["imap_security"]
    return Account(
        account_id=row["account_id"],
        company_id=row["company_id"],
        user_id=row["user_id"],
        email=row["email"],
        provider=row["provider"],
        account_type=row["account_type"],
        member_user_ids=tuple(row["member_user_ids"]),
        imap=ImapEndpoint(row["imap_host"], row["imap_port"], security),
        username=row["username"],
        sealed_password=bytes(row["sealed_password"]),
        state=row["state"],
        is_default=row["is_default"],
        settings=AccountSettings.model_validate_json(row["settings"]),
        max_message_bytes=row["max_message_bytes"],
    )


async def get_account(conn: DbConnection, account_id: str) -> Account | None:
    row = await conn.fetchrow(
        f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE account_id = $1", account_id
    )
    return None if row is None else _account(row)


async def lock_account(conn: DbConnection, account_id: str) -> Account | None:
    """The account, its row locked until the transaction ends (a command and the sync engine
    may change the same row; the later one sees the earlier one's result)."""
    row = await conn.fetchrow(
        f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE account_id = $1 FOR UPDATE", account_id
    )
    return None if row is None else _account(row)


async def active_accounts(conn: DbConnection | asyncpg.Pool) -> list[Account]:
    rows = await conn.fetch(
        f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE state = 'active' ORDER BY connected_at"
    )
    return [_account(row) for row in rows]


async def lock_user_accounts(conn: DbConnection, company_id: str, user_id: str) -> None:
    """Serialize connects of one user for the rest of the transaction: commands for different
    accounts arrive on different partitions, possibly in parallel replicas, and the plan
    limit (R1) must hold across them."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"accounts:{company_id}:{user_id}"
    )


async def user_accounts(conn: DbConnection, company_id: str, user_id: str) -> list[UserAccount]:
    """Every account of one user, disconnected ones included (R1 counting, R3 defaults)."""
    rows = await conn.fetch(
        "SELECT account_id, state, is_default, connected_at FROM accounts"
        " WHERE company_id = $1 AND user_id = $2 ORDER BY connected_at, account_id",
        company_id,
        user_id,
    )
    return [
        UserAccount(r["account_id"], r["state"], r["is_default"], r["connected_at"]) for r in rows
    ]


async def insert_account(conn: DbConnection, account: Account) -> bool:
    """Store a new account; False when that account id is already connected."""
    inserted = await conn.fetchval(
        "INSERT INTO accounts (account_id, company_id, user_id, email, provider, account_type,"
        " member_user_ids, imap_host, imap_port, imap_security, username, sealed_password,"
        " state, is_default, settings, max_message_bytes)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        " ON CONFLICT (account_id) DO NOTHING RETURNING true",
        account.account_id,
        account.company_id,
        account.user_id,
        account.email,
        account.provider,
        account.account_type,
        list(account.member_user_ids),
        account.imap.host,
        account.imap.port,
        account.imap.security,
        account.username,
        account.sealed_password,
        account.state,
        account.is_default,
        account.settings.model_dump_json(),
        account.max_message_bytes,
    )
    return bool(inserted)


async def set_state(conn: DbConnection, account_id: str, state: str) -> bool:
    """Move an account to `state`; False when it was already there (no event storm, R5) or is
    disconnected (only a connect brings an account back, e.g. not a late sync failure)."""
    changed = await conn.fetchval(
        "UPDATE accounts SET state = $2 WHERE account_id = $1 AND state <> $2"
        " AND state <> 'disconnected' RETURNING true",
        account_id,
        state,
    )
    return bool(changed)


async def reconnect_account(conn: DbConnection, account: Account) -> bool:
    """Connect a disconnected account again with everything a connect brings (credentials,
    servers, settings, owner); False when the account is not disconnected. The folder cursors
    stay, so the sync resumes where it stopped instead of publishing the mailbox again."""
    changed = await conn.fetchval(
        "UPDATE accounts SET company_id = $2, user_id = $3, email = $4, provider = $5,"
        " account_type = $6, member_user_ids = $7, imap_host = $8, imap_port = $9,"
        " imap_security = $10, username = $11, sealed_password = $12, state = $13,"
        " is_default = $14, settings = $15, max_message_bytes = $16, connected_at = now(),"
        " lease_owner = NULL, lease_until = NULL"
        " WHERE account_id = $1 AND state = 'disconnected' RETURNING true",
        account.account_id,
        account.company_id,
        account.user_id,
        account.email,
        account.provider,
        account.account_type,
        list(account.member_user_ids),
        account.imap.host,
        account.imap.port,
        account.imap.security,
        account.username,
        account.sealed_password,
        account.state,
        account.is_default,
        account.settings.model_dump_json(),
        account.max_message_bytes,
    )
    return bool(changed)


async def save_settings(conn: DbConnection, account_id: str, settings: AccountSettings) -> None:
    await conn.execute(
        "UPDATE accounts SET settings = $2 WHERE account_id = $1",
        account_id,
        settings.model_dump_json(),
    )


async def disconnect_account(conn: DbConnection, account_id: str) -> bool:
    """Disconnect: credentials wiped (the column is NOT NULL, so empty), no longer a default,
    no replica's lease; False when it was disconnected already."""
    changed = await conn.fetchval(
        "UPDATE accounts SET state = 'disconnected', sealed_password = ''::bytea,"
        " is_default = false, lease_owner = NULL, lease_until = NULL"
        " WHERE account_id = $1 AND state <> 'disconnected' RETURNING true",
        account_id,
    )
    return bool(changed)


async def make_default(conn: DbConnection, company_id: str, user_id: str, account_id: str) -> None:
    """R3: `account_id` becomes the user's only default. Two statements, in this order: the
    unique index on one default per user is checked row by row."""
    await conn.execute(
        "UPDATE accounts SET is_default = false"
        " WHERE company_id = $1 AND user_id = $2 AND is_default AND account_id <> $3",
        company_id,
        user_id,
        account_id,
    )
    await conn.execute(
        "UPDATE accounts SET is_default = true WHERE account_id = $1 AND NOT is_default",
        account_id,
    )


async def replace_credentials(
    conn: DbConnection, account_id: str, username: str, sealed_password: bytes
) -> bool:
    """R5: new credentials, and the account active again so the sync picks it up; False when
    the account is disconnected (only a connect brings it back)."""
    changed = await conn.fetchval(
        "UPDATE accounts SET username = $2, sealed_password = $3, state = 'active'"
        " WHERE account_id = $1 AND state <> 'disconnected' RETURNING true",
        account_id,
        username,
        sealed_password,
    )
    return bool(changed)


@dataclass(frozen=True, slots=True)
class SealedPassword:
    account_id: str
    sealed: bytes


async def sealed_passwords_after(
    conn: DbConnection | asyncpg.Pool, after_account_id: str, limit: int
) -> list[SealedPassword]:
    """One page of stored passwords in account id order (keyset paging: stable while rows
    change); wiped ones (disconnected accounts) are left out."""
    rows = await conn.fetch(
        "SELECT account_id, sealed_password FROM accounts"
        " WHERE account_id > $1 AND octet_length(sealed_password) > 0"
        " ORDER BY account_id LIMIT $2",
        after_account_id,
        limit,
    )
    return [SealedPassword(r["account_id"], bytes(r["sealed_password"])) for r in rows]


async def replace_sealed_passwords(
    conn: DbConnection | asyncpg.Pool, was: Sequence[SealedPassword], now: Sequence[bytes]
) -> int:
    """Compare-and-set: each password is replaced only if it still holds what was read, so a
    reauthenticate or another replica's rotation in between wins; returns how many changed."""
    changed: int = await conn.fetchval(
        "WITH replaced AS ("
        " UPDATE accounts a SET sealed_password = c.new_sealed"
        " FROM unnest($1::text[], $2::bytea[], $3::bytea[])"
        " AS c(account_id, old_sealed, new_sealed)"
        " WHERE a.account_id = c.account_id AND a.sealed_password = c.old_sealed"
        " RETURNING 1)"
        " SELECT count(*) FROM replaced",
        [p.account_id for p in was],
        [p.sealed for p in was],
        list(now),
    )
    return changed


async def accounts_by_ids(
    conn: DbConnection | asyncpg.Pool, account_ids: Sequence[str]
) -> list[Account]:
    """The named accounts that exist, in any state, oldest connection first (the sync's
    leases name the accounts; the sync decides what each state means)."""
    rows = await conn.fetch(
        f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE account_id = ANY($1::text[])"
        " ORDER BY connected_at, account_id",
        list(account_ids),
    )
    return [_account(row) for row in rows]


async def require_reauth(conn: DbConnection, account_id: str, sealed_password: bytes) -> bool:
    """R5: an active account whose provider refused `sealed_password` goes to
    `reauth_required`; False when it already is (one event, no storm), is disconnected, or
    holds other credentials by now (a reauthenticate raced the refusal and wins)."""
    changed = await conn.fetchval(
        "UPDATE accounts SET state = 'reauth_required' WHERE account_id = $1"
        " AND state = 'active' AND sealed_password = $2 RETURNING true",
        account_id,
        sealed_password,
    )
    return bool(changed)
