"""Every SQL statement of the linker's write side; returns domain objects, never driver records.

Statements take whole batches (arrays unnested server-side), because the linker files
messages in batches of hundreds: a round trip per message would cap it far below the rate a
busy company's mail arrives at. The read API's queries live in `queries.py`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from mailsync_linker.conversation import ThreadCandidate
from mailsync_linker.domain import Address, Link
from mailsync_linker.linking import ItemCandidate
from mailsync_platform.database import DbConnection

# -- CRM read model ---------------------------------------------------------------------------


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


async def entity_attributes(
    conn: DbConnection, company_id: str, kind: str, entity_id: str
) -> dict[str, Any] | None:
    """The current attributes of a live CRM record, None when unknown or deleted."""
    raw = await conn.fetchval(
        "SELECT attributes FROM crm_entities WHERE company_id = $1 AND kind = $2"
        " AND entity_id = $3 AND NOT deleted",
        company_id,
        kind,
        entity_id,
    )
    return None if raw is None else dict(json.loads(raw))


async def replace_addresses(
    conn: DbConnection, company_id: str, kind: str, entity_id: str, emails: Iterable[str]
) -> list[str]:
    """Set the addresses of a person or user; returns the ones it had before."""
    previous = await conn.fetch(
        "DELETE FROM crm_addresses WHERE company_id = $1 AND kind = $2 AND entity_id = $3"
        " RETURNING email",
        company_id,
        kind,
        entity_id,
    )
    await conn.execute(
        "INSERT INTO crm_addresses (company_id, email, kind, entity_id)"
        " SELECT $1, email, $2, $3 FROM unnest($4::text[]) AS email ON CONFLICT DO NOTHING",
        company_id,
        kind,
        entity_id,
        sorted(set(emails)),
    )
    return [row["email"] for row in previous]


async def replace_item_persons(
    conn: DbConnection,
    company_id: str,
    kind: str,
    item_id: str,
    person_ids: Iterable[str],
    is_open: bool,
) -> None:
    await conn.execute(
        "DELETE FROM crm_item_persons WHERE company_id = $1 AND kind = $2 AND item_id = $3",
        company_id,
        kind,
        item_id,
    )
    await conn.execute(
        "INSERT INTO crm_item_persons (company_id, person_id, kind, item_id, open)"
        " SELECT $1, person_id, $2, $3, $4 FROM unnest($5::text[]) AS person_id"
        " ON CONFLICT DO NOTHING",
        company_id,
        kind,
        item_id,
        is_open,
        sorted(set(person_ids)),
    )


async def replace_team_members(
    conn: DbConnection,
    company_id: str,
    source: str,
    *,
    team_id: str | None = None,
    user_id: str | None = None,
    pairs: Iterable[tuple[str, str]] = (),
) -> None:
    """Replace the (team, user) pairs one side states: a team's members (`team_id`) or a
    user's teams (`user_id`)."""
    if team_id is not None:
        await conn.execute(
            "DELETE FROM crm_team_members WHERE company_id = $1 AND source = $2 AND team_id = $3",
            company_id,
            source,
            team_id,
        )
    if user_id is not None:
        await conn.execute(
            "DELETE FROM crm_team_members WHERE company_id = $1 AND source = $2 AND user_id = $3",
            company_id,
            source,
            user_id,
        )
    rows = sorted(set(pairs))
    await conn.execute(
        "INSERT INTO crm_team_members (company_id, team_id, user_id, source)"
        " SELECT $1, t, u, $2 FROM unnest($3::text[], $4::text[]) AS p(t, u)"
        " ON CONFLICT DO NOTHING",
        company_id,
        source,
        [t for t, _ in rows],
        [u for _, u in rows],
    )


async def user_addresses(conn: DbConnection, company_id: str) -> set[str]:
    rows = await conn.fetch(
        "SELECT email FROM crm_addresses WHERE company_id = $1 AND kind = 'user'", company_id
    )
    return {row["email"] for row in rows}


async def linking_modes(
    conn: DbConnection, company_id: str, user_ids: Sequence[str]
) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT entity_id, attributes->>'linking_mode' AS mode FROM crm_entities"
        " WHERE company_id = $1 AND kind = 'user' AND entity_id = ANY($2::text[])"
        " AND NOT deleted",
        company_id,
        list(user_ids),
    )
    return {row["entity_id"]: row["mode"] for row in rows if row["mode"]}


async def persons_by_email(
    conn: DbConnection, company_id: str, emails: Sequence[str]
) -> dict[str, list[str]]:
    rows = await conn.fetch(
        "SELECT a.email, a.entity_id FROM crm_addresses a JOIN crm_entities e"
        " ON e.company_id = a.company_id AND e.kind = 'person' AND e.entity_id = a.entity_id"
        " WHERE a.company_id = $1 AND a.kind = 'person' AND a.email = ANY($2::text[])"
        " AND NOT e.deleted",
        company_id,
        list(set(emails)),
    )
    found: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        found[row["email"]].append(row["entity_id"])
    return dict(found)


