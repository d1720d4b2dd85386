"""`mail.outbound.v1`: what outbound did to mailboxes, keyed by account id.

Invariants:
- `mail.message.sent` is published once per message that left over SMTP (a group send yields
  one per recipient); its `message_id` (RFC 5322 Message-ID, without angle brackets) is how
  the linker recognises the copy that ingest later finds in the Sent folder, and the key of
  `mail.tracking.v1`;
- `mail.send.failed` says why in words (`reason`) and in a stable `code` a UI can branch on;
  when no account could be chosen its record key is the request's idempotency key;
- mirror events report R19 work; a failure never undoes the CRM-side state, and
  `will_retry` tells whether outbound keeps trying with backoff.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from mailsync_contracts.envelope import ContractModel, Envelope
from mailsync_contracts.sending import TrackingOptions
from mailsync_contracts.values import EmailAddress, ItemRef, MailboxLocation, RawMessageRef

SendFailureCode = Literal[
    "no_default_account",
    "account_not_found",
    "account_unavailable",
    "message_too_large",
    "template_error",
    "attachment_missing",
    "recipient_rejected",
    "smtp_error",
    "invalid_request",
]
"""`account_unavailable`: disconnected or waiting for reauthentication (R5);
`message_too_large`: over the provider's limit, rejected before sending (R21)."""

MirrorAction = Literal["archive", "delete"]
"""R19: archive moves to the mailbox's Archive (Gmail: drops the Inbox label); delete moves to
Trash."""


class TrackedLink(ContractModel):
    """A link outbound rewrote (R23): `url` is the destination exactly as written, byte for byte."""

    link_id: str
    url: str


class MessageSentData(ContractModel):
    """One message handed to SMTP and appended to Sent (R20)."""

    idempotency_key: str
    account_id: str
    user_id: str
    message_id: str
    in_reply_to_thread_id: str | None = None
    from_: EmailAddress = Field(alias="from")
    to: tuple[EmailAddress, ...] = ()
    cc: tuple[EmailAddress, ...] = ()
    bcc: tuple[EmailAddress, ...] = ()
    subject: str
    sent_at: AwareDatetime
    tracking: TrackingOptions = TrackingOptions()
    tracked_links: tuple[TrackedLink, ...] = ()
    group_send: bool = False
    related_items: tuple[ItemRef, ...] = ()
    raw: RawMessageRef | None = None


class SendFailedData(ContractModel):
    """A send request (or one recipient of a group send) that will not be sent as asked."""

    idempotency_key: str
    account_id: str | None = None
    user_id: str
    recipient: EmailAddress | None = None
    code: SendFailureCode
    reason: str


class MirrorAppliedData(ContractModel):
    """The mailbox now reflects a CRM archive or delete; `target_folder` is where it went.

    `thread_id` and `message_id` are the linker's ids from the event that asked for the mirror.
    """

    account_id: str
    thread_id: str | None = None
    message_id: str | None = None
    action: MirrorAction
    locations: tuple[MailboxLocation, ...] = ()
    target_folder: str | None = None


class MirrorFailedData(ContractModel):
    """A mirror attempt failed; `attempt` counts from 1."""

    account_id: str
    thread_id: str | None = None
    message_id: str | None = None
    action: MirrorAction
    locations: tuple[MailboxLocation, ...] = ()
    reason: str
    attempt: Annotated[int, Field(ge=1)] = 1
    will_retry: bool
    next_attempt_at: AwareDatetime | None = None


class MessageSent(Envelope[MessageSentData]):
    type: Literal["mail.message.sent"] = "mail.message.sent"


class SendFailed(Envelope[SendFailedData]):
    type: Literal["mail.send.failed"] = "mail.send.failed"


class MirrorApplied(Envelope[MirrorAppliedData]):
    type: Literal["mail.mirror.applied"] = "mail.mirror.applied"


class MirrorFailed(Envelope[MirrorFailedData]):
    type: Literal["mail.mirror.failed"] = "mail.mirror.failed"


OutboundEvent = MessageSent | SendFailed | MirrorApplied | MirrorFailed
