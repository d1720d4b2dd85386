"""`mail.send.commands.v1`: the CRM asks outbound to send, keyed by idempotency key.

Invariants:
- a request is idempotent by `idempotency_key` (R20): a retried request with the same key
  never sends twice; in a group send each recipient's message is idempotent by the key and
  the recipient's address, so a partly failed group send can be retried as a whole;
- `account_id` None means the user's default account (R3); with no default the send fails
  with code "no_default_account";
- a request has at least one recipient and something to send (a body or a template);
- attachments are claim-checks in the raw store, never bytes in the record.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from mailsync_contracts.envelope import ContractModel, Envelope
from mailsync_contracts.values import EmailAddress, ItemRef, RawMessageRef


class TrackingOptions(ContractModel):
    """R23: tracking is chosen per message; off unless asked for."""

    opens: bool = False
    clicks: bool = False


class AttachmentRef(RawMessageRef):
    """A file to attach, already in the raw store under its sha256."""

    filename: str
    content_type: str = "application/octet-stream"


class _Composition(ContractModel):
    """What a single and a group send share: who sends, from where, what."""

    idempotency_key: Annotated[str, Field(min_length=1)]
    account_id: str | None = None
    user_id: str
    subject: str
    html_body: str | None = None
    text_body: str | None = None
    template_id: str | None = None
    tracking: TrackingOptions = TrackingOptions()
    attachments: tuple[AttachmentRef, ...] = ()
    # Optional additions to the brief: the CRM items the send was made from (they fill the
    # template's smart fields, R21, and the sent thread is linked to them), and whether an
    # automation rather than a person sent it (R3 words its failure differently).
    related_items: tuple[ItemRef, ...] = ()
    automated: bool = False

    def _require_content(self) -> None:
        if self.html_body is None and self.text_body is None and self.template_id is None:
            raise ValueError("a send needs html_body, text_body or template_id")


class RequestSendData(_Composition):
    """One message to To/Cc/Bcc; `in_reply_to_thread_id` makes it a reply in that thread (R20)."""

    to: tuple[EmailAddress, ...] = ()
    cc: tuple[EmailAddress, ...] = ()
    bcc: tuple[EmailAddress, ...] = ()
    in_reply_to_thread_id: str | None = None

    @model_validator(mode="after")
    def _has_recipient_and_content(self) -> Self:
        if not (self.to or self.cc or self.bcc):
            raise ValueError("a send needs at least one recipient in to, cc or bcc")
        self._require_content()
        return self


class GroupRecipient(ContractModel):
    """One recipient of a group email and the values that personalise their copy (R22)."""

    address: EmailAddress
    personalisation: dict[str, str] = Field(default_factory=dict)
    related_items: tuple[ItemRef, ...] = ()


class RequestGroupSendData(_Composition):
    """R22: one individual message per recipient, each seeing only themselves in To."""

    recipients: Annotated[tuple[GroupRecipient, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _recipients_are_distinct(self) -> Self:
        seen: set[str] = set()
        for index, recipient in enumerate(self.recipients):
            key = recipient.address.match_key
            if key in seen:
                # The index, not the address: reasons end up in logs.
                raise ValueError(f"recipients[{index}] repeats an earlier recipient")
            seen.add(key)
        self._require_content()
        return self


class RequestSend(Envelope[RequestSendData]):
    type: Literal["mail.send.requested"] = "mail.send.requested"


class RequestGroupSend(Envelope[RequestGroupSendData]):
    type: Literal["mail.group_send.requested"] = "mail.group_send.requested"


SendCommand = RequestSend | RequestGroupSend