async def organizations_of_persons(
    conn: DbConnection, company_id: str, person_ids: Sequence[str]
) -> dict[str, str | None]:
    """Each person's organization, when that organization is not deleted."""
    rows = await conn.fetch(
        "SELECT p.entity_id, o.entity_id AS organization_id FROM crm_entities p"
        " LEFT JOIN crm_entities o ON o.company_id = p.company_id AND o.kind = 'organization'"
        " AND o.entity_id = p.attributes->>'organization_id' AND NOT o.deleted"
        " WHERE p.company_id = $1 AND p.kind = 'person' AND p.entity_id = ANY($2::text[])",
        company_id,
        list(set(person_ids)),
    )
    return {row["entity_id"]: row["organization_id"] for row in rows}


async def open_items_of_persons(
    conn: DbConnection, company_id: str, person_ids: Sequence[str]
) -> dict[str, list[tuple[ItemCandidate, datetime]]]:
    """Per person, the open items they are on, each with when the linker first knew it."""
    rows = await conn.fetch(
        "SELECT ip.person_id, ip.kind, ip.item_id, e.attributes->>'title' AS title,"
        " e.known_since FROM crm_item_persons ip JOIN crm_entities e"
        " ON e.company_id = ip.company_id AND e.kind = ip.kind AND e.entity_id = ip.item_id"
        " WHERE ip.company_id = $1 AND ip.person_id = ANY($2::text[]) AND ip.open"
        " AND NOT e.deleted",
        company_id,
        list(set(person_ids)),
    )
    found: dict[str, list[tuple[ItemCandidate, datetime]]] = defaultdict(list)
    for row in rows:
        candidate = ItemCandidate(row["kind"], row["item_id"], row["title"])
        found[row["person_id"]].append((candidate, row["known_since"]))
    return dict(found)


async def item_titles(
    conn: DbConnection, company_id: str, items: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], str | None]:
    rows = await conn.fetch(
        "SELECT e.kind, e.entity_id, e.attributes->>'title' AS title FROM crm_entities e"
        " JOIN unnest($2::text[], $3::text[]) AS w(kind, entity_id)"
        " ON e.kind = w.kind AND e.entity_id = w.entity_id WHERE e.company_id = $1",
        company_id,
        [kind for kind, _ in items],
        [entity_id for _, entity_id in items],
    )
    return {(row["kind"], row["entity_id"]): row["title"] for row in rows}


async def threads_with_addresses(
    conn: DbConnection, company_id: str, emails: Sequence[str]
) -> list[UUID]:
    """Threads of the company on which any of `emails` takes part."""
    rows = await conn.fetch(
        "SELECT DISTINCT thread_id FROM thread_participants"
        " WHERE company_id = $1 AND email = ANY($2::text[])",
        company_id,
        list(set(emails)),
    )
    return [row["thread_id"] for row in rows]


async def threads_linked_to(
    conn: DbConnection, company_id: str, kind: str, entity_id: str
) -> list[UUID]:
    rows = await conn.fetch(
        "SELECT thread_id FROM thread_links WHERE company_id = $1 AND kind = $2 AND entity_id = $3",
        company_id,
        kind,
        entity_id,
    )
    return [row["thread_id"] for row in rows]


async def persons_of_organization(
    conn: DbConnection, company_id: str, organization_id: str
) -> list[str]:
    rows = await conn.fetch(
        "SELECT entity_id FROM crm_entities WHERE company_id = $1 AND kind = 'person'"
        " AND attributes->>'organization_id' = $2 AND NOT deleted",
        company_id,
        organization_id,
    )
    return [row["entity_id"] for row in rows]


async def addresses_of_persons(
    conn: DbConnection, company_id: str, person_ids: Sequence[str]
) -> list[str]:
    rows = await conn.fetch(
        "SELECT email FROM crm_addresses WHERE company_id = $1 AND kind = 'person'"
        " AND entity_id = ANY($2::text[])",
        company_id,
        list(set(person_ids)),
    )
    return [row["email"] for row in rows]


# -- accounts ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountFacts:
    account_id: str
    company_id: str
    owner_user_id: str
    email: str
    account_type: str
    member_user_ids: tuple[str, ...] = ()


