"""Which types travel on which topic, and `decode()`: raw record value → typed event.

Invariants:
- every type string belongs to exactly one topic;
- `decode()` never returns something that is not a valid event of the given topic: it raises
  `ContractViolation` with kind "unknown_topic" (a topic not in the contract), "not_json",
  "unknown_type" (no such type on this topic, including a type that belongs to another topic:
  the `type` is checked before validation so this is not reported as a generic schema error)
  or "invalid" (the type is right, the payload is not).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

from mailsync_contracts import topics
from mailsync_contracts.accounts import (
    AccountCommand,
    AccountConnected,
    AccountDisconnected,
    AccountEvent,
    AccountReauthenticated,
    AccountReauthRequired,
    AccountRejected,
    AccountSettingsUpdated,
    AccountSynced,
    AccountSyncProgressed,
    ConnectAccount,
    DefaultAccountChanged,
    DisconnectAccount,
    ReauthenticateAccount,
    SetDefaultAccount,
    UpdateAccountSettings,
)
from mailsync_contracts.crm import CrmEntityDeleted, CrmEntityEvent, CrmEntityUpserted
from mailsync_contracts.deadletter import DeadLetterEvent, DeadLetterRecorded
from mailsync_contracts.envelope import Envelope
from mailsync_contracts.ingested import (
    IngestedEvent,
    MessageExpunged,
    MessageIngested,
    MessageScreened,
)
from mailsync_contracts.outbound import (
    MessageSent,
    MirrorApplied,
    MirrorFailed,
    OutboundEvent,
    SendFailed,
)
from mailsync_contracts.sending import RequestGroupSend, RequestSend, SendCommand
from mailsync_contracts.threads import (
    ArchiveThread,
    DeleteMessage,
    DeleteThread,
    LinkThread,
    MarkThreadRead,
    MessageDeleted,
    SetThreadVisibility,
    ThreadArchived,
    ThreadCommand,
    ThreadDeleted,
    ThreadEvent,
    ThreadLinkChoiceNeeded,
    ThreadUnarchived,
    ThreadUpdated,
    UnarchiveThread,
    UnlinkThread,
)
from mailsync_contracts.tracking import LinkClicked, MessageOpened, TrackingEvent
from mailsync_contracts.violations import (
    ContractViolation,
    envelope_type,
    explain,
    parse_envelope_object,
)

AnyEvent = Envelope[Any]
"""Any event or command of the contract; narrow it with `isinstance` or `match`."""

TOPIC_EVENTS: Mapping[str, tuple[type[AnyEvent], ...]] = MappingProxyType(
    {
        topics.CRM_ENTITIES: (CrmEntityUpserted, CrmEntityDeleted),
        topics.ACCOUNT_COMMANDS: (
            ConnectAccount,
            UpdateAccountSettings,
            DisconnectAccount,
            SetDefaultAccount,
            ReauthenticateAccount,
        ),
        topics.ACCOUNTS: (
            AccountConnected,
            AccountRejected,
            AccountSyncProgressed,
            AccountSynced,
            AccountReauthRequired,
            AccountReauthenticated,
            AccountDisconnected,
            AccountSettingsUpdated,
            DefaultAccountChanged,
        ),
        topics.INGESTED: (MessageIngested, MessageExpunged, MessageScreened),
        topics.THREADS: (
            ThreadUpdated,
            ThreadLinkChoiceNeeded,
            ThreadArchived,
            ThreadUnarchived,
            ThreadDeleted,
            MessageDeleted,
        ),
        topics.THREAD_COMMANDS: (
            ArchiveThread,
            UnarchiveThread,
            DeleteThread,
            DeleteMessage,
            LinkThread,
            UnlinkThread,
            SetThreadVisibility,
            MarkThreadRead,
        ),
        topics.SEND_COMMANDS: (RequestSend, RequestGroupSend),
        topics.OUTBOUND: (MessageSent, SendFailed, MirrorApplied, MirrorFailed),
        topics.TRACKING: (MessageOpened, LinkClicked),
        topics.DEADLETTER: (DeadLetterRecorded,),
    }
)
"""The event classes of each topic, in the order ARCHITECTURE §2 lists their types."""

EVENT_TYPES: Mapping[str, type[AnyEvent]] = MappingProxyType(
    {cls.type_name(): cls for classes in TOPIC_EVENTS.values() for cls in classes}
)
"""Type string → class, over all topics."""

TOPIC_OF_TYPE: Mapping[str, str] = MappingProxyType(
    {cls.type_name(): topic for topic, classes in TOPIC_EVENTS.items() for cls in classes}
)
"""Type string → the one topic it travels on."""

# Validation errors are summarised by `explain`, but the ValidationError itself is chained to
# the ContractViolation and may be logged with it: never let it echo bodies or passwords.
_QUIET = ConfigDict(hide_input_in_errors=True)


def _adapter(members: Any) -> TypeAdapter[Any]:
    """A discriminated union on `type` of a topic's event classes."""
    if isinstance(members, type):
        # One type on the topic: nothing to discriminate, and the model's own config is quiet.
        return TypeAdapter(members)
    return TypeAdapter(Annotated[members, Field(discriminator="type")], config=_QUIET)


TOPIC_ADAPTERS: Mapping[str, TypeAdapter[Any]] = MappingProxyType(
    {
        topics.CRM_ENTITIES: _adapter(CrmEntityEvent),
        topics.ACCOUNT_COMMANDS: _adapter(AccountCommand),
        topics.ACCOUNTS: _adapter(AccountEvent),
        topics.INGESTED: _adapter(IngestedEvent),
        topics.THREADS: _adapter(ThreadEvent),
        topics.THREAD_COMMANDS: _adapter(ThreadCommand),
        topics.SEND_COMMANDS: _adapter(SendCommand),
        topics.OUTBOUND: _adapter(OutboundEvent),
        topics.TRACKING: _adapter(TrackingEvent),
        topics.DEADLETTER: _adapter(DeadLetterEvent),
    }
)
"""Per topic, a TypeAdapter of its discriminated union (also what the AsyncAPI document uses)."""


def decode(topic: str, raw: bytes | None) -> AnyEvent:
    """The event in a record value read from `topic`, or `ContractViolation` saying why not."""
    adapter = TOPIC_ADAPTERS.get(topic)
    if adapter is None:
        raise ContractViolation(f"{topic!r} is not a mailsync topic", "unknown_topic")
    envelope = parse_envelope_object(raw)
    event_type = envelope_type(envelope)
    if TOPIC_OF_TYPE.get(event_type) != topic:
        home = TOPIC_OF_TYPE.get(event_type)
        where = f"it belongs on {home!r}" if home else "no topic has it"
        raise ContractViolation(
            f"type {event_type!r} is not carried by {topic!r}: {where}",
            "unknown_type",
            event_type,
        )
    try:
        event: AnyEvent = adapter.validate_python(envelope)
    except ValidationError as exc:
        raise ContractViolation(explain(exc, event_type), "invalid", event_type) from exc
    return event
