"""Threads: linker's reports (`mail.threads.v1`) and users' commands
(`mail.thread.commands.v1`), both keyed by thread id so one conversation stays in order.

Invariants:
- `message_id` in a thread command or event is the linker's message id as the read API shows
  it, not the RFC 5322 Message-ID header (that one is in `mail.message.ingested`);
- a bulk action from the inbox list (R17, R18) is one command per thread, each on its own
  thread's key, never one command listing threads: per-thread ordering is what makes an
  "archive, then unarchive" land in that order;
- every command names the acting user, whose rights the linker checks (R14, R16);
- events that change the mailbox side (archive, delete) carry the messages' mailbox
  locations, so outbound can mirror them (R19) without reading the linker's tables.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, model_validator

from mailsync_contracts.envelope import ContractModel, Envelope
from mailsync_contracts.values import (
    ChoosableKind,
    EmailAddress,
    EntityLink,
    LinkKind,
    MailboxLocation,
    Visibility,
)

DeletionOrigin = Literal["user", "mailbox"]
"""Who deleted: a CRM user (mirror it, R19) or the mail client (R8; already gone there)."""


def _check_deleted_by(origin: DeletionOrigin, acting_user_id: str | None) -> None:
    if origin == "user" and acting_user_id is None:
        raise ValueError('a deletion with origin "user" names the acting_user_id')


class ThreadUpdatedData(ContractModel):
    """A thread's current state after a new message, a link change or a visibility change."""

    thread_id: str
    account_id: str
    owner_user_id: str
    subject: str
    message_count: Annotated[int, Field(ge=0)]
    last_message_at: AwareDatetime | None = None
    participants: tuple[EmailAddress, ...] = ()
    links: tuple[EntityLink, ...] = ()
    visibility: Visibility
    archived: bool = False
    reason: Literal["new_message", "links_changed", "visibility_changed"]


class LinkCandidate(ContractModel):
    """An open item the thread could be linked to (R13); `title` for the choice dialog."""

    kind: ChoosableKind
    entity_id: str
    title: str | None = None


class LinkChoiceNeededData(ContractModel):
    """R13: the matched persons have more than one open item, so the thread was not linked."""

    thread_id: str
    account_id: str
    owner_user_id: str
    candidates: Annotated[tuple[LinkCandidate, ...], Field(min_length=2)]


class ThreadArchivedData(ContractModel):
    """R17: the thread left the inbox; links and detail-view history are kept."""

    thread_id: str
    account_id: str
    owner_user_id: str
    acting_user_id: str
    locations: tuple[MailboxLocation, ...] = ()


class ThreadUnarchivedData(ContractModel):
    thread_id: str
    account_id: str
    owner_user_id: str
    acting_user_id: str


class ThreadDeletedData(ContractModel):
    """R18: the thread and its links are gone from the CRM for good."""

    thread_id: str
    account_id: str
    owner_user_id: str
    origin: DeletionOrigin = "user"
    acting_user_id: str | None = None
    locations: tuple[MailboxLocation, ...] = ()

    @model_validator(mode="after")
    def _user_deletions_name_the_user(self) -> ThreadDeletedData:
        _check_deleted_by(self.origin, self.acting_user_id)
        return self


class MessageDeletedData(ContractModel):
    """R18: one message is gone from the CRM; the thread stays with the others."""

    thread_id: str
    message_id: str
    account_id: str
    owner_user_id: str
    origin: DeletionOrigin = "user"
    acting_user_id: str | None = None
    location: MailboxLocation | None = None

    @model_validator(mode="after")
    def _user_deletions_name_the_user(self) -> MessageDeletedData:
        _check_deleted_by(self.origin, self.acting_user_id)
        return self


class ThreadUpdated(Envelope[ThreadUpdatedData]):
    type: Literal["mail.thread.updated"] = "mail.thread.updated"


class ThreadLinkChoiceNeeded(Envelope[LinkChoiceNeededData]):
    type: Literal["mail.thread.link_choice_needed"] = "mail.thread.link_choice_needed"


class ThreadArchived(Envelope[ThreadArchivedData]):
    type: Literal["mail.thread.archived"] = "mail.thread.archived"


class ThreadUnarchived(Envelope[ThreadUnarchivedData]):
    type: Literal["mail.thread.unarchived"] = "mail.thread.unarchived"


class ThreadDeleted(Envelope[ThreadDeletedData]):
    type: Literal["mail.thread.deleted"] = "mail.thread.deleted"


class MessageDeleted(Envelope[MessageDeletedData]):
    type: Literal["mail.message.deleted"] = "mail.message.deleted"


ThreadEvent = (
    ThreadUpdated
    | ThreadLinkChoiceNeeded
    | ThreadArchived
    | ThreadUnarchived
    | ThreadDeleted
    | MessageDeleted
)


class ThreadActionData(ContractModel):
    """Archive, unarchive or delete a thread (R17, R18)."""

    thread_id: str
    acting_user_id: str


class DeleteMessageData(ContractModel):
    thread_id: str
    acting_user_id: str
    message_id: str


class LinkThreadData(ContractModel):
    """R13: a user's link or unlink always wins over automation, now and later."""

    thread_id: str
    acting_user_id: str
    kind: LinkKind
    entity_id: str


class SetThreadVisibilityData(ContractModel):
    """R15: the owner changes one thread's visibility; the default setting is not touched."""

    thread_id: str
    acting_user_id: str
    visibility: Visibility


class MarkThreadReadData(ContractModel):
    """`read` false marks the thread unread again."""

    thread_id: str
    acting_user_id: str
    read: bool = True


class ArchiveThread(Envelope[ThreadActionData]):
    type: Literal["mail.thread.archive"] = "mail.thread.archive"


class UnarchiveThread(Envelope[ThreadActionData]):
    type: Literal["mail.thread.unarchive"] = "mail.thread.unarchive"


class DeleteThread(Envelope[ThreadActionData]):
    type: Literal["mail.thread.delete"] = "mail.thread.delete"


class DeleteMessage(Envelope[DeleteMessageData]):
    type: Literal["mail.message.delete"] = "mail.message.delete"


class LinkThread(Envelope[LinkThreadData]):
    type: Literal["mail.thread.link"] = "mail.thread.link"


class UnlinkThread(Envelope[LinkThreadData]):
    type: Literal["mail.thread.unlink"] = "mail.thread.unlink"


class SetThreadVisibility(Envelope[SetThreadVisibilityData]):
    type: Literal["mail.thread.set_visibility"] = "mail.thread.set_visibility"


class MarkThreadRead(Envelope[MarkThreadReadData]):
    type: Literal["mail.thread.mark_read"] = "mail.thread.mark_read"


ThreadCommand = (
    ArchiveThread
    | UnarchiveThread
    | DeleteThread
    | DeleteMessage
    | LinkThread
    | UnlinkThread
    | SetThreadVisibility
    | MarkThreadRead
)
