"""Mailbox SQL of ingest: per-folder cursors, the messages seen in each folder, and the
account leases that decide which replica syncs which account."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg

from mailsync_platform.database import DbConnection

Identity = tuple[str, int]
"""(Message-ID, RFC822.SIZE): the same message wherever it is found in one mailbox."""


class LeaseLost(RuntimeError):
    """Another replica owns this account now; this one must stop writing for it."""


@dataclass(frozen=True, slots=True)
class FolderCursor:
    """Where the sync of one folder stands. New mail is above `last_seen_uid`; the initial
    sync works downwards from it, `backfill_floor` being the lowest UID already done
    (None: not started; 1: done)."""

    uidvalidity: int
    last_seen_uid: int
    highestmodseq: int | None = None
    backfill_floor: int | None = None
    backfill_total: int = 0
    backfill_done: int = 0

    @property
    def backfilled(self) -> bool:
        return self.backfill_floor is not None and self.backfill_floor <= 1


@dataclass(frozen=True, slots=True)
class SeenMessage:
    """A message recorded in a folder: what arrived at (folder, uidvalidity, uid)."""

    uid: int
    message_id: str | None
    size: int | None
    raw_sha256: str | None
    outcome: str


@dataclass(frozen=True, slots=True)
class NewRow:
    uid: int
    message_id: str | None
    size: int
    raw_sha256: str | None
    outcome: str


async def get_cursor(conn: DbConnection, account_id: str, folder: str) -> FolderCursor | None:
    row = await conn.fetchrow(
        "SELECT uidvalidity, last_seen_uid, highestmodseq, backfill_floor, backfill_total,"
        " backfill_done FROM folder_cursors WHERE account_id = $1 AND folder = $2",
        account_id,
        folder,
    )
    if row is None:
        return None
    return FolderCursor(
        row["uidvalidity"],
        row["last_seen_uid"],
        row["highestmodseq"],
        row["backfill_floor"],
        row["backfill_total"],
        row["backfill_done"],
    )


async def save_cursor(
    conn: DbConnection, account_id: str, folder: str, cursor: FolderCursor
) -> None:
    await conn.execute(
        "INSERT INTO folder_cursors (account_id, folder, uidvalidity, last_seen_uid,"
        " highestmodseq, backfill_floor, backfill_total, backfill_done)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (account_id, folder) DO UPDATE SET uidvalidity = EXCLUDED.uidvalidity,"
        " last_seen_uid = EXCLUDED.last_seen_uid, highestmodseq = EXCLUDED.highestmodseq,"
        " backfill_floor = EXCLUDED.backfill_floor, backfill_total = EXCLUDED.backfill_total,"
        " backfill_done = EXCLUDED.backfill_done, updated_at = now()",
        account_id,
        folder,
        cursor.uidvalidity,
        cursor.last_seen_uid,
        cursor.highestmodseq,
        cursor.backfill_floor,
        cursor.backfill_total,
        cursor.backfill_done,
    )


async def retire_epoch(conn: DbConnection, account_id: str, folder: str, uidvalidity: int) -> int:
    """R7: the folder's UIDVALIDITY changed, so its old UIDs mean nothing any more. Their rows
    stay as known identities (gone, not expunged), which is what keeps the resync from
    publishing a single duplicate."""
    result = await conn.execute(
        "UPDATE ingested_messages SET gone_at = now() WHERE account_id = $1 AND folder = $2"
        " AND uidvalidity <> $3 AND gone_at IS NULL",
        account_id,
        folder,
        uidvalidity,
    )
    return int(result.split()[-1])


async def known_identities(
    conn: DbConnection, account_id: str, identities: Iterable[Identity]
) -> set[Identity]:
    """Which of these (Message-ID, size) pairs the account already has, here or in another
    folder, and not expunged since."""
    wanted = list(set(identities))
    if not wanted:
        return set()
    rows = await conn.fetch(
        "SELECT DISTINCT m.message_id, m.size FROM ingested_messages m"
        " JOIN unnest($2::text[], $3::bigint[]) AS w(message_id, size)"
        " ON m.message_id = w.message_id AND m.size = w.size"
        " WHERE m.account_id = $1 AND NOT m.expunged",
        account_id,
        [message_id for message_id, _ in wanted],
        [size for _, size in wanted],
    )
    return {(row["message_id"], row["size"]) for row in rows}


async def known_contents(conn: DbConnection, account_id: str, hashes: Iterable[str]) -> set[str]:
    """Which of these raw-content hashes the account already has (not expunged)."""
    wanted = list(set(hashes))
    if not wanted:
        return set()
    rows = await conn.fetch(
        "SELECT DISTINCT raw_sha256 FROM ingested_messages WHERE account_id = $1"
        " AND raw_sha256 = ANY($2::text[]) AND NOT expunged",
        account_id,
        wanted,
    )
    return {row["raw_sha256"] for row in rows}


async def record_messages(
    conn: DbConnection, account_id: str, folder: str, uidvalidity: int, rows: Sequence[NewRow]
) -> set[int]:
    """Remember messages found in a folder; returns the UIDs that were new (a UID recorded
    before, e.g. by a replayed batch after a crash, is left alone)."""
    if not rows:
        return set()
    inserted = await conn.fetch(
        "INSERT INTO ingested_messages (account_id, folder, uidvalidity, uid, message_id, size,"
        " raw_sha256, outcome)"
        " SELECT $1, $2, $3, r.uid, r.message_id, r.size, r.raw_sha256, r.outcome"
        " FROM unnest($4::bigint[], $5::text[], $6::bigint[], $7::text[], $8::text[])"
        " AS r(uid, message_id, size, raw_sha256, outcome)"
        " ON CONFLICT (account_id, folder, uidvalidity, uid) DO NOTHING RETURNING uid",
        account_id,
        folder,
        uidvalidity,
        [r.uid for r in rows],
        [r.message_id for r in rows],
        [r.size for r in rows],
        [r.raw_sha256 for r in rows],
        [r.outcome for r in rows],
    )
    return {row["uid"] for row in inserted}


async def live_uids(conn: DbConnection, account_id: str, folder: str, uidvalidity: int) -> set[int]:
    rows = await conn.fetch(
        "SELECT uid FROM ingested_messages WHERE account_id = $1 AND folder = $2"
        " AND uidvalidity = $3 AND gone_at IS NULL",
        account_id,
        folder,
        uidvalidity,
    )
    return {row["uid"] for row in rows}


async def seen_messages(
    conn: DbConnection, account_id: str, folder: str, uidvalidity: int, uids: Iterable[int]
) -> list[SeenMessage]:
    """The still-present rows among `uids` of this folder."""
    rows = await conn.fetch(
        "SELECT uid, message_id, size, raw_sha256, outcome FROM ingested_messages"
        " WHERE account_id = $1 AND folder = $2 AND uidvalidity = $3 AND uid = ANY($4::bigint[])"
        " AND gone_at IS NULL ORDER BY uid",
        account_id,
        folder,
        uidvalidity,
        list(uids),
    )
    return [
        SeenMessage(r["uid"], r["message_id"], r["size"], r["raw_sha256"], r["outcome"])
        for r in rows
    ]


async def present_elsewhere(
    conn: DbConnection, account_id: str, folder: str, message: SeenMessage
) -> bool:
    """Whether the same message is still present in another folder of the account."""
    found = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM ingested_messages WHERE account_id = $1"
        " AND folder <> $2 AND gone_at IS NULL AND ("
        " (message_id IS NOT NULL AND message_id = $3 AND size = $4)"
        " OR (raw_sha256 IS NOT NULL AND raw_sha256 = $5)))",
        account_id,
        folder,
        message.message_id,
        message.size,
        message.raw_sha256,
    )
    return bool(found)


async def mark_gone(
    conn: DbConnection, account_id: str, folder: str, uidvalidity: int, uids: Iterable[int]
) -> None:
    await conn.execute(
        "UPDATE ingested_messages SET gone_at = now() WHERE account_id = $1 AND folder = $2"
        " AND uidvalidity = $3 AND uid = ANY($4::bigint[]) AND gone_at IS NULL",
        account_id,
        folder,
        uidvalidity,
        list(uids),
    )


async def mark_expunged(conn: DbConnection, account_id: str, message: SeenMessage) -> None:
    """Every row of this message is history now: if it comes back (restored from Trash), it
    is new mail again."""
    await conn.execute(
        "UPDATE ingested_messages SET expunged = true, gone_at = coalesce(gone_at, now())"
        " WHERE account_id = $1 AND ("
        " (message_id IS NOT NULL AND message_id = $2 AND size = $3)"
        " OR (raw_sha256 IS NOT NULL AND raw_sha256 = $4))",
        account_id,
        message.message_id,
        message.size,
        message.raw_sha256,
    )


async def mark_initial_sync_done(conn: DbConnection, account_id: str) -> bool:
    """True the first time only: `mail.account.synced` is published once per account."""
    changed = await conn.fetchval(
        "UPDATE accounts SET initial_sync_done = true WHERE account_id = $1"
        " AND NOT initial_sync_done RETURNING true",
        account_id,
    )
    return bool(changed)


# Leases. A replica owns an account while `lease_until` is in the future; it renews well
# before that, and a replica that dies simply stops renewing.


async def renew_leases(pool: asyncpg.Pool, owner: str, seconds: float) -> list[str]:
    rows = await pool.fetch(
        "UPDATE accounts SET lease_until = now() + make_interval(secs => $2)"
        " WHERE lease_owner = $1 AND state = 'active' RETURNING account_id",
        owner,
        seconds,
    )
    return [row["account_id"] for row in rows]


async def claim_accounts(pool: asyncpg.Pool, owner: str, seconds: float, limit: int) -> list[str]:
    """Take up to `limit` active accounts nobody holds (never held, released, or expired).
    SKIP LOCKED lets replicas claim side by side without waiting for each other."""
    if limit <= 0:
        return []
    rows = await pool.fetch(
        "UPDATE accounts SET lease_owner = $1, lease_until = now() + make_interval(secs => $2)"
        " WHERE account_id IN (SELECT account_id FROM accounts WHERE state = 'active'"
        " AND (lease_until IS NULL OR lease_until < now()) ORDER BY connected_at"
        " LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING account_id",
        owner,
        seconds,
        limit,
    )
    return [row["account_id"] for row in rows]


async def release_leases(pool: asyncpg.Pool, owner: str, account_ids: Sequence[str]) -> None:
    """Hand accounts back at once (shutdown, or an account no longer active) so another
    replica need not wait for the lease to expire."""
    await pool.execute(
        "UPDATE accounts SET lease_owner = NULL, lease_until = NULL"
        " WHERE lease_owner = $1 AND account_id = ANY($2::text[])",
        owner,
        list(account_ids),
    )


async def hold_lease(conn: DbConnection, account_id: str, owner: str) -> None:
    """Fence a write transaction: raise unless this replica still holds the account's lease.
    FOR SHARE keeps another replica from claiming it until the transaction ends."""
    held = await conn.fetchval(
        "SELECT true FROM accounts WHERE account_id = $1 AND lease_owner = $2"
        " AND lease_until > now() FOR SHARE",
        account_id,
        owner,
    )
    if not held:
        raise LeaseLost(f"account {account_id} is no longer leased to this replica")
