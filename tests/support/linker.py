"""The linker's use cases against a real Postgres: a migrated schema, records applied through
the same use cases the app subscribes, and what they staged read back from the outbox.

`LinkerDb.apply` runs one record's use case in its own transaction, as the consumer does,
and returns the events that transaction staged. Builders make the records the CRM, ingest
and outbound would publish, with only what a test cares about spelled out.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.routing import Mount

from mailsync_contracts import (
    AnyEvent,
    CrmDeal,
    CrmEntityDeleted,
    CrmEntityDeletedData,
    CrmEntityUpserted,
    CrmEntityUpsertedData,
    CrmLead,
    CrmOrganization,
    CrmPerson,
    CrmProject,
    CrmTeam,
    CrmUser,
    EmailAddress,
    Envelope,
    IngestedAttachment,
    MessageExpunged,
    MessageExpungedData,
    MessageIngested,
    MessageIngestedData,
    RawMessageRef,
    decode,
)
from mailsync_linker.api import PREFIX, create_read_api
from mailsync_linker.app import MAIL_TYPES, USE_CASES
from mailsync_linker.handlers import mail_batch
from mailsync_linker.settings import LinkerSettings
from mailsync_mime.parsing import parse_message
from mailsync_platform.database import migrate
from mailsync_platform.service import ServiceSpec
from mailsync_rawstore import RawStore

COMPANY = "company-linker"
ANNA = "anna@sales.test"
BEN = "ben@sales.test"
CUSTOMER = "carla@customer.test"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
_sequence = itertools.count(1)


@asynccontextmanager
async def linker_db(database_url: str) -> AsyncIterator[LinkerDb]:
    spec = ServiceSpec(
        name="linker", migrations_package="mailsync_linker.migrations", subscribe=print
    )
    await migrate(database_url, "linker", spec.migrations())
    pool = await asyncpg.create_pool(
        database_url, min_size=1, max_size=4, server_settings={"search_path": "linker"}
    )
    assert pool is not None
    try:
        yield LinkerDb(pool)
    finally:
        await pool.close()


class LinkerDb:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def apply(self, *events: AnyEvent) -> list[Any]:
        """Each event through its use case, one transaction each; what they staged."""
        staged: list[Any] = []
        for event in events:
            use_case = _use_case(event)
            async with self.pool.acquire() as conn, conn.transaction():
                await use_case(event, conn)
                rows = await conn.fetch("DELETE FROM outbox RETURNING seq, topic, payload")
            for row in sorted(rows, key=lambda r: r["seq"]):
                staged.append(decode(row["topic"], bytes(row["payload"])))
        return staged

    async def apply_poll(self, *events: AnyEvent) -> list[Any]:
        """Mail records as one poll of the batch consumer: one transaction for them all."""
        async with self.pool.acquire() as conn, conn.transaction():
            await mail_batch(events, conn)
            rows = await conn.fetch("DELETE FROM outbox RETURNING seq, topic, payload")
        return [
            decode(r["topic"], bytes(r["payload"])) for r in sorted(rows, key=lambda r: r["seq"])
        ]

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self.pool.acquire() as conn:
            return list(await conn.fetch(sql, *args))

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self.pool.acquire() as conn:
            return await conn.fetchval(sql, *args)

    async def thread_of(self, account_id: str, message_id: str) -> UUID:
        """The thread an account's copy of the message is filed in (it must be filed)."""
        thread_id = await self._filed(account_id, message_id)
        assert thread_id is not None, f"{message_id} is not filed for {account_id}"
        return thread_id

    async def is_filed(self, account_id: str, message_id: str) -> bool:
        return await self._filed(account_id, message_id) is not None

    async def _filed(self, account_id: str, message_id: str) -> UUID | None:
        thread_id: UUID | None = await self.fetchval(
            "SELECT thread_id FROM thread_messages WHERE account_id = $1 AND message_key = $2",
            account_id,
            f"mid:{message_id.lower()}",
        )
        return thread_id

    async def links(self, thread_id: UUID) -> set[tuple[str, str, str]]:
        rows = await self.fetch(
            "SELECT kind, entity_id, origin FROM thread_links WHERE thread_id = $1", thread_id
        )
        return {(r["kind"], r["entity_id"], r["origin"]) for r in rows}

    async def thread(self, thread_id: UUID) -> asyncpg.Record:
        rows = await self.fetch("SELECT * FROM threads WHERE thread_id = $1", thread_id)
        assert rows, f"no thread {thread_id}"
        return rows[0]

    async def has_thread(self, thread_id: UUID) -> bool:
        return bool(await self.fetchval("SELECT true FROM threads WHERE thread_id = $1", thread_id))

    async def message_uids(self, thread_id: UUID) -> list[UUID]:
        rows = await self.fetch(
            "SELECT message_uid FROM thread_messages WHERE thread_id = $1 ORDER BY sent_at",
            thread_id,
        )
        return [r["message_uid"] for r in rows]

    async def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every mail table's rows (minus creation times), to compare two histories."""
        tables = {
            "threads": "SELECT thread_id, account_id, subject, visibility, archived, unread,"
            " message_count FROM threads ORDER BY thread_id",
            "thread_messages": "SELECT account_id, message_key, thread_id FROM thread_messages"
            " ORDER BY 1, 2",
            "messages": "SELECT company_id, message_key FROM messages ORDER BY 1, 2",
            "links": "SELECT thread_id, kind, entity_id, origin FROM thread_links ORDER BY 1, 2, 3",
            "participants": "SELECT thread_id, email, external FROM thread_participants"
            " ORDER BY 1, 2",
        }
        return {name: [tuple(r) for r in await self.fetch(sql)] for name, sql in tables.items()}


