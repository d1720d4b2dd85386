"""Every SQL statement of the linker; returns domain objects, never driver records."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from mailsync_linker.domain import Address, Link
from mailsync_platform.database import DbConnection


@dataclass(frozen=True, slots=True)
class ThreadState:
    thread_id: UUID
    company_id: str
    account_id: str
    owner_user_id: str
    subject: str
    visibility: str
    archived: bool
    last_message_at: datetime | None
    message_count: int
    participants: tuple[Address, ...]
    links: tuple[Link, ...]


async def upsert_entity(
    conn: DbConnection,
    company_id: str,
    kind: str,
    entity_id: str,
    attributes: dict[str, Any],
    version_time: datetime,
) -> bool:
    """Apply a CRM upsert unless a newer version is already applied; True when applied."""
    applied = await conn.fetchval(
        "INSERT INTO crm_entities (company_id, kind, entity_id, attributes, deleted, version_time)"
        " VALUES ($1, $2, $3, $4::jsonb, false, $5)"
        " ON CONFLICT (company_id, kind, entity_id) DO UPDATE"
        " SET attributes = EXCLUDED.attributes, deleted = false,"
        " version_time = EXCLUDED.version_time"
        " WHERE crm_entities.version_time <= EXCLUDED.version_time RETURNING true",
        company_id,
        kind,
        entity_id,
        json.dumps(attributes),
        version_time,
    )
    return bool(applied)


async def delete_entity(
    conn: DbConnection, company_id: str, kind: str, entity_id: str, version_time: datetime
) -> bool:
    applied = await conn.fetchval(
        "INSERT INTO crm_entities (company_id, kind, entity_id, attributes, deleted, version_time)"
        " VALUES ($1, $2, $3, '{}'::jsonb, true, $4)"
        " ON CONFLICT (company_id, kind, entity_id) DO UPDATE"
        " SET deleted = true, version_time = EXCLUDED.version_time"
        " WHERE crm_entities.version_time <= EXCLUDED.version_time RETURNING true",
        company_id,
        kind,
        entity_id,
        version_time,
    )
    return bool(applied)


async def replace_addresses(
    conn: DbConnection, company_id: str, kind: str, entity_id: str, emails: Iterable[str]
) -> None:
    await conn.execute(
        "DELETE FROM crm_addresses WHERE company_id = $1 AND kind = $2 AND entity_id = $3",
        company_id,
        kind,
        entity_id,
    )
    await conn.executemany(
        "INSERT INTO crm_addresses (company_id, email, kind, entity_id) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT DO NOTHING",
        [(company_id, email, kind, entity_id) for email in sorted(set(emails))],
    )


async def user_addresses(conn: DbConnection, company_id: str) -> set[str]:
    rows = await conn.fetch(
        "SELECT email FROM crm_addresses WHERE company_id = $1 AND kind = 'user'", company_id
    )
    return {row["email"] for row in rows}


async def persons_by_email(
    conn: DbConnection, company_id: str, emails: Sequence[str]
) -> dict[str, list[str]]:
    rows = await conn.fetch(
        "SELECT a.email, a.entity_id FROM crm_addresses a JOIN crm_entities e"
        " ON e.company_id = a.company_id AND e.kind = 'person' AND e.entity_id = a.entity_id"
        " WHERE a.company_id = $1 AND a.kind = 'person' AND a.email = ANY($2::text[])"
        " AND NOT e.deleted",
        company_id,
        list(emails),
    )
    found: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        found[row["email"]].append(row["entity_id"])
    return dict(found)


async def organizations_of_persons(
    conn: DbConnection, company_id: str, person_ids: Sequence[str]
) -> dict[str, str | None]:
    rows = await conn.fetch(
        "SELECT entity_id, attributes->>'organization_id' AS organization_id FROM crm_entities"
        " WHERE company_id = $1 AND kind = 'person' AND entity_id = ANY($2::text[])",
        company_id,
        list(person_ids),
    )
    return {row["entity_id"]: row["organization_id"] for row in rows}


async def message_exists(conn: DbConnection, account_id: str, message_key: str) -> bool:
    found = await conn.fetchval(
        "SELECT true FROM messages WHERE account_id = $1 AND message_key = $2",
        account_id,
        message_key,
    )
    return bool(found)


async def thread_for_references(
    conn: DbConnection, account_id: str, message_ids: Sequence[str]
) -> UUID | None:
    if not message_ids:
        return None
    rows = await conn.fetch(
        "SELECT message_id, thread_id FROM thread_message_ids"
        " WHERE account_id = $1 AND message_id = ANY($2::text[])",
        account_id,
        list(message_ids),
    )
    by_id = {row["message_id"]: row["thread_id"] for row in rows}
    for message_id in message_ids:  # the caller orders them most specific first
        if message_id in by_id:
            thread_id: UUID = by_id[message_id]
            return thread_id
    return None


async def create_thread(
    conn: DbConnection,
    thread_id: UUID,
    company_id: str,
    account_id: str,
    owner_user_id: str,
    subject: str,
    visibility: str,
) -> None:
    await conn.execute(
        "INSERT INTO threads (thread_id, company_id, account_id, owner_user_id, subject,"
        " visibility) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (thread_id) DO NOTHING",
        thread_id,
        company_id,
        account_id,
        owner_user_id,
        subject,
        visibility,
    )


async def add_message(
    conn: DbConnection,
    *,
    account_id: str,
    message_key: str,
    thread_id: UUID,
    message_id: str | None,
    subject: str,
    sent_at: datetime | None,
    sender: Address | None,
    recipients: Sequence[Address],
    snippet: str,
    raw_sha256: str,
    parse_error: str | None,
    known_ids: Sequence[str],
) -> None:
    await conn.execute(
        "INSERT INTO messages (account_id, message_key, thread_id, message_id, subject, sent_at,"
        " sender, recipients, snippet, raw_sha256, parse_error)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10, $11)"
        " ON CONFLICT (account_id, message_key) DO NOTHING",
        account_id,
        message_key,
        thread_id,
        message_id,
        subject,
        sent_at,
        None if sender is None else json.dumps({"email": sender.email, "name": sender.name}),
        json.dumps([{"email": r.email, "name": r.name} for r in recipients]),
        snippet,
        raw_sha256,
        parse_error,
    )
    await conn.executemany(
        "INSERT INTO thread_message_ids (account_id, message_id, thread_id) VALUES ($1, $2, $3)"
        " ON CONFLICT (account_id, message_id) DO NOTHING",
        [(account_id, known, thread_id) for known in known_ids],
    )
    await conn.execute(
        "UPDATE threads SET last_message_at = GREATEST(last_message_at, $2) WHERE thread_id = $1",
        thread_id,
        sent_at,
    )


async def add_participants(
    conn: DbConnection, thread_id: UUID, participants: Sequence[Address]
) -> None:
    await conn.executemany(
        "INSERT INTO thread_participants (thread_id, email, name) VALUES ($1, $2, $3)"
        " ON CONFLICT (thread_id, email) DO UPDATE"
        " SET name = COALESCE(thread_participants.name, EXCLUDED.name)",
        [(thread_id, p.key, p.name) for p in participants],
    )


async def add_links(conn: DbConnection, thread_id: UUID, links: Sequence[Link]) -> None:
    await conn.executemany(
        "INSERT INTO thread_links (thread_id, kind, entity_id, origin) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (thread_id, kind, entity_id) DO NOTHING",
        [(thread_id, link.kind, link.entity_id, link.origin) for link in links],
    )


async def thread_state(conn: DbConnection, thread_id: UUID) -> ThreadState:
    row = await conn.fetchrow(
        "SELECT t.*, (SELECT count(*) FROM messages m WHERE m.thread_id = t.thread_id)"
        " AS message_count FROM threads t WHERE t.thread_id = $1",
        thread_id,
    )
    if row is None:
        raise LookupError(f"no thread {thread_id}")
    participants = await conn.fetch(
        "SELECT email, name FROM thread_participants WHERE thread_id = $1 ORDER BY email",
        thread_id,
    )
    links = await conn.fetch(
        "SELECT kind, entity_id, origin FROM thread_links WHERE thread_id = $1"
        " ORDER BY kind, entity_id",
        thread_id,
    )
    return ThreadState(
        thread_id=row["thread_id"],
        company_id=row["company_id"],
        account_id=row["account_id"],
        owner_user_id=row["owner_user_id"],
        subject=row["subject"],
        visibility=row["visibility"],
        archived=row["archived"],
        last_message_at=row["last_message_at"],
        message_count=row["message_count"],
        participants=tuple(Address(p["email"], p["name"]) for p in participants),
        links=tuple(Link(lk["kind"], lk["entity_id"], lk["origin"]) for lk in links),
    )
