"""What users do to a thread from the CRM (R13–R18), and deletes that come from the mailbox
(R8).

Every command names its acting user; only someone who manages the thread (its owner, or a
member of its team account, R2) may archive, delete, mark, relink or re-share it. A command
that can never apply — an unknown thread, a user without the right, a visibility the account
type does not have — is refused with the reason (the consumer dead-letters it) and changes
nothing. Repeating a command changes nothing either: archiving an archived thread publishes
nothing, deleting a deleted one finds nothing.

Archive keeps links and detail-view presence; delete removes the account's copies of the
messages for good (tombstoned, so a later sync never brings them back) and, with the last
message, the thread and its links. Events that change the mailbox side carry the messages'
mailbox places, so outbound can mirror them (R19) without reading these tables.
"""

from __future__ import annotations

from uuid import UUID

from mailsync_contracts import (
    MailboxLocation,
    MessageDeleted,
    MessageDeletedData,
    ThreadArchived,
    ThreadArchivedData,
    ThreadDeleted,
    ThreadDeletedData,
    ThreadUnarchived,
    ThreadUnarchivedData,
)
from mailsync_contracts.topics import THREADS
from mailsync_linker import repository
from mailsync_linker.domain import Link
from mailsync_linker.filing import Outcome, message_uid_for, publish, relink
from mailsync_linker.linking import ITEM_KINDS, replace_item_of_kind
from mailsync_linker.repository import FiledMessage, ThreadState
from mailsync_linker.visibility import ThreadAccess, Viewer, manages, visibility_allowed
from mailsync_platform.consumer import Refused
from mailsync_platform.database import DbConnection
from mailsync_platform.outbox import stage


class CommandRefused(Refused):
    """The command can never be applied as sent; the consumer dead-letters it with the
    reason."""


async def _checked(
    conn: DbConnection, company_id: str, thread_id: str, acting_user_id: str
) -> ThreadState:
    """The thread, when it exists in the company and the acting user manages it (R2)."""
    unknown = CommandRefused(f"no thread {thread_id} (deleted, or never filed)")
    try:
        key = UUID(thread_id)
    except ValueError:
        raise CommandRefused(f"{thread_id!r} is not a thread id") from None
    state = (await repository.thread_states(conn, [key])).get(key)
    # Another company's thread gets the same answer as none: ids leak nothing across.
    if state is None or state.company_id != company_id:
        raise unknown
    account = await repository.account_facts(conn, state.account_id)
    access = ThreadAccess(
        company_id=state.company_id,
        owner_user_id=state.owner_user_id,
        account_type=state.account_type,
        visibility=state.visibility,
        member_user_ids=frozenset(account.member_user_ids if account else ()),
    )
    if not manages(Viewer(company_id, acting_user_id), access):
        raise CommandRefused(f"user {acting_user_id} does not manage thread {thread_id}")
    return state


def _locations(messages: list[FiledMessage]) -> tuple[MailboxLocation, ...]:
    return tuple(
        MailboxLocation(folder=loc.folder, uidvalidity=loc.uidvalidity, uid=loc.uid)
        for message in messages
        for loc in message.locations
    )


async def archive(conn: DbConnection, company_id: str, thread_id: str, acting_user_id: str) -> None:
    """R17: out of the inbox, into Archive; links and detail views unchanged."""
    state = await _checked(conn, company_id, thread_id, acting_user_id)
    if not await repository.set_archived(conn, state.thread_id, True):
        return
    messages = await repository.thread_messages(conn, state.thread_id)
    event = ThreadArchived.build(
        company_id=state.company_id,
        source="linker",
        data=ThreadArchivedData(
            thread_id=str(state.thread_id),
            account_id=state.account_id,
            owner_user_id=state.owner_user_id,
            acting_user_id=acting_user_id,
            locations=_locations(messages),
        ),
    )
    await stage(conn, THREADS, str(state.thread_id), event)


