"""`mail.ingested.v1`: what ingest read from a mailbox, keyed by account id, in mailbox order.

Invariants:
- a message is identified in its mailbox by (account, folder, uidvalidity, uid); ingest
  publishes it again after a UIDVALIDITY change, and the RFC 5322 `message_id` (header value
  without angle brackets) is what lets the linker recognise it (R7: never a duplicate);
- raw MIME is never inside the record, only `raw`, its claim-check in the raw store;
- a message that could not be parsed is still published, with `parse_error` saying why (R10);
- `mail.message.expunged` means gone from the mailbox, not moved to another folder (R8).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from mailsync_contracts.envelope import ContractModel, Envelope
from mailsync_contracts.values import AccountType, EmailAddress, RawMessageRef, Visibility

FolderRole = Literal["inbox", "sent", "archive", "trash", "drafts", "junk", "all", "other"]
"""What a folder is for, from RFC 6154 special-use attributes or the provider preset."""

SNIPPET_MAX_LENGTH = 200


class IngestedAttachment(ContractModel):
    """An attachment's metadata; its bytes stay in the raw message."""

    filename: str | None = None
    content_type: str
    size: Annotated[int, Field(ge=0)]
    content_id: str | None = None


class MessageIngestedData(ContractModel):
    """One message as found in one folder of a mailbox.

    Optional additions to the sketch, stamped by ingest from the account so the linker, which
    does not read `mail.accounts.v1`, can apply R14–R16: `account_type`, `member_user_ids`
    (team accounts) and `default_visibility` as it was when this message was received;
    `message_size` (the server's RFC822.SIZE) and `too_large`: the message exceeds the
    provider's per-message limit (R4), so only its header section was fetched and `raw`
    holds just that header; body fields (`snippet`, `attachments`) are then empty.
    """

    account_id: str
    owner_user_id: str
    account_email: str
    folder: str
    folder_role: FolderRole
    uidvalidity: Annotated[int, Field(ge=1)]
    uid: Annotated[int, Field(ge=1)]
    message_id: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    provider_thread_id: str | None = None
    subject: str
    sent_at: AwareDatetime | None = None
    received_at: AwareDatetime | None = None
    from_: EmailAddress | None = Field(default=None, alias="from")
    to: tuple[EmailAddress, ...] = ()
    cc: tuple[EmailAddress, ...] = ()
    bcc: tuple[EmailAddress, ...] = ()
    reply_to: tuple[EmailAddress, ...] = ()
    snippet: Annotated[str, Field(max_length=SNIPPET_MAX_LENGTH)] = ""
    has_html: bool = False
    attachments: tuple[IngestedAttachment, ...] = ()
    flags: tuple[str, ...] = ()
    raw: RawMessageRef
    parse_error: str | None = None
    account_type: AccountType | None = None
    member_user_ids: tuple[str, ...] = ()
    default_visibility: Visibility | None = None
    message_size: Annotated[int, Field(ge=0)] | None = None
    too_large: bool = False


class MessageExpungedData(ContractModel):
    """A message left the mailbox for good (deleted in the mail client, R8)."""

    account_id: str
    folder: str
    uidvalidity: Annotated[int, Field(ge=1)]
    uid: Annotated[int, Field(ge=1)]
    message_id: str | None = None
    raw_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None


class MessageScreenedData(ContractModel):
    """R9: a message from a blocked sender, with no unblocked participant, was not ingested."""

    account_id: str
    folder: str
    uidvalidity: Annotated[int, Field(ge=1)]
    uid: Annotated[int, Field(ge=1)]
    message_id: str | None = None
    sender: str
    reason: str


class MessageIngested(Envelope[MessageIngestedData]):
    type: Literal["mail.message.ingested"] = "mail.message.ingested"


class MessageExpunged(Envelope[MessageExpungedData]):
    type: Literal["mail.message.expunged"] = "mail.message.expunged"


class MessageScreened(Envelope[MessageScreenedData]):
    type: Literal["mail.message.screened"] = "mail.message.screened"


IngestedEvent = MessageIngested | MessageExpunged | MessageScreened
