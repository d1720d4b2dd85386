"""Every SQL statement of the read API; returns read-side value objects, never driver records.

Invariants:
- nothing here crosses companies: every statement is bound to the acting user's company, also
  where a key (thread id, account id) would be unique anyway;
- the list statements (inbox, item history) filter with SQL predicates that mirror the rules
  of `visibility.py`, each marked with the rule it mirrors; single objects (a thread to open,
  an item's detail view, the items a thread links to) are read as facts (`ThreadAccess`,
  `ItemAccess`) for `visibility.py` itself to judge;
- lists are ordered newest `last_message_at` first (undated threads last), `thread_id`
  breaking ties, and paged by keyset (`Position`), never by OFFSET: a page costs the same
  wherever it is, and a thread that arrives meanwhile neither repeats nor hides another.

Why the inbox statement has its shape: it is the union of the ways a thread gets into the
viewer's inbox. The threads they manage (owned; of a team account they are a member of) are
read a page at a time from indexes in the inbox's order, so their cost does not grow with the
mailbox. Shared threads they take part in have no such order: they are found either from
the viewer's participations (all read, then sorted) or by walking the company's shared
threads newest first, no further back than the managed page reaches, whichever is cheaper
for the viewer (`ParticipationScan`); both give the same page.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from mailsync_linker.visibility import ItemAccess, ThreadAccess, Viewer
from mailsync_platform.database import DbConnection

# Persons and organizations have no `visible_to`: everyone in the company sees them.
_COMPANY_WIDE_KINDS = frozenset({"person", "organization"})
# The contract's default for a deal, lead or project that does not say (CrmDeal.visible_to).
_DEFAULT_ITEM_VISIBILITY = "company"


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ends: the last thread's sort key. The next page starts after it."""

    last_message_at: datetime | None
    thread_id: UUID


@dataclass(frozen=True, slots=True)
class Person:
    email: str
    name: str | None


@dataclass(frozen=True, slots=True)
class LinkedItem:
    kind: str
    entity_id: str
    origin: str


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    """A thread as the inbox and detail views list it; `links` are all of its links, the API
    shows those the viewer may see."""

    thread_id: UUID
    account_id: str
    subject: str
    snippet: str
    participants: tuple[Person, ...]
    last_message_at: datetime | None
    message_count: int
    unread: bool
    archived: bool
    visibility: str
    links: tuple[LinkedItem, ...]

    @property
    def position(self) -> Position:
        return Position(self.last_message_at, self.thread_id)


@dataclass(frozen=True, slots=True)
class ManagedAccount:
    """A mailbox the viewer manages, with its unread inbox (not archived) threads."""

    account_id: str
    email: str
    account_type: str
    unread_threads: int


@dataclass(frozen=True, slots=True)
class AttachmentFacts:
    """An attachment as ingest described it (`parse_message(raw).attachments`, same order)."""

    filename: str | None
    content_type: str
    size: int
    content_id: str | None


@dataclass(frozen=True, slots=True)
class StoredMessage:
    message_uid: UUID
    sender: Person | None
    recipients: tuple[tuple[str, Person], ...]
    subject: str
    sent_at: datetime | None
    snippet: str
    outgoing: bool
    attachments: tuple[AttachmentFacts, ...]
    raw_sha256: str
    parse_error: str | None
    too_large: bool


@dataclass(frozen=True, slots=True)
class RawReference:
    """Where a message's raw MIME is (claim-check) and whether it holds only the header."""

    raw_sha256: str
    too_large: bool


# -- the viewer and the items ----------------------------------------------------------------

# A user's teams as both sides state them (the user's team_ids, the team's member list), less
# teams the CRM deleted: a team that is gone grants nothing, one not heard of yet does.
_TEAMS_OF_USER = (
    "SELECT DISTINCT m.team_id FROM crm_team_members m WHERE m.company_id = $1"
    " AND m.user_id = {user} AND NOT EXISTS (SELECT 1 FROM crm_entities gone"
    " WHERE gone.company_id = m.company_id AND gone.kind = 'team'"
    " AND gone.entity_id = m.team_id AND gone.deleted)"
)