def _use_case(event: AnyEvent) -> Any:
    """The use case the app subscribes to the event's type; mail as a poll of one."""
    for use_cases in USE_CASES.values():
        if event.type in use_cases:
            return use_cases[event.type]
    if any(event.type in types for types in MAIL_TYPES.values()):
        return lambda event, conn: mail_batch([event], conn)
    raise LookupError(f"the linker subscribes no use case to {event.type}")


def threads_events(staged: Sequence[Any], type_name: str) -> list[Any]:
    return [e for e in staged if e.type == type_name]


# -- CRM records -------------------------------------------------------------------------------


def _crm(entity: Any, company_id: str, at: datetime | None) -> CrmEntityUpserted:
    return CrmEntityUpserted.build(
        company_id=company_id,
        source="crm",
        data=CrmEntityUpsertedData(entity=entity),
        time=at or datetime.now(UTC),
    )


def person(
    person_id: str,
    *emails: str,
    organization_id: str | None = None,
    company_id: str = COMPANY,
    at: datetime | None = None,
) -> CrmEntityUpserted:
    return _crm(
        CrmPerson(id=person_id, name=person_id, emails=emails, organization_id=organization_id),
        company_id,
        at,
    )


def organization(org_id: str, company_id: str = COMPANY) -> CrmEntityUpserted:
    return _crm(CrmOrganization(id=org_id, name=org_id), company_id, None)


def deal(
    deal_id: str,
    *person_ids: str,
    status: str = "open",
    archived: bool = False,
    owner_user_id: str | None = None,
    visible_to: str = "company",
    company_id: str = COMPANY,
) -> CrmEntityUpserted:
    return _crm(
        CrmDeal.model_validate(
            {
                "id": deal_id,
                "title": f"Deal {deal_id}",
                "status": status,
                "person_ids": person_ids,
                "archived": archived,
                "owner_user_id": owner_user_id,
                "visible_to": visible_to,
            }
        ),
        company_id,
        None,
    )


def lead(lead_id: str, *person_ids: str, company_id: str = COMPANY) -> CrmEntityUpserted:
    return _crm(
        CrmLead(id=lead_id, title=f"Lead {lead_id}", status="open", person_ids=person_ids),
        company_id,
        None,
    )


def user(
    user_id: str,
    email: str,
    *alternative: str,
    mode: str = "automatic",
    admin: bool = False,
    teams: Sequence[str] = (),
    company_id: str = COMPANY,
) -> CrmEntityUpserted:
    return _crm(
        CrmUser.model_validate(
            {
                "id": user_id,
                "name": user_id,
                "email": email,
                "alternative_emails": alternative,
                "linking_mode": mode,
                "is_admin": admin,
                "team_ids": teams,
            }
        ),
        company_id,
        None,
    )


def team(team_id: str, *members: str, company_id: str = COMPANY) -> CrmEntityUpserted:
    return _crm(CrmTeam(id=team_id, name=team_id, member_user_ids=members), company_id, None)


def deleted(kind: str, entity_id: str, company_id: str = COMPANY) -> CrmEntityDeleted:
    return CrmEntityDeleted.build(
        company_id=company_id,
        source="crm",
        data=CrmEntityDeletedData.model_validate({"kind": kind, "entity_id": entity_id}),
    )


# -- mail ------------------------------------------------------------------------------------------


def _addresses(values: Sequence[str]) -> tuple[EmailAddress, ...]:
    return tuple(EmailAddress(email=v) for v in values)


