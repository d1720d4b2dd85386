"""Contract in, one use case, contract out — for every topic the linker reads.

The consumer gives each use case its transaction. Mail arriving (`mail.message.ingested`,
`mail.message.sent`) goes through the batch path: a run of consecutive arrivals in a batch
is filed together, and other records split the runs so a mailbox's story keeps its order
(an expunge after the ingest of the same message is applied after it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mailsync_contracts import (
    AccountConnected,
    AccountDisconnected,
    ArchiveThread,
    DeleteMessage,
    DeleteThread,
    EmailAddress,
    LinkThread,
    MarkThreadRead,
    MessageExpunged,
    MessageIngested,
    MessageSent,
    SetThreadVisibility,
    UnarchiveThread,
    UnlinkThread,
)
from mailsync_linker import filing, repository, thread_actions
from mailsync_linker.conversation import conversation_keys
from mailsync_linker.domain import Address, address_key, message_key, referenced_ids
from mailsync_linker.filing import Arrival
from mailsync_linker.read_model import entity_deleted, entity_upserted
from mailsync_linker.repository import AccountFacts, Location, MessageRow
from mailsync_linker.thread_actions import CommandRefused
from mailsync_linker.visibility import default_visibility
from mailsync_platform.database import DbConnection

__all__ = [
    "CommandRefused",
    "account_connected",
    "account_disconnected",
    "entity_deleted",
    "entity_upserted",
    "mail_batch",
    "thread_command",
]

_OUTGOING_ROLES = frozenset({"sent", "drafts"})
_SEEN = "\\seen"


def _address(value: EmailAddress) -> Address:
    return Address(value.email, value.name)


def _recipients(data: Any) -> tuple[tuple[str, Address], ...]:
    return tuple(
        (role, _address(value))
        for role in ("to", "cc", "bcc", "reply_to")
        for value in getattr(data, role)
    )


def arrival_from_ingested(event: MessageIngested) -> Arrival:
    data = event.data
    key = message_key(data.message_id, data.raw.sha256)
    account_type = data.account_type or "personal"
    account = AccountFacts(
        data.account_id,
        event.company_id,
        data.owner_user_id,
        address_key(data.account_email),
        account_type,
        data.member_user_ids,
    )
    sender = _address(data.from_) if data.from_ else None
    recipients = _recipients(data)
    message = MessageRow(
        company_id=event.company_id,
        message_key=key,
        message_id=data.message_id,
        subject=data.subject,
        sent_at=data.sent_at or data.received_at,
        sender=sender,
        recipients=recipients,
        snippet=data.snippet,
        has_html=data.has_html,
        attachments=tuple(a.model_dump(mode="json") for a in data.attachments),
        raw_sha256=data.raw.sha256,
        size=data.message_size,
        parse_error=data.parse_error,
        too_large=data.too_large,
    )
    own = account.email
    return Arrival(
        account=account,
        visibility=default_visibility(account_type, data.default_visibility),
        message=message,
        location=Location(
            data.account_id, data.folder, data.uidvalidity, data.uid, key, data.folder_role
        ),
        conversation_keys=tuple(
            conversation_keys(
                referenced_ids(data.message_id, data.in_reply_to, data.references),
                data.provider_thread_id,
            )
        ),
        participants=(*([sender] if sender else []), *(a for _, a in recipients)),
        outgoing=data.folder_role in _OUTGOING_ROLES or (sender is not None and sender.key == own),
        seen=any(flag.lower() == _SEEN for flag in data.flags),
    )


async def arrival_from_sent(event: MessageSent, conn: DbConnection) -> Arrival:
    """A message outbound sent: filed like the Sent-folder copy ingest will find later (the
    two are one message, by Message-ID), matched by its recipients (R12)."""
    data = event.data
    account = await repository.account_facts(conn, data.account_id) or AccountFacts(
        data.account_id, event.company_id, data.user_id, address_key(data.from_.email), "personal"
    )
    key = message_key(data.message_id, data.raw.sha256 if data.raw else data.idempotency_key)
    sender = _address(data.from_)
    recipients = _recipients_of_sent(data)
    message = MessageRow(
        company_id=event.company_id,
        message_key=key,
        message_id=data.message_id,
        subject=data.subject,
        sent_at=data.sent_at,
        sender=sender,
        recipients=recipients,
        snippet="",
        has_html=False,
        attachments=(),
        raw_sha256=data.raw.sha256 if data.raw else "",
        size=data.raw.size if data.raw else None,
        parse_error=None,
        too_large=False,
    )
    keys = referenced_ids(data.message_id, None, ())
    if data.in_reply_to_thread_id:
        # A reply written in the CRM names its thread: file it there through one of the
        # Message-IDs that thread already knows (R11, R20).
        known = await repository.conversation_key_of(
            conn, data.account_id, data.in_reply_to_thread_id
        )
        keys = [*([known] if known else []), *keys]
    return Arrival(
        account=account,
        visibility=default_visibility(account.account_type, None),
        message=message,
        location=None,
        conversation_keys=tuple(keys),
        participants=(sender, *(a for _, a in recipients)),
        outgoing=True,
        seen=True,
        related_items=tuple((item.kind, item.entity_id) for item in data.related_items),
    )


def _recipients_of_sent(data: Any) -> tuple[tuple[str, Address], ...]:
    return tuple(
        (role, _address(value)) for role in ("to", "cc", "bcc") for value in getattr(data, role)
    )


async def mail_batch(events: Sequence[Any], conn: DbConnection) -> None:
    """Apply a batch from `mail.ingested.v1` or `mail.outbound.v1`, in order."""
    run: list[Arrival] = []
    for event in events:
        if isinstance(event, MessageIngested):
            run.append(arrival_from_ingested(event))
            continue
        if isinstance(event, MessageSent):
            run.append(await arrival_from_sent(event, conn))
            continue
        await filing.file_arrivals(conn, run)
        run = []
        if isinstance(event, MessageExpunged):
            data = event.data
            await thread_actions.expunged(
                conn,
                data.account_id,
                data.folder,
                data.uidvalidity,
                data.uid,
                message_key(data.message_id, data.raw_sha256 or "")
                if data.message_id or data.raw_sha256
                else None,
            )
        # Screened messages (R9) were never filed: nothing to do.
    await filing.file_arrivals(conn, run)


async def account_connected(event: AccountConnected, conn: DbConnection) -> None:
    data = event.data
    await repository.save_accounts(
        conn,
        [
            AccountFacts(
                data.account_id,
                event.company_id,
                data.user_id,
                address_key(data.email),
                data.account_type,
                data.member_user_ids,
            )
        ],
    )
    await repository.set_account_connected(conn, data.account_id, True)


async def account_disconnected(event: AccountDisconnected, conn: DbConnection) -> None:
    """The mail already filed stays in the CRM; the account no longer syncs."""
    await repository.set_account_connected(conn, event.data.account_id, False)


async def thread_command(event: Any, conn: DbConnection) -> None:
    data = event.data
    company = event.company_id
    if isinstance(event, ArchiveThread):
        await thread_actions.archive(conn, company, data.thread_id, data.acting_user_id)
    elif isinstance(event, UnarchiveThread):
        await thread_actions.unarchive(conn, company, data.thread_id, data.acting_user_id)
    elif isinstance(event, DeleteThread):
        await thread_actions.delete_thread(conn, company, data.thread_id, data.acting_user_id)
    elif isinstance(event, DeleteMessage):
        await thread_actions.delete_message(
            conn, company, data.thread_id, data.message_id, data.acting_user_id
        )
    elif isinstance(event, LinkThread):
        await thread_actions.link(
            conn, company, data.thread_id, data.acting_user_id, data.kind, data.entity_id
        )
    elif isinstance(event, UnlinkThread):
        await thread_actions.unlink(
            conn, company, data.thread_id, data.acting_user_id, data.kind, data.entity_id
        )
    elif isinstance(event, SetThreadVisibility):
        await thread_actions.set_visibility(
            conn, company, data.thread_id, data.acting_user_id, data.visibility
        )
    elif isinstance(event, MarkThreadRead):
        await thread_actions.mark_read(
            conn, company, data.thread_id, data.acting_user_id, data.read
        )