async def unarchive(
    conn: DbConnection, company_id: str, thread_id: str, acting_user_id: str
) -> None:
    state = await _checked(conn, company_id, thread_id, acting_user_id)
    if not await repository.set_archived(conn, state.thread_id, False):
        return
    event = ThreadUnarchived.build(
        company_id=state.company_id,
        source="linker",
        data=ThreadUnarchivedData(
            thread_id=str(state.thread_id),
            account_id=state.account_id,
            owner_user_id=state.owner_user_id,
            acting_user_id=acting_user_id,
        ),
    )
    await stage(conn, THREADS, str(state.thread_id), event)


async def delete_thread(
    conn: DbConnection, company_id: str, thread_id: str, acting_user_id: str
) -> None:
    """R18: the thread, its messages (for this account) and its links, for good."""
    state = await _checked(conn, company_id, thread_id, acting_user_id)
    messages = await repository.thread_messages(conn, state.thread_id)
    await repository.forget_messages(
        conn, state.account_id, [m.message_key for m in messages], tombstone=True
    )
    await repository.delete_thread(conn, state.thread_id)
    await _stage_thread_deleted(conn, state, "user", acting_user_id, _locations(messages))


async def delete_message(
    conn: DbConnection, company_id: str, thread_id: str, message_uid: str, acting_user_id: str
) -> None:
    """R18 for one message; the thread goes too when it was its last one."""
    state = await _checked(conn, company_id, thread_id, acting_user_id)
    try:
        uid = UUID(message_uid)
    except ValueError:
        raise CommandRefused(f"{message_uid!r} is not a message id") from None
    found = await repository.filed_message(conn, uid)
    if found is None or found[0] != state.thread_id:
        raise CommandRefused(f"no message {message_uid} in thread {thread_id}")
    _, message = found
    await _forget(conn, state, [message], origin="user", acting_user_id=acting_user_id)


async def expunged(
    conn: DbConnection,
    account_id: str,
    folder: str,
    uidvalidity: int,
    uid: int,
    message_key: str | None,
) -> None:
    """R8: a message left the mailbox for good (deleted in the mail client, or moved to
    Trash), so it leaves the CRM too. Ingest has already told moves from deletes apart: the
    account's copy goes, wherever else it had been recorded."""
    key = await repository.location_of(conn, account_id, folder, uidvalidity, uid) or message_key
    await repository.remove_location(conn, account_id, folder, uidvalidity, uid)
    if key is None:
        return
    found = await repository.filed_message(conn, message_uid_for(account_id, key))
    if found is None:
        return  # never filed here, or already gone
    thread_id, message = found
    state = (await repository.thread_states(conn, [thread_id]))[thread_id]
    await _forget(conn, state, [message], origin="mailbox", acting_user_id=None)


async def _forget(
    conn: DbConnection,
    state: ThreadState,
    messages: list[FiledMessage],
    *,
    origin: str,
    acting_user_id: str | None,
) -> None:
    await repository.forget_messages(
        conn, state.account_id, [m.message_key for m in messages], tombstone=origin == "user"
    )
    if await repository.delete_empty_threads(conn, [state.thread_id]):
        await _stage_thread_deleted(conn, state, origin, acting_user_id, _locations(messages))
        return
    await repository.refresh_threads(conn, [state.thread_id])
    await repository.prune_participants(conn, state.thread_id)
    for message in messages:
        location = message.locations[0] if message.locations else None
        event = MessageDeleted.build(
            company_id=state.company_id,
            source="linker",
            data=MessageDeletedData.model_validate(
                {
                    "thread_id": str(state.thread_id),
                    "message_id": str(message.message_uid),
                    "account_id": state.account_id,
                    "owner_user_id": state.owner_user_id,
                    "origin": origin,
                    "acting_user_id": acting_user_id,
                    "location": None
                    if location is None
                    else {
                        "folder": location.folder,
                        "uidvalidity": location.uidvalidity,
                        "uid": location.uid,
                    },
                }
            ),
        )
        await stage(conn, THREADS, str(state.thread_id), event)
    # Persons and organizations follow the participants that are left (R12).
    outcome = Outcome()
    await relink(conn, state.company_id, [state.thread_id], outcome, new_mail=False)
    await publish(conn, outcome)