def ingested(
    account_id: str,
    *,
    owner: str,
    account_email: str,
    sender: str,
    to: Sequence[str] = (),
    cc: Sequence[str] = (),
    subject: str = "Quote",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    sent_at: datetime | None = None,
    folder: str = "INBOX",
    folder_role: str = "inbox",
    uid: int | None = None,
    flags: Sequence[str] = (),
    account_type: str = "personal",
    members: Sequence[str] = (),
    visibility: str | None = None,
    provider_thread_id: str | None = None,
    company_id: str = COMPANY,
) -> MessageIngested:
    n = next(_sequence)
    mid = message_id or f"m{n}@mail.test"
    return MessageIngested.build(
        company_id=company_id,
        source="ingest",
        data=MessageIngestedData.model_validate(
            {
                "account_id": account_id,
                "owner_user_id": owner,
                "account_email": account_email,
                "folder": folder,
                "folder_role": folder_role,
                "uidvalidity": 1,
                "uid": uid or n,
                "message_id": mid,
                "in_reply_to": in_reply_to,
                "references": references,
                "provider_thread_id": provider_thread_id,
                "subject": subject,
                "sent_at": sent_at or T0 + timedelta(minutes=n),
                "from": {"email": sender},
                "to": [a.model_dump() for a in _addresses(to)],
                "cc": [a.model_dump() for a in _addresses(cc)],
                "snippet": f"snippet {n}",
                "flags": flags,
                "raw": RawMessageRef(sha256=hashlib.sha256(mid.encode()).hexdigest(), size=100),
                "account_type": account_type,
                "member_user_ids": members,
                "default_visibility": visibility,
            }
        ),
    )


def expunged(event: MessageIngested) -> MessageExpunged:
    data = event.data
    return MessageExpunged.build(
        company_id=event.company_id,
        source="ingest",
        data=MessageExpungedData(
            account_id=data.account_id,
            folder=data.folder,
            uidvalidity=data.uidvalidity,
            uid=data.uid,
            message_id=data.message_id,
            raw_sha256=data.raw.sha256,
        ),
    )


# -- read API ----------------------------------------------------------------------------------


def with_raw(event: MessageIngested, raw: bytes) -> MessageIngested:
    """`event` as ingest publishes a message whose raw MIME is `raw` (the test puts those bytes
    in the raw store): the claim-check and the attachment list come from them."""
    parsed = parse_message(raw)
    data = event.data.model_copy(
        update={
            "raw": RawMessageRef(sha256=hashlib.sha256(raw).hexdigest(), size=len(raw)),
            "has_html": parsed.has_html,
            "attachments": tuple(
                IngestedAttachment(
                    filename=a.filename,
                    content_type=a.content_type,
                    size=a.size,
                    content_id=a.content_id,
                )
                for a in parsed.attachments
            ),
        }
    )
    return event.model_copy(update={"data": data})


def item(
    kind: str,
    item_id: str,
    *person_ids: str,
    owner_user_id: str | None = None,
    visible_to: str = "company",
    company_id: str = COMPANY,
) -> CrmEntityUpserted:
    """An open deal, lead or project with an owner and who may see it."""
    models: dict[str, Any] = {"deal": CrmDeal, "lead": CrmLead, "project": CrmProject}
    return _crm(
        models[kind].model_validate(
            {
                "id": item_id,
                "title": f"{kind} {item_id}",
                "status": "open",
                "person_ids": person_ids,
                "owner_user_id": owner_user_id,
                "visible_to": visible_to,
            }
        ),
        company_id,
        None,
    )


def thread_command(
    command: type[Envelope[Any]],
    thread_id: object,
    acting_user_id: str,
    company_id: str = COMPANY,
    **data: Any,
) -> Envelope[Any]:
    """A `mail.thread.commands.v1` command of the CRM, acting for a user."""
    payload = {"thread_id": str(thread_id), "acting_user_id": acting_user_id, **data}
    # The command's payload model, as its envelope declares it.
    data_model: Any = command.model_fields["data"].annotation
    return command.build(
        company_id=company_id, source="crm", data=data_model.model_validate(payload)
    )


@asynccontextmanager
async def read_api(
    db: LinkerDb,
    raw_store: RawStore,
    *,
    token: str | None = "read-api-test-token",
    tracking_base_url: str | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the read API mounted at /v1 as the service mounts it, on the test's
    database and raw store (no broker), presenting `token` when there is one."""
    settings = LinkerSettings(
        service_token=None if token is None else SecretStr(token),
        tracking_base_url=tracking_base_url,
    )
    app = Starlette(
        routes=[Mount(PREFIX, app=create_read_api(settings, lambda: db.pool, lambda: raw_store))]
    )
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://linker.test", headers=headers
    ) as client:
        yield client


def acting(user_id: str, company_id: str = COMPANY) -> dict[str, str]:
    """The headers naming the user the CRM acts for."""
    return {"X-Company-Id": company_id, "X-User-Id": user_id}


def undated(event: MessageIngested) -> MessageIngested:
    """`event` for a message with neither a Date header nor an arrival time."""
    data = event.data.model_copy(update={"sent_at": None, "received_at": None})
    return event.model_copy(update={"data": data})


def to_anna(**fields: Any) -> MessageIngested:
    """A customer's mail in Anna's personal mailbox (`acct-anna`, owner `u-anna`); any
    field of `ingested` can be given to vary it."""
    values: dict[str, Any] = {
        "owner": "u-anna",
        "account_email": ANNA,
        "sender": CUSTOMER,
        "to": [ANNA],
    }
    values.update(fields)
    return ingested("acct-anna", **values)