async def save_accounts(conn: DbConnection, accounts: Sequence[AccountFacts]) -> None:
    """Upsert accounts and replace their member lists (latest word wins)."""
    if not accounts:
        return
    await conn.execute(
        "INSERT INTO accounts (account_id, company_id, owner_user_id, email, account_type)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])"
        " ON CONFLICT (account_id) DO UPDATE SET owner_user_id = EXCLUDED.owner_user_id,"
        " email = EXCLUDED.email, account_type = EXCLUDED.account_type",
        [a.account_id for a in accounts],
        [a.company_id for a in accounts],
        [a.owner_user_id for a in accounts],
        [a.email for a in accounts],
        [a.account_type for a in accounts],
    )
    ids = [a.account_id for a in accounts]
    await conn.execute("DELETE FROM account_members WHERE account_id = ANY($1::text[])", ids)
    pairs = sorted({(a.account_id, m) for a in accounts for m in a.member_user_ids})
    await conn.execute(
        "INSERT INTO account_members (account_id, user_id)"
        " SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
        [p[0] for p in pairs],
        [p[1] for p in pairs],
    )


async def set_account_connected(conn: DbConnection, account_id: str, connected: bool) -> None:
    await conn.execute(
        "UPDATE accounts SET connected = $2 WHERE account_id = $1", account_id, connected
    )


async def account_facts(conn: DbConnection, account_id: str) -> AccountFacts | None:
    row = await conn.fetchrow(
        "SELECT a.*, coalesce((SELECT array_agg(user_id ORDER BY user_id) FROM account_members m"
        " WHERE m.account_id = a.account_id), '{}') AS members FROM accounts a"
        " WHERE account_id = $1",
        account_id,
    )
    if row is None:
        return None
    return AccountFacts(
        row["account_id"],
        row["company_id"],
        row["owner_user_id"],
        row["email"],
        row["account_type"],
        tuple(row["members"]),
    )


# -- messages and their mailbox places --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageRow:
    company_id: str
    message_key: str
    message_id: str | None
    subject: str
    sent_at: datetime | None
    sender: Address | None
    recipients: tuple[tuple[str, Address], ...]
    snippet: str
    has_html: bool
    attachments: tuple[dict[str, Any], ...]
    raw_sha256: str
    size: int | None
    parse_error: str | None
    too_large: bool


async def insert_messages(conn: DbConnection, rows: Sequence[MessageRow]) -> None:
    """Store each message once per company; a copy from another mailbox changes nothing."""
    if not rows:
        return
    await conn.execute(
        "INSERT INTO messages (company_id, message_key, message_id, subject, sent_at, sender,"
        " recipients, snippet, has_html, attachments, raw_sha256, size, parse_error, too_large)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],"
        " $5::timestamptz[], $6::jsonb[], $7::jsonb[], $8::text[], $9::boolean[], $10::jsonb[],"
        " $11::text[], $12::bigint[], $13::text[], $14::boolean[])"
        " ON CONFLICT (company_id, message_key) DO NOTHING",
        [r.company_id for r in rows],
        [r.message_key for r in rows],
        [r.message_id for r in rows],
        [r.subject for r in rows],
        [r.sent_at for r in rows],
        [_address_json(r.sender) for r in rows],
        [
            json.dumps([{"role": role, **_address_dict(a)} for role, a in r.recipients])
            for r in rows
        ],
        [r.snippet for r in rows],
        [r.has_html for r in rows],
        [json.dumps(list(r.attachments)) for r in rows],
        [r.raw_sha256 for r in rows],
        [r.size for r in rows],
        [r.parse_error for r in rows],
        [r.too_large for r in rows],
    )


@dataclass(frozen=True, slots=True)
class Location:
    account_id: str
    folder: str
    uidvalidity: int
    uid: int
    message_key: str
    folder_role: str


async def record_locations(conn: DbConnection, locations: Sequence[Location]) -> None:
    # One row per place: ON CONFLICT DO UPDATE refuses a place twice in one statement.
    locations = list(
        {(loc.account_id, loc.folder, loc.uidvalidity, loc.uid): loc for loc in locations}.values()
    )
    if not locations:
        return
    await conn.execute(
        "INSERT INTO message_locations (account_id, folder, uidvalidity, uid, message_key,"
        " folder_role) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[],"
        " $5::text[], $6::text[]) ON CONFLICT (account_id, folder, uidvalidity, uid)"
        " DO UPDATE SET message_key = EXCLUDED.message_key, folder_role = EXCLUDED.folder_role",
        [loc.account_id for loc in locations],
        [loc.folder for loc in locations],
        [loc.uidvalidity for loc in locations],
        [loc.uid for loc in locations],
        [loc.message_key for loc in locations],
        [loc.folder_role for loc in locations],
    )