async def _stage_thread_deleted(
    conn: DbConnection,
    state: ThreadState,
    origin: str,
    acting_user_id: str | None,
    locations: tuple[MailboxLocation, ...],
) -> None:
    event = ThreadDeleted.build(
        company_id=state.company_id,
        source="linker",
        data=ThreadDeletedData.model_validate(
            {
                "thread_id": str(state.thread_id),
                "account_id": state.account_id,
                "owner_user_id": state.owner_user_id,
                "origin": origin,
                "acting_user_id": acting_user_id,
                "locations": [loc.model_dump() for loc in locations],
            }
        ),
    )
    await stage(conn, THREADS, str(state.thread_id), event)


async def link(
    conn: DbConnection,
    company_id: str,
    thread_id: str,
    acting_user_id: str,
    kind: str,
    entity_id: str,
) -> None:
    """R13: a user's link wins and stays; for a deal, lead or project it replaces the item of
    that kind the thread had."""
    state = await _checked(conn, company_id, thread_id, acting_user_id)
    if await repository.entity_attributes(conn, state.company_id, kind, entity_id) is None:
        raise CommandRefused(f"no {kind} {entity_id} in the CRM")
    links = (await repository.link_states(conn, [state.thread_id]))[state.thread_id]
    new = Link(kind, entity_id, "manual")
    _, removed = replace_item_of_kind(links.links, new)
    await repository.remove_links(conn, [(state.thread_id, lk) for lk in removed])
    await repository.add_links(conn, state.company_id, [(state.thread_id, new)])
    await repository.forget_unlink(conn, state.thread_id, kind, entity_id)
    await repository.record_manual(
        conn, state.thread_id, kind, removed[0].entity_id if removed else None
    )
    await _publish_links_changed(conn, state)


async def unlink(
    conn: DbConnection,
    company_id: str,
    thread_id: str,
    acting_user_id: str,
    kind: str,
    entity_id: str,
) -> None:
    """R13: a user's unlink wins and stays: automation never links this item again, and
    for deals, leads and projects it leaves the kind to the user."""
    state = await _checked(conn, company_id, thread_id, acting_user_id)
    await repository.remove_links(conn, [(state.thread_id, Link(kind, entity_id))])
    await repository.record_manual(conn, state.thread_id, kind, entity_id)
    if kind not in ITEM_KINDS:
        # Persons and organizations are not a "kind the user took over": only the one
        # unlinked stays away, other participants still link.
        await repository.forget_manual_kind(conn, state.thread_id, kind)
    await _publish_links_changed(conn, state)


async def set_visibility(
    conn: DbConnection, company_id: str, thread_id: str, acting_user_id: str, visibility: str
) -> None:
    """R15: one thread's visibility, by whoever manages it; the default is not touched."""
    state = await _checked(conn, company_id, thread_id, acting_user_id)
    if not visibility_allowed(state.account_type, visibility):
        raise CommandRefused(f"a {state.account_type} account's thread cannot be {visibility}")
    if await repository.set_visibility(conn, state.thread_id, visibility):
        outcome = Outcome()
        outcome.touch(state.thread_id, "visibility_changed")
        await publish(conn, outcome)


async def mark_read(
    conn: DbConnection, company_id: str, thread_id: str, acting_user_id: str, read: bool
) -> None:
    state = await _checked(conn, company_id, thread_id, acting_user_id)
    await repository.mark_read(conn, state.thread_id, read)


async def _publish_links_changed(conn: DbConnection, state: ThreadState) -> None:
    outcome = Outcome()
    outcome.touch(state.thread_id, "links_changed")
    await publish(conn, outcome)