async def viewer(conn: DbConnection, company_id: str, user_id: str) -> Viewer:
    """The acting user with what visibility depends on: admin flag, teams, own addresses. A
    user the read model does not know (yet) is a plain user with no team and no address."""
    row = await conn.fetchrow(
        "SELECT coalesce((SELECT e.attributes->>'is_admin' = 'true' FROM crm_entities e"
        " WHERE e.company_id = $1 AND e.kind = 'user' AND e.entity_id = $2 AND NOT e.deleted),"
        " false) AS is_admin,"
        f" array({_TEAMS_OF_USER.format(user='$2')}) AS team_ids,"
        " array(SELECT a.email FROM crm_addresses a WHERE a.company_id = $1"
        " AND a.kind = 'user' AND a.entity_id = $2) AS addresses",
        company_id,
        user_id,
    )
    assert row is not None  # a SELECT without FROM always answers one row
    return Viewer(
        company_id=company_id,
        user_id=user_id,
        is_admin=bool(row["is_admin"]),
        team_ids=frozenset(row["team_ids"]),
        addresses=frozenset(row["addresses"]),
    )


async def items_access(
    conn: DbConnection, company_id: str, items: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], ItemAccess]:
    """The live (not deleted) CRM items among `items` (kind, id), as visibility judges them;
    unknown and deleted items are absent."""
    if not items:
        return {}
    wanted = sorted(set(items))
    owner_teams = _TEAMS_OF_USER.format(user="e.attributes->>'owner_user_id'")
    rows = await conn.fetch(
        "SELECT e.kind, e.entity_id, e.attributes->>'owner_user_id' AS owner_user_id,"
        " e.attributes->>'visible_to' AS visible_to,"
        f" array({owner_teams}) AS owner_team_ids"
        " FROM unnest($2::text[], $3::text[]) AS w(kind, entity_id)"
        " JOIN crm_entities e ON e.company_id = $1 AND e.kind = w.kind"
        " AND e.entity_id = w.entity_id WHERE NOT e.deleted",
        company_id,
        [kind for kind, _ in wanted],
        [entity_id for _, entity_id in wanted],
    )
    found: dict[tuple[str, str], ItemAccess] = {}
    for row in rows:
        kind = row["kind"]
        visible_to = (
            "company"
            if kind in _COMPANY_WIDE_KINDS
            else row["visible_to"] or _DEFAULT_ITEM_VISIBILITY
        )
        found[(kind, row["entity_id"])] = ItemAccess(
            kind=kind,
            item_id=row["entity_id"],
            owner_user_id=row["owner_user_id"],
            visible_to=visible_to,
            owner_team_ids=frozenset(row["owner_team_ids"]),
        )
    return found


# -- accounts ----------------------------------------------------------------------------------

# visibility.manages (R2) for a whole account: its owner, and for a team account its members.
_MANAGED_ACCOUNT_IDS = (
    "SELECT own.account_id FROM accounts own WHERE own.company_id = $1"
    " AND own.owner_user_id = $2"
    " UNION SELECT m.account_id FROM account_members m JOIN accounts team"
    " ON team.account_id = m.account_id AND team.company_id = $1"
    " AND team.account_type = 'team' WHERE m.user_id = $2"
)

# visibility.manages (R2) for the thread `t`: its owner, and for a team account's thread the
# account's members. Parameters: $1 company, $2 acting user.
_MANAGES_THREAD = (
    "(t.owner_user_id = $2 OR (t.account_type = 'team' AND EXISTS (SELECT 1"
    " FROM account_members am WHERE am.account_id = t.account_id AND am.user_id = $2)))"
)