async def deleted_keys(
    conn: DbConnection, pairs: Sequence[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which (account, message key) pairs a user deleted in the CRM (R18)."""
    rows = await conn.fetch(
        "SELECT d.account_id, d.message_key FROM deleted_messages d"
        " JOIN unnest($1::text[], $2::text[]) AS w(account_id, message_key)"
        " ON d.account_id = w.account_id AND d.message_key = w.message_key",
        [a for a, _ in pairs],
        [k for _, k in pairs],
    )
    return {(row["account_id"], row["message_key"]) for row in rows}


async def filed_keys(
    conn: DbConnection, pairs: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], UUID]:
    """Which (account, message key) pairs are already in a thread, and which."""
    rows = await conn.fetch(
        "SELECT t.account_id, t.message_key, t.thread_id FROM thread_messages t"
        " JOIN unnest($1::text[], $2::text[]) AS w(account_id, message_key)"
        " ON t.account_id = w.account_id AND t.message_key = w.message_key",
        [a for a, _ in pairs],
        [k for _, k in pairs],
    )
    return {(row["account_id"], row["message_key"]): row["thread_id"] for row in rows}


async def threads_by_conversation_key(
    conn: DbConnection, pairs: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], UUID]:
    """(account, Message-ID or provider thread key) → the thread that knows it (R11)."""
    rows = await conn.fetch(
        "SELECT i.account_id, i.message_id, i.thread_id FROM thread_message_ids i"
        " JOIN unnest($1::text[], $2::text[]) AS w(account_id, message_id)"
        " ON i.account_id = w.account_id AND i.message_id = w.message_id",
        [a for a, _ in pairs],
        [k for _, k in pairs],
    )
    return {(row["account_id"], row["message_id"]): row["thread_id"] for row in rows}


async def conversation_key_of(conn: DbConnection, account_id: str, thread_id: str) -> str | None:
    """One Message-ID (or provider key) the account's thread `thread_id` is known by."""
    try:
        key = UUID(thread_id)
    except ValueError:
        return None
    found: str | None = await conn.fetchval(
        "SELECT message_id FROM thread_message_ids WHERE account_id = $1 AND thread_id = $2"
        " ORDER BY message_id LIMIT 1",
        account_id,
        key,
    )
    return found


async def subject_candidates(
    conn: DbConnection, pairs: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], list[ThreadCandidate]]:
    """(account, subject key) → that account's threads with the subject, with everyone on
    them (R11 fallback)."""
    rows = await conn.fetch(
        "SELECT t.account_id, t.subject_key, t.thread_id, t.first_message_at,"
        " t.last_message_at, array(SELECT p.email FROM thread_participants p"
        " WHERE p.thread_id = t.thread_id) AS participants FROM threads t"
        " JOIN unnest($1::text[], $2::text[]) AS w(account_id, subject_key)"
        " ON t.account_id = w.account_id AND t.subject_key = w.subject_key",
        [a for a, _ in pairs],
        [k for _, k in pairs],
    )
    found: dict[tuple[str, str], list[ThreadCandidate]] = defaultdict(list)
    for row in rows:
        found[(row["account_id"], row["subject_key"])].append(
            ThreadCandidate(
                row["thread_id"],
                frozenset(row["participants"]),
                row["first_message_at"],
                row["last_message_at"],
            )
        )
    return dict(found)


@dataclass(frozen=True, slots=True)
class NewThread:
    thread_id: UUID
    company_id: str
    account_id: str
    owner_user_id: str
    account_type: str
    subject: str
    subject_key: str
    visibility: str


async def create_threads(conn: DbConnection, threads: Sequence[NewThread]) -> None:
    if not threads:
        return
    await conn.execute(
        "INSERT INTO threads (thread_id, company_id, account_id, owner_user_id, account_type,"
        " subject, subject_key, visibility) SELECT * FROM unnest($1::uuid[], $2::text[],"
        " $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])"
        " ON CONFLICT (thread_id) DO NOTHING",
        [t.thread_id for t in threads],
        [t.company_id for t in threads],
        [t.account_id for t in threads],
        [t.owner_user_id for t in threads],
        [t.account_type for t in threads],
        [t.subject for t in threads],
        [t.subject_key for t in threads],
        [t.visibility for t in threads],
    )


@dataclass(frozen=True, slots=True)
class Membership:
    """An account's copy of a message, filed into a thread."""

    account_id: str
    message_key: str
    message_uid: UUID
    thread_id: UUID
    company_id: str
    sent_at: datetime | None
    outgoing: bool
    unread: bool


async def add_memberships(conn: DbConnection, memberships: Sequence[Membership]) -> None:
    if not memberships:
        return
    await conn.execute(
        "INSERT INTO thread_messages (account_id, message_key, message_uid, thread_id,"
        " company_id, sent_at, outgoing, unread) SELECT * FROM unnest($1::text[], $2::text[],"
        " $3::uuid[], $4::uuid[], $5::text[], $6::timestamptz[], $7::boolean[],"
        " $8::boolean[]) ON CONFLICT (account_id, message_key) DO NOTHING",
        [m.account_id for m in memberships],
        [m.message_key for m in memberships],
        [m.message_uid for m in memberships],
        [m.thread_id for m in memberships],
        [m.company_id for m in memberships],
        [m.sent_at for m in memberships],
        [m.outgoing for m in memberships],
        [m.unread for m in memberships],
    )


async def add_conversation_keys(conn: DbConnection, keys: Sequence[tuple[str, str, UUID]]) -> None:
    """Remember (account, Message-ID or provider key) → thread; the first thread wins."""
    if not keys:
        return
    await conn.execute(
        "INSERT INTO thread_message_ids (account_id, message_id, thread_id)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[])"
        " ON CONFLICT (account_id, message_id) DO NOTHING",
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
    )


@dataclass(frozen=True, slots=True)
class Participant:
    thread_id: UUID
    company_id: str
    email: str
    name: str | None
    external: bool


async def add_participants(conn: DbConnection, participants: Sequence[Participant]) -> None:
    unique: dict[tuple[UUID, str], Participant] = {}
    for p in participants:
        # The first mention names the participant, unless it came without a name.
        known = unique.get((p.thread_id, p.email))
        if known is None or (known.name is None and p.name is not None):
            unique[(p.thread_id, p.email)] = p
    participants = list(unique.values())
    if not participants:
        return
    await conn.execute(
        "INSERT INTO thread_participants (thread_id, company_id, email, name, external)"
        " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::boolean[])"
        " ON CONFLICT (thread_id, email) DO UPDATE"
        " SET name = COALESCE(thread_participants.name, EXCLUDED.name)",
        [p.thread_id for p in participants],
        [p.company_id for p in participants],
        [p.email for p in participants],
        [p.name for p in participants],
        [p.external for p in participants],
    )


async def refresh_threads(
    conn: DbConnection, thread_ids: Sequence[UUID], unarchive: Sequence[UUID] = ()
) -> None:
    """Recount messages, dates and unread state from the memberships; bring the threads in
    `unarchive` back to the inbox (new mail arrived in them)."""
    if not thread_ids:
        return
    await conn.execute(
        "UPDATE threads t SET message_count = s.n, first_message_at = s.first,"
        " last_message_at = s.last, unread = s.unread,"
        " archived = t.archived AND NOT (t.thread_id = ANY($2::uuid[]))"
        " FROM (SELECT thread_id, count(*) AS n, min(sent_at) AS first, max(sent_at) AS last,"
        " bool_or(unread) AS unread FROM thread_messages WHERE thread_id = ANY($1::uuid[])"
        " GROUP BY thread_id) s WHERE t.thread_id = s.thread_id",
        list(set(thread_ids)),
        list(set(unarchive)),
    )


# -- links ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkState:
    """What automation must respect on one thread."""

    links: tuple[Link, ...]
    unlinked: frozenset[tuple[str, str]]
    manual_kinds: frozenset[str]
    asked: dict[str, frozenset[str]]


async def link_states(conn: DbConnection, thread_ids: Sequence[UUID]) -> dict[UUID, LinkState]:
    ids = list(set(thread_ids))
    links = await conn.fetch(
        "SELECT thread_id, kind, entity_id, origin FROM thread_links"
        " WHERE thread_id = ANY($1::uuid[]) ORDER BY kind, entity_id",
        ids,
    )
    unlinks = await conn.fetch(
        "SELECT thread_id, kind, entity_id FROM thread_unlinks WHERE thread_id = ANY($1::uuid[])",
        ids,
    )
    manual = await conn.fetch(
        "SELECT thread_id, kind FROM thread_manual_kinds WHERE thread_id = ANY($1::uuid[])", ids
    )
    asked = await conn.fetch(
        "SELECT thread_id, kind, candidates FROM thread_link_choices"
        " WHERE thread_id = ANY($1::uuid[])",
        ids,
    )
    by_thread: dict[UUID, dict[str, Any]] = {
        i: {"links": [], "unlinked": set(), "manual": set(), "asked": {}} for i in ids
    }
    for row in links:
        by_thread[row["thread_id"]]["links"].append(
            Link(row["kind"], row["entity_id"], row["origin"])
        )
    for row in unlinks:
        by_thread[row["thread_id"]]["unlinked"].add((row["kind"], row["entity_id"]))
    for row in manual:
        by_thread[row["thread_id"]]["manual"].add(row["kind"])
    for row in asked:
        by_thread[row["thread_id"]]["asked"][row["kind"]] = frozenset(row["candidates"])
    return {
        thread_id: LinkState(
            tuple(state["links"]),
            frozenset(state["unlinked"]),
            frozenset(state["manual"]),
            dict(state["asked"]),
        )
        for thread_id, state in by_thread.items()
    }


async def external_participants_of(
    conn: DbConnection, thread_ids: Sequence[UUID]
) -> dict[UUID, list[str]]:
    rows = await conn.fetch(
        "SELECT thread_id, email FROM thread_participants"
        " WHERE thread_id = ANY($1::uuid[]) AND external ORDER BY email",
        list(set(thread_ids)),
    )
    found: dict[UUID, list[str]] = defaultdict(list)
    for row in rows:
        found[row["thread_id"]].append(row["email"])
    return dict(found)


async def add_links(
    conn: DbConnection, company_id: str, links: Sequence[tuple[UUID, Link]]
) -> None:
    """Add links; an existing link keeps its origin unless a person makes it now."""
    unique: dict[tuple[UUID, str, str], tuple[UUID, Link]] = {}
    for thread_id, link in links:
        key = (thread_id, link.kind, link.entity_id)
        if key not in unique or link.origin == "manual":
            unique[key] = (thread_id, link)
    links = list(unique.values())
    if not links:
        return
    await conn.execute(
        "INSERT INTO thread_links (thread_id, company_id, kind, entity_id, origin)"
        " SELECT t, $1, k, e, o FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[])"
        " AS w(t, k, e, o) ON CONFLICT (thread_id, kind, entity_id) DO UPDATE"
        " SET origin = CASE WHEN EXCLUDED.origin = 'manual' THEN 'manual'"
        " ELSE thread_links.origin END",
        company_id,
        [t for t, _ in links],
        [link.kind for _, link in links],
        [link.entity_id for _, link in links],
        [link.origin for _, link in links],
    )


async def remove_links(conn: DbConnection, links: Sequence[tuple[UUID, Link]]) -> None:
    if not links:
        return
    await conn.execute(
        "DELETE FROM thread_links l USING unnest($1::uuid[], $2::text[], $3::text[])"
        " AS w(t, k, e) WHERE l.thread_id = w.t AND l.kind = w.k AND l.entity_id = w.e",
        [t for t, _ in links],
        [link.kind for _, link in links],
        [link.entity_id for _, link in links],
    )


async def remove_links_to(conn: DbConnection, company_id: str, kind: str, entity_id: str) -> None:
    await conn.execute(
        "DELETE FROM thread_links WHERE company_id = $1 AND kind = $2 AND entity_id = $3",
        company_id,
        kind,
        entity_id,
    )


async def record_manual(
    conn: DbConnection, thread_id: UUID, kind: str, unlinked_entity_id: str | None
) -> None:
    """A user linked or unlinked `kind` by hand (and which item they unlinked, if so)."""
    await conn.execute(
        "INSERT INTO thread_manual_kinds (thread_id, kind) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        thread_id,
        kind,
    )
    if unlinked_entity_id is None:
        await conn.execute(
            "DELETE FROM thread_unlinks WHERE thread_id = $1 AND kind = $2", thread_id, kind
        )
    else:
        await conn.execute(
            "INSERT INTO thread_unlinks (thread_id, kind, entity_id) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING",
            thread_id,
            kind,
            unlinked_entity_id,
        )


async def forget_unlink(conn: DbConnection, thread_id: UUID, kind: str, entity_id: str) -> None:
    await conn.execute(
        "DELETE FROM thread_unlinks WHERE thread_id = $1 AND kind = $2 AND entity_id = $3",
        thread_id,
        kind,
        entity_id,
    )


async def save_choices(
    conn: DbConnection, choices: Sequence[tuple[UUID, str, Sequence[str]]]
) -> None:
    for thread_id, kind, candidates in choices:
        await conn.execute(
            "INSERT INTO thread_link_choices (thread_id, kind, candidates) VALUES ($1, $2, $3)"
            " ON CONFLICT (thread_id, kind) DO UPDATE SET candidates = EXCLUDED.candidates",
            thread_id,
            kind,
            sorted(candidates),
        )


# -- threads as a whole -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThreadState:
    thread_id: UUID
    company_id: str
    account_id: str
    owner_user_id: str
    account_type: str
    subject: str
    visibility: str
    archived: bool
    unread: bool
    created_at: datetime
    last_message_at: datetime | None
    message_count: int
    participants: tuple[Address, ...]
    links: tuple[Link, ...]


async def thread_states(conn: DbConnection, thread_ids: Sequence[UUID]) -> dict[UUID, ThreadState]:
    ids = list(set(thread_ids))
    rows = await conn.fetch("SELECT * FROM threads WHERE thread_id = ANY($1::uuid[])", ids)
    participants = await conn.fetch(
        "SELECT thread_id, email, name FROM thread_participants"
        " WHERE thread_id = ANY($1::uuid[]) AND external ORDER BY email",
        ids,
    )
    links = await conn.fetch(
        "SELECT thread_id, kind, entity_id, origin FROM thread_links"
        " WHERE thread_id = ANY($1::uuid[]) ORDER BY kind, entity_id",
        ids,
    )
    people: dict[UUID, list[Address]] = defaultdict(list)
    for p in participants:
        people[p["thread_id"]].append(Address(p["email"], p["name"]))
    linked: dict[UUID, list[Link]] = defaultdict(list)
    for lk in links:
        linked[lk["thread_id"]].append(Link(lk["kind"], lk["entity_id"], lk["origin"]))
    return {
        row["thread_id"]: ThreadState(
            thread_id=row["thread_id"],
            company_id=row["company_id"],
            account_id=row["account_id"],
            owner_user_id=row["owner_user_id"],
            account_type=row["account_type"],
            subject=row["subject"],
            visibility=row["visibility"],
            archived=row["archived"],
            unread=row["unread"],
            created_at=row["created_at"],
            last_message_at=row["last_message_at"],
            message_count=row["message_count"],
            participants=tuple(people[row["thread_id"]]),
            links=tuple(linked[row["thread_id"]]),
        )
        for row in rows
    }


async def set_archived(conn: DbConnection, thread_id: UUID, archived: bool) -> bool:
    """True when the thread changed."""
    changed = await conn.fetchval(
        "UPDATE threads SET archived = $2 WHERE thread_id = $1 AND archived <> $2 RETURNING true",
        thread_id,
        archived,
    )
    return bool(changed)


async def set_visibility(conn: DbConnection, thread_id: UUID, visibility: str) -> bool:
    changed = await conn.fetchval(
        "UPDATE threads SET visibility = $2 WHERE thread_id = $1 AND visibility <> $2"
        " RETURNING true",
        thread_id,
        visibility,
    )
    return bool(changed)


async def mark_read(conn: DbConnection, thread_id: UUID, read: bool) -> bool:
    """Mark every incoming message of the thread read (or unread); True when it changed."""
    await conn.execute(
        "UPDATE thread_messages SET unread = $2 AND NOT outgoing WHERE thread_id = $1",
        thread_id,
        not read,
    )
    changed = await conn.fetchval(
        "UPDATE threads t SET unread = coalesce((SELECT bool_or(unread) FROM thread_messages m"
        " WHERE m.thread_id = t.thread_id), false) WHERE thread_id = $1"
        " AND unread IS DISTINCT FROM coalesce((SELECT bool_or(unread) FROM thread_messages m"
        " WHERE m.thread_id = t.thread_id), false) RETURNING true",
        thread_id,
    )
    return bool(changed)


@dataclass(frozen=True, slots=True)
class FiledMessage:
    """An account's copy of a message, with where it sits in the mailbox."""

    message_uid: UUID
    message_key: str
    locations: tuple[Location, ...]


async def thread_messages(conn: DbConnection, thread_id: UUID) -> list[FiledMessage]:
    rows = await conn.fetch(
        "SELECT m.message_uid, m.message_key, l.folder, l.uidvalidity, l.uid, l.folder_role,"
        " m.account_id FROM thread_messages m LEFT JOIN message_locations l"
        " ON l.account_id = m.account_id AND l.message_key = m.message_key"
        " WHERE m.thread_id = $1 ORDER BY m.sent_at NULLS FIRST, m.message_key, l.folder, l.uid",
        thread_id,
    )
    return _filed(rows)


async def filed_message(conn: DbConnection, message_uid: UUID) -> tuple[UUID, FiledMessage] | None:
    rows = await conn.fetch(
        "SELECT m.thread_id, m.message_uid, m.message_key, l.folder, l.uidvalidity, l.uid,"
        " l.folder_role, m.account_id FROM thread_messages m LEFT JOIN message_locations l"
        " ON l.account_id = m.account_id AND l.message_key = m.message_key"
        " WHERE m.message_uid = $1",
        message_uid,
    )
    if not rows:
        return None
    return rows[0]["thread_id"], _filed(rows)[0]


def _filed(rows: Sequence[Any]) -> list[FiledMessage]:
    by_uid: dict[UUID, tuple[str, list[Location]]] = {}
    for row in rows:
        key, places = by_uid.setdefault(row["message_uid"], (row["message_key"], []))
        if row["folder"] is not None:
            places.append(
                Location(
                    row["account_id"],
                    row["folder"],
                    row["uidvalidity"],
                    row["uid"],
                    key,
                    row["folder_role"],
                )
            )
    return [FiledMessage(uid, key, tuple(places)) for uid, (key, places) in by_uid.items()]


async def forget_messages(
    conn: DbConnection, account_id: str, message_keys: Sequence[str], *, tombstone: bool
) -> list[UUID]:
    """Take an account's copies of messages out of their threads (and their mailbox places);
    with `tombstone`, they are never filed again (R18). Returns the threads they were in."""
    if tombstone:
        await conn.execute(
            "INSERT INTO deleted_messages (account_id, message_key)"
            " SELECT $1, k FROM unnest($2::text[]) AS k ON CONFLICT DO NOTHING",
            account_id,
            list(message_keys),
        )
    await conn.execute(
        "DELETE FROM message_locations WHERE account_id = $1 AND message_key = ANY($2::text[])",
        account_id,
        list(message_keys),
    )
    rows = await conn.fetch(
        "DELETE FROM thread_messages WHERE account_id = $1 AND message_key = ANY($2::text[])"
        " RETURNING thread_id",
        account_id,
        list(message_keys),
    )
    return list({row["thread_id"] for row in rows})


# Every table that hangs off a thread, deleted with it (no cascading foreign keys, see 0002).
_THREAD_ROWS = (
    "thread_messages",
    "thread_message_ids",
    "thread_participants",
    "thread_links",
    "thread_manual_kinds",
    "thread_unlinks",
    "thread_link_choices",
)


async def delete_empty_threads(conn: DbConnection, thread_ids: Sequence[UUID]) -> list[UUID]:
    """Delete those of the threads that have no message left; returns them."""
    rows = await conn.fetch(
        "DELETE FROM threads t WHERE t.thread_id = ANY($1::uuid[]) AND NOT EXISTS"
        " (SELECT 1 FROM thread_messages m WHERE m.thread_id = t.thread_id) RETURNING thread_id",
        list(set(thread_ids)),
    )
    deleted = [row["thread_id"] for row in rows]
    await _delete_thread_rows(conn, deleted)
    return deleted


async def delete_thread(conn: DbConnection, thread_id: UUID) -> None:
    await conn.execute("DELETE FROM threads WHERE thread_id = $1", thread_id)
    await _delete_thread_rows(conn, [thread_id])


async def _delete_thread_rows(conn: DbConnection, thread_ids: Sequence[UUID]) -> None:
    if not thread_ids:
        return
    for table in _THREAD_ROWS:
        await conn.execute(f"DELETE FROM {table} WHERE thread_id = ANY($1::uuid[])", thread_ids)


async def location_of(
    conn: DbConnection, account_id: str, folder: str, uidvalidity: int, uid: int
) -> str | None:
    """The message key recorded at a mailbox place, if any."""
    key: str | None = await conn.fetchval(
        "SELECT message_key FROM message_locations WHERE account_id = $1 AND folder = $2"
        " AND uidvalidity = $3 AND uid = $4",
        account_id,
        folder,
        uidvalidity,
        uid,
    )
    return key


async def remove_location(
    conn: DbConnection, account_id: str, folder: str, uidvalidity: int, uid: int
) -> None:
    await conn.execute(
        "DELETE FROM message_locations WHERE account_id = $1 AND folder = $2"
        " AND uidvalidity = $3 AND uid = $4",
        account_id,
        folder,
        uidvalidity,
        uid,
    )


def _address_dict(address: Address) -> dict[str, str | None]:
    return {"email": address.email, "name": address.name}


def _address_json(address: Address | None) -> str | None:
    return None if address is None else json.dumps(_address_dict(address))


async def forget_manual_kind(conn: DbConnection, thread_id: UUID, kind: str) -> None:
    await conn.execute(
        "DELETE FROM thread_manual_kinds WHERE thread_id = $1 AND kind = $2", thread_id, kind
    )


async def prune_participants(conn: DbConnection, thread_id: UUID) -> None:
    """Drop participants no remaining message of the thread has (after a message left)."""
    await conn.execute(
        "DELETE FROM thread_participants p WHERE p.thread_id = $1 AND NOT EXISTS ("
        " SELECT 1 FROM thread_messages tm JOIN messages m ON m.company_id = tm.company_id"
        " AND m.message_key = tm.message_key WHERE tm.thread_id = $1"
        " AND (lower(m.sender->>'email') = p.email OR EXISTS (SELECT 1 FROM"
        " jsonb_array_elements(m.recipients) r WHERE lower(r->>'email') = p.email)))",
        thread_id,
    )


async def mark_colleagues(conn: DbConnection, company_id: str, emails: Sequence[str]) -> list[UUID]:
    """Recompute whether these addresses are customers on the company's threads: not when a
    user has them or they are the thread's own account (R12). Returns the threads changed."""
    rows = await conn.fetch(
        "UPDATE thread_participants p SET external = s.external FROM ("
        " SELECT q.thread_id, q.email, NOT (EXISTS (SELECT 1 FROM crm_addresses a"
        " WHERE a.company_id = q.company_id AND a.kind = 'user' AND a.email = q.email)"
        " OR EXISTS (SELECT 1 FROM threads t JOIN accounts ac ON ac.account_id = t.account_id"
        " WHERE t.thread_id = q.thread_id AND ac.email = q.email)) AS external"
        " FROM thread_participants q WHERE q.company_id = $1 AND q.email = ANY($2::text[])) s"
        " WHERE p.thread_id = s.thread_id AND p.email = s.email AND p.external <> s.external"
        " RETURNING p.thread_id",
        company_id,
        list(set(emails)),
    )
    return list({row["thread_id"] for row in rows})
