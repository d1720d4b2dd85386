"""Every SQL statement of ingest; returns domain objects, never driver records."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from mailsync_ingest.adapters.imap import ImapEndpoint, Security
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


@dataclass(frozen=True, slots=True)
class FolderCursor:
    uidvalidity: int
    last_seen_uid: int


_ACCOUNT_COLUMNS = (
    "account_id, company_id, user_id, email, provider, account_type, member_user_ids,"
    " imap_host, imap_port, imap_security, username, sealed_password, state, is_default"
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
    )


async def get_account(conn: DbConnection, account_id: str) -> Account | None:
    row = await conn.fetchrow(
        f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE account_id = $1", account_id
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


async def count_connected(conn: DbConnection, company_id: str, user_id: str) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM accounts WHERE company_id = $1 AND user_id = $2"
        " AND state <> 'disconnected'",
        company_id,
        user_id,
    )
    return count


async def insert_account(conn: DbConnection, account: Account) -> bool:
    """Store a new account; False when that account id is already connected."""
    inserted = await conn.fetchval(
        "INSERT INTO accounts (account_id, company_id, user_id, email, provider, account_type,"
        " member_user_ids, imap_host, imap_port, imap_security, username, sealed_password,"
        " state, is_default)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
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
    )
    return bool(inserted)


async def set_state(conn: DbConnection, account_id: str, state: str) -> bool:
    """Move an account to `state`; False when it was already there (no event storm, R5)."""
    changed = await conn.fetchval(
        "UPDATE accounts SET state = $2 WHERE account_id = $1 AND state <> $2 RETURNING true",
        account_id,
        state,
    )
    return bool(changed)


async def get_cursor(conn: DbConnection, account_id: str, folder: str) -> FolderCursor | None:
    row = await conn.fetchrow(
        "SELECT uidvalidity, last_seen_uid FROM folder_cursors"
        " WHERE account_id = $1 AND folder = $2",
        account_id,
        folder,
    )
    return None if row is None else FolderCursor(row["uidvalidity"], row["last_seen_uid"])


async def save_cursor(
    conn: DbConnection, account_id: str, folder: str, cursor: FolderCursor
) -> None:
    await conn.execute(
        "INSERT INTO folder_cursors (account_id, folder, uidvalidity, last_seen_uid)"
        " VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (account_id, folder) DO UPDATE SET uidvalidity = EXCLUDED.uidvalidity,"
        " last_seen_uid = EXCLUDED.last_seen_uid, updated_at = now()",
        account_id,
        folder,
        cursor.uidvalidity,
        cursor.last_seen_uid,
    )


async def record_message(
    conn: DbConnection,
    account_id: str,
    folder: str,
    uidvalidity: int,
    uid: int,
    message_id: str | None,
    raw_sha256: str,
) -> bool:
    """Remember a fetched message; False when this (folder, uidvalidity, uid) was seen before."""
    inserted = await conn.fetchval(
        "INSERT INTO ingested_messages (account_id, folder, uidvalidity, uid, message_id,"
        " raw_sha256) VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (account_id, folder, uidvalidity, uid) DO NOTHING RETURNING true",
        account_id,
        folder,
        uidvalidity,
        uid,
        message_id,
        raw_sha256,
    )
    return bool(inserted)