async def managed_accounts(
    conn: DbConnection, company_id: str, user_id: str
) -> list[ManagedAccount]:
    """The accounts the user manages (R2), each with its number of unread threads in the
    inbox (not archived) that the user manages."""
    rows = await conn.fetch(
        "SELECT a.account_id, a.email, a.account_type, (SELECT count(*) FROM threads t"
        " WHERE t.company_id = $1 AND t.account_id = a.account_id AND t.unread"
        f" AND NOT t.archived AND {_MANAGES_THREAD}) AS unread_threads"
        f" FROM accounts a WHERE a.account_id IN ({_MANAGED_ACCOUNT_IDS})"
        " ORDER BY a.email, a.account_id",
        company_id,
        user_id,
    )
    return [
        ManagedAccount(row["account_id"], row["email"], row["account_type"], row["unread_threads"])
        for row in rows
    ]


# -- thread lists ------------------------------------------------------------------------------

_ORDER = "last_message_at DESC NULLS LAST, thread_id DESC"
_THREAD_ORDER = "t.last_message_at DESC NULLS LAST, t.thread_id DESC"

PositionKind = Literal["first", "dated", "undated"]


def _position_kind(after: Position | None) -> PositionKind:
    if after is None:
        return "first"
    return "dated" if after.last_message_at is not None else "undated"


def _position_args(after: Position | None) -> list[Any]:
    if after is None:
        return []
    if after.last_message_at is None:
        return [after.thread_id]
    return [after.last_message_at, after.thread_id]


def _index_page(select: str, position: PositionKind, limit: str, at: int) -> str:
    """One page of `select` (threads `t` with `WHERE` conditions, no ORDER/LIMIT) after the
    position, as statements a `(..., last_message_at DESC NULLS LAST, thread_id DESC)` index
    answers in order. Dated and undated threads are separate scans: a row comparison is an
    index condition, but NULL never compares, and undated threads sort last. `at` is the
    number of the position's first parameter."""
    ordered = f"ORDER BY {_THREAD_ORDER} LIMIT {limit}"
    if position == "first":
        return f"({select} {ordered})"
    if position == "undated":
        return f"({select} AND t.last_message_at IS NULL AND t.thread_id < ${at} {ordered})"
    return (
        f"({select} AND (t.last_message_at, t.thread_id) < (${at}, ${at + 1}) {ordered})"
        f" UNION ALL ({select} AND t.last_message_at IS NULL {ordered})"
    )


def _after(position: PositionKind, at: int) -> str:
    """The same position as one condition, for statements that sort anyway."""
    if position == "first":
        return "true"
    if position == "undated":
        return f"(t.last_message_at IS NULL AND t.thread_id < ${at})"
    return f"((t.last_message_at, t.thread_id) < (${at}, ${at + 1}) OR t.last_message_at IS NULL)"


_SUMMARY_COLUMNS = (
    "t.thread_id, t.account_id, t.subject, t.last_message_at, t.message_count, t.unread,"
    " t.archived, t.visibility,"
    " coalesce((SELECT m.snippet FROM thread_messages tm JOIN messages m"
    " ON m.company_id = tm.company_id AND m.message_key = tm.message_key"
    " WHERE tm.thread_id = t.thread_id"
    " ORDER BY tm.sent_at DESC NULLS LAST, tm.message_key DESC LIMIT 1), '') AS snippet,"
    " coalesce((SELECT json_agg(json_build_object('email', p.email, 'name', p.name)"
    " ORDER BY p.email) FROM thread_participants p"
    " WHERE p.thread_id = t.thread_id AND p.external), '[]') AS participants,"
    " coalesce((SELECT json_agg(json_build_object('kind', l.kind, 'entity_id', l.entity_id,"
    " 'origin', l.origin) ORDER BY l.kind, l.entity_id) FROM thread_links l"
    " WHERE l.thread_id = t.thread_id), '[]') AS links"
)


ParticipationScan = Literal["participations", "timeline"]
"""How the inbox finds shared threads the viewer takes part in (R16): by reading all their
participations and sorting the threads (cheap while they are few), or by walking the
company's shared threads newest first and asking each whether the viewer is on it, no
further back than the page of threads they manage reaches (cheap when participations are
many: they are then mostly on the viewer's own threads, which fill that page quickly)."""

