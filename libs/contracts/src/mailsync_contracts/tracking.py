"""`mail.tracking.v1`: opens and clicks of tracked sent mail, keyed by the sent message's id.

Invariants (R24):
- every hit is reported, machine or human; `machine` says whether it counts as a human open or
  click, and `reason` says why: "human" exactly when `machine` is false;
- `first_human_open` / `first_human_click` is true on one event per message at most, so the
  sender is notified once;
- `message_id` is the RFC 5322 Message-ID of the sent message, as in `mail.message.sent`.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import AwareDatetime, model_validator

from mailsync_contracts.envelope import ContractModel, Envelope
from mailsync_contracts.values import EmailAddress

HitReason = Literal[
    "human",
    "image_proxy",
    "privacy_prefetch",
    "link_scanner",
    "bot_user_agent",
    "head_request",
    "too_soon_after_send",
    "sender_self_view",
]
"""Why a hit was judged human or machine (R24)."""


class _Hit(ContractModel):
    message_id: str
    account_id: str
    user_id: str
    recipient: EmailAddress | None = None
    machine: bool
    reason: HitReason
    user_agent: str | None = None

    @model_validator(mode="after")
    def _reason_matches_verdict(self) -> Self:
        if self.machine == (self.reason == "human"):
            raise ValueError('reason is "human" exactly when machine is false')
        return self


class MessageOpenedData(_Hit):
    """The open pixel was fetched. `recipient` is known when the message had one (group send)."""

    opened_at: AwareDatetime
    first_human_open: bool = False


class LinkClickedData(_Hit):
    """A rewritten link was followed to `url`."""

    link_id: str
    url: str
    clicked_at: AwareDatetime
    first_human_click: bool = False


class MessageOpened(Envelope[MessageOpenedData]):
    type: Literal["mail.message.opened"] = "mail.message.opened"


class LinkClicked(Envelope[LinkClickedData]):
    type: Literal["mail.link.clicked"] = "mail.link.clicked"


TrackingEvent = MessageOpened | LinkClicked
