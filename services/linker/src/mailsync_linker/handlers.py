"""Contract in, one transaction, one use case, contract out — for the linker's topics."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from mailsync_contracts import (
    CrmEntityDeleted,
    CrmEntityUpserted,
    CrmPerson,
    CrmUser,
    EmailAddress,
    MessageIngested,
    ThreadUpdated,
    ThreadUpdatedData,
)
from mailsync_contracts.topics import THREADS
from mailsync_linker import repository
from mailsync_linker.domain import (
    Address,
    external_participants,
    match_keys,
    message_key,
    person_links,
    referenced_ids,
)
from mailsync_platform.database import DbConnection
from mailsync_platform.outbox import stage

ADDRESS_KINDS = ("person", "user")


async def entity_upserted(event: CrmEntityUpserted, conn: DbConnection) -> None:
    entity = event.data.entity
    applied = await repository.upsert_entity(
        conn,
        event.company_id,
        entity.kind,
        entity.id,
        entity.model_dump(mode="json"),
        event.time,
    )
    if not applied:
        return  # an older version than the one we hold
    if isinstance(entity, CrmPerson):
        emails = match_keys(entity.emails)
    elif isinstance(entity, CrmUser):
        emails = match_keys((entity.email, *entity.alternative_emails))
    else:
        return
    await repository.replace_addresses(conn, event.company_id, entity.kind, entity.id, emails)


async def entity_deleted(event: CrmEntityDeleted, conn: DbConnection) -> None:
    data = event.data
    applied = await repository.delete_entity(
        conn, event.company_id, data.kind, data.entity_id, event.time
    )
    if applied and data.kind in ADDRESS_KINDS:
        await repository.replace_addresses(conn, event.company_id, data.kind, data.entity_id, [])


def _address(value: EmailAddress) -> Address:
    return Address(value.match_key, value.name)


async def message_ingested(event: MessageIngested, conn: DbConnection) -> None:
    """File a message into its conversation and link the conversation to the CRM (R11, R12)."""
    data = event.data
    key = message_key(data.message_id, data.raw.sha256)
    if await repository.message_exists(conn, data.account_id, key):
        # The same message seen again: in another folder, or re-listed after a UIDVALIDITY
        # change (R7, R8). It is already filed; nothing changes.
        return
    references = referenced_ids(data.message_id, data.in_reply_to, data.references)
    thread_id = await repository.thread_for_references(conn, data.account_id, references)
    if thread_id is None:
        thread_id = uuid5(NAMESPACE_URL, f"mailsync-thread:{data.account_id}:{key}")
        visibility = data.default_visibility or (
            "team" if data.account_type == "team" else "shared"
        )
        await repository.create_thread(
            conn,
            thread_id,
            event.company_id,
            data.account_id,
            data.owner_user_id,
            data.subject,
            visibility,
        )
    sender = _address(data.from_) if data.from_ else None
    recipients = [_address(a) for a in (*data.to, *data.cc, *data.bcc, *data.reply_to)]
    await repository.add_message(
        conn,
        account_id=data.account_id,
        message_key=key,
        thread_id=thread_id,
        message_id=data.message_id,
        subject=data.subject,
        sent_at=data.sent_at,
        sender=sender,
        recipients=recipients,
        snippet=data.snippet,
        raw_sha256=data.raw.sha256,
        parse_error=data.parse_error,
        known_ids=references,
    )
    own = {data.account_email.lower(), *await repository.user_addresses(conn, event.company_id)}
    participants = external_participants([*([sender] if sender else []), *recipients], own)
    await repository.add_participants(conn, thread_id, participants)
    persons = await repository.persons_by_email(
        conn, event.company_id, [p.key for p in participants]
    )
    person_ids = sorted({pid for ids in persons.values() for pid in ids})
    organizations = await repository.organizations_of_persons(conn, event.company_id, person_ids)
    await repository.add_links(conn, thread_id, person_links(participants, persons, organizations))
    await _publish_thread(conn, thread_id, "new_message")


async def _publish_thread(conn: DbConnection, thread_id: UUID, reason: str) -> None:
    """Stage the thread's whole current state; consumers keep the latest per thread id."""
    state = await repository.thread_state(conn, thread_id)
    # Validated from plain values: the database holds the same vocabulary the contract checks.
    data = ThreadUpdatedData.model_validate(
        {
            "thread_id": str(state.thread_id),
            "account_id": state.account_id,
            "owner_user_id": state.owner_user_id,
            "subject": state.subject,
            "message_count": state.message_count,
            "last_message_at": state.last_message_at,
            "participants": [{"email": p.email, "name": p.name} for p in state.participants],
            "links": [
                {"kind": lk.kind, "entity_id": lk.entity_id, "origin": lk.origin}
                for lk in state.links
            ],
            "visibility": state.visibility,
            "archived": state.archived,
            "reason": reason,
        }
    )
    event = ThreadUpdated.build(company_id=state.company_id, source="linker", data=data)
    await stage(conn, THREADS, str(state.thread_id), event)