# Above this many participations the timeline is the cheaper walk (see ParticipationScan).
# Measured on a company of 1M threads: reading 5000 participations costs about 20 ms; past
# that, a viewer with that many is on one shared thread in 200, or has a mailbox of their
# own whose page bounds the walk, and walking the timeline costs less.
PARTICIPATIONS_READ_WHOLE = 5000


def _inbox_sql(position: PositionKind, one_account: bool, scan: ParticipationScan) -> str:
    """visibility.in_inbox as SQL. Parameters: $1 company, $2 user, $3 archived, $4 the
    user's addresses, $5 page size, $6 account (only with `one_account`), then the position.
    """
    at = 7 if one_account else 6
    account = " AND t.account_id = $6" if one_account else ""
    # R2 (visibility.manages): the viewer owns the thread.
    owned = _index_page(
        "SELECT t.thread_id, t.last_message_at FROM threads t WHERE t.company_id = $1"
        f" AND t.owner_user_id = $2 AND t.archived = $3{account}",
        position,
        "$5",
        at,
    )
    # R2 (visibility.manages): a thread of a team account the viewer is a member of; one
    # page per such account, each read in order from threads_inbox.
    team_accounts = (
        "SELECT m.account_id FROM account_members m JOIN accounts a"
        " ON a.account_id = m.account_id AND a.company_id = $1"
        " WHERE m.user_id = $2" + (" AND m.account_id = $6" if one_account else "")
    )
    team_page = _index_page(
        "SELECT t.thread_id, t.last_message_at FROM threads t WHERE t.company_id = $1"
        " AND t.account_id = team.account_id AND t.archived = $3 AND t.account_type = 'team'",
        position,
        "$5",
        at,
    )
    # Each branch is a subquery of its own: a branch may be two scans joined by UNION ALL,
    # which must not take the UNION that follows it for its own.
    managed = (
        f"SELECT thread_id, last_message_at FROM (SELECT * FROM ({owned}) o"
        f" UNION SELECT b.thread_id, b.last_message_at FROM ({team_accounts}) team"
        f" CROSS JOIN LATERAL ({team_page}) b) m ORDER BY {_ORDER} LIMIT $5"
    )
    # R16 (visibility.in_inbox): a shared thread one of the viewer's own addresses is on.
    # The threads the viewer owns are the first branch's.
    shared = (
        "SELECT t.thread_id, t.last_message_at FROM threads t WHERE t.company_id = $1"
        f" AND t.visibility = 'shared' AND t.archived = $3{account} AND t.owner_user_id <> $2"
    )
    ordered = f"ORDER BY {_THREAD_ORDER} LIMIT $5"
    if scan == "participations":
        # From each participation to its thread, and only that way round: left to itself the
        # planner may walk the whole timeline instead (hoping to stop early, or to hash the
        # participations), which costs every shared thread of the company. OFFSET 0 keeps
        # the lateral subquery from being flattened into a join it could turn around.
        participated = (
            "SELECT s.thread_id, s.last_message_at FROM thread_participants p"
            f" CROSS JOIN LATERAL ({shared} AND t.thread_id = p.thread_id"
            f" AND {_after(position, at)} OFFSET 0) s"
            " WHERE p.company_id = $1 AND p.email = ANY($4::text[])"
        )
    else:
        # A subquery per thread (not a join the planner could turn around), and no further
        # back than the last thread of the managed page: older ones cannot make this page.
        on_it = (
            f"{shared} AND (SELECT true FROM thread_participants p WHERE p.thread_id ="
            " t.thread_id AND p.email = ANY($4::text[]) LIMIT 1)"
        )
        undated = f"({on_it} AND t.last_message_at IS NULL {ordered})"
        reach = "t.last_message_at >= (SELECT reach FROM bound)"
        if position == "first":
            participated = f"({on_it} AND {reach} {ordered}) UNION ALL {undated}"
        elif position == "dated":
            participated = (
                f"({on_it} AND {reach} AND (t.last_message_at, t.thread_id) < (${at}, ${at + 1})"
                f" {ordered}) UNION ALL {undated}"
            )
        else:
            participated = (
                f"({on_it} AND t.last_message_at IS NULL AND t.thread_id < ${at} {ordered})"
            )
    return (
        f"WITH managed AS MATERIALIZED ({managed}),"
        # How far back the managed page reaches: its last thread's time when the page is
        # full of dated threads; otherwise every dated thread may still make the page.
        " bound AS (SELECT CASE WHEN count(*) = $5 AND count(last_message_at) = $5"
        " THEN min(last_message_at) ELSE '-infinity' END AS reach FROM managed),"
        " candidates AS (SELECT thread_id, last_message_at FROM managed"
        f" UNION SELECT * FROM ({participated}) p),"
        f" page AS (SELECT thread_id, last_message_at FROM candidates ORDER BY {_ORDER}"
        " LIMIT $5)"
        f" SELECT {_SUMMARY_COLUMNS} FROM page JOIN threads t ON t.thread_id = page.thread_id"
        f" ORDER BY {_THREAD_ORDER}"
    )


async def inbox_page(
    conn: DbConnection,
    viewer: Viewer,
    *,
    archived: bool,
    account_id: str | None,
    limit: int,
    after: Position | None,
    scan: ParticipationScan | None = None,
) -> list[ThreadSummary]:
    """One page of the viewer's Sales Inbox (R16) or Archive folder (R17), all accounts or
    one (which the caller has checked the viewer manages). `scan` forces a way of finding
    participations (both give the same page); by default it is chosen by their number."""
    addresses = sorted(viewer.addresses)
    if scan is None:
        participations = await conn.fetchval(
            "SELECT count(*) FROM (SELECT 1 FROM thread_participants WHERE company_id = $1"
            " AND email = ANY($2::text[]) LIMIT $3) p",
            viewer.company_id,
            addresses,
            PARTICIPATIONS_READ_WHOLE + 1,
        )
        scan = "participations" if participations <= PARTICIPATIONS_READ_WHOLE else "timeline"
    args: list[Any] = [viewer.company_id, viewer.user_id, archived, addresses, limit]
    if account_id is not None:
        args.append(account_id)
    args += _position_args(after)
    sql = _inbox_sql(_position_kind(after), account_id is not None, scan)
    rows = await conn.fetch(sql, *args)
    return [_summary(row) for row in rows]


def _item_history_sql(position: PositionKind) -> str:
    """visibility.in_item_history as SQL, for an item the viewer may see (the caller checks
    visibility.can_see_item). Parameters: $1 company, $2 user, $3 kind, $4 item id, $5 page
    size, then the position."""
    # R14: a linked thread shows in the detail view when it is shared, or to those who
    # manage it (visibility.manages); archived threads stay (R17).
    return (
        f"SELECT {_SUMMARY_COLUMNS} FROM thread_links l JOIN threads t"
        " ON t.thread_id = l.thread_id AND t.company_id = $1"
        " WHERE l.company_id = $1 AND l.kind = $3 AND l.entity_id = $4"
        f" AND (t.visibility = 'shared' OR {_MANAGES_THREAD}) AND {_after(position, 6)}"
        f" ORDER BY {_THREAD_ORDER} LIMIT $5"
    )


async def item_history_page(
    conn: DbConnection,
    viewer: Viewer,
    *,
    kind: str,
    item_id: str,
    limit: int,
    after: Position | None,
) -> list[ThreadSummary]:
    rows = await conn.fetch(
        _item_history_sql(_position_kind(after)),
        viewer.company_id,
        viewer.user_id,
        kind,
        item_id,
        limit,
        *_position_args(after),
    )
    return [_summary(row) for row in rows]


def _summary(row: Any) -> ThreadSummary:
    return ThreadSummary(
        thread_id=row["thread_id"],
        account_id=row["account_id"],
        subject=row["subject"],
        snippet=row["snippet"],
        participants=tuple(Person(p["email"], p["name"]) for p in json.loads(row["participants"])),
        last_message_at=row["last_message_at"],
        message_count=row["message_count"],
        unread=row["unread"],
        archived=row["archived"],
        visibility=row["visibility"],
        links=tuple(
            LinkedItem(lk["kind"], lk["entity_id"], lk["origin"]) for lk in json.loads(row["links"])
        ),
    )


# -- one thread --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThreadFacts:
    """A thread of the company as shown, and what visibility needs to judge it (its items are
    the live ones among its links)."""

    summary: ThreadSummary
    access: ThreadAccess


async def thread_facts(conn: DbConnection, company_id: str, thread_id: UUID) -> ThreadFacts | None:
    """The thread with its visibility facts; None when the company has no such thread."""
    row = await conn.fetchrow(
        f"SELECT {_SUMMARY_COLUMNS}, t.company_id, t.owner_user_id, t.account_type,"
        " array(SELECT am.user_id FROM account_members am"
        " WHERE am.account_id = t.account_id) AS member_user_ids,"
        " array(SELECT p.email FROM thread_participants p"
        " WHERE p.thread_id = t.thread_id) AS participant_addresses"
        " FROM threads t WHERE t.thread_id = $2 AND t.company_id = $1",
        company_id,
        thread_id,
    )
    if row is None:
        return None
    summary = _summary(row)
    items = await items_access(conn, company_id, [(lk.kind, lk.entity_id) for lk in summary.links])
    access = ThreadAccess(
        company_id=row["company_id"],
        owner_user_id=row["owner_user_id"],
        account_type=row["account_type"],
        visibility=row["visibility"],
        member_user_ids=frozenset(row["member_user_ids"]),
        participant_addresses=frozenset(row["participant_addresses"]),
        items=tuple(
            items[(lk.kind, lk.entity_id)]
            for lk in summary.links
            if (lk.kind, lk.entity_id) in items
        ),
    )
    return ThreadFacts(summary, access)


async def thread_messages(conn: DbConnection, thread_id: UUID) -> list[StoredMessage]:
    """The account's copies of the thread's messages, oldest first (undated ones first, as the
    write side orders them)."""
    rows = await conn.fetch(
        "SELECT tm.message_uid, tm.outgoing, m.subject, m.sent_at, m.sender, m.recipients,"
        " m.snippet, m.attachments, m.raw_sha256, m.parse_error, m.too_large"
        " FROM thread_messages tm JOIN messages m"
        " ON m.company_id = tm.company_id AND m.message_key = tm.message_key"
        " WHERE tm.thread_id = $1 ORDER BY tm.sent_at ASC NULLS FIRST, tm.message_key",
        thread_id,
    )
    return [
        StoredMessage(
            message_uid=row["message_uid"],
            sender=_person(json.loads(row["sender"])) if row["sender"] else None,
            recipients=tuple(
                (entry["role"], _person(entry)) for entry in json.loads(row["recipients"])
            ),
            subject=row["subject"],
            sent_at=row["sent_at"],
            snippet=row["snippet"],
            outgoing=row["outgoing"],
            attachments=tuple(
                AttachmentFacts(
                    filename=entry.get("filename"),
                    content_type=entry.get("content_type") or "application/octet-stream",
                    size=int(entry.get("size") or 0),
                    content_id=entry.get("content_id"),
                )
                for entry in json.loads(row["attachments"])
            ),
            raw_sha256=row["raw_sha256"],
            parse_error=row["parse_error"],
            too_large=row["too_large"],
        )
        for row in rows
    ]


async def raw_reference(
    conn: DbConnection, thread_id: UUID, message_uid: UUID
) -> RawReference | None:
    """Where the raw MIME of a message of the thread is; None when the thread has no such
    message."""
    row = await conn.fetchrow(
        "SELECT m.raw_sha256, m.too_large FROM thread_messages tm JOIN messages m"
        " ON m.company_id = tm.company_id AND m.message_key = tm.message_key"
        " WHERE tm.thread_id = $1 AND tm.message_uid = $2",
        thread_id,
        message_uid,
    )
    return None if row is None else RawReference(row["raw_sha256"], row["too_large"])


def _person(value: dict[str, Any]) -> Person:
    return Person(str(value.get("email") or ""), value.get("name"))
