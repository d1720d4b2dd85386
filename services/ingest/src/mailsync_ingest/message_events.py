"""The events ingest publishes about messages on `mail.ingested.v1`, built from what was
fetched. Event ids are derived from the message's mailbox position, so describing the same
fetched message twice (a batch replayed after a crash) yields the same event id, which is
what consumers dedupe on."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from mailsync_contracts import (
    MessageExpunged,
    MessageExpungedData,
    MessageIngested,
    MessageIngestedData,
    MessageScreened,
    MessageScreenedData,
    RawMessageRef,
)
from mailsync_contracts.ingested import FolderRole
from mailsync_ingest.adapters.imap import FetchedMessage
from mailsync_ingest.domain import contract_addresses, contract_attachments
from mailsync_ingest.repository import Account
from mailsync_mime.parsing import ParsedMessage, parse_message

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Place:
    """Where a message was found: folder (as displayed), its role, and UIDVALIDITY."""

    folder: str
    role: FolderRole
    uidvalidity: int


def event_id(kind: str, account_id: str, place: Place, uid: int) -> UUID:
    position = f"mailsync-ingest:{kind}:{account_id}:{place.folder}:{place.uidvalidity}:{uid}"
    return uuid5(NAMESPACE_URL, position)


def ingested_event(
    account: Account,
    place: Place,
    fetched: FetchedMessage,
    sha256: str,
    parsed: ParsedMessage | None = None,
    *,
    message_size: int | None = None,
    too_large: bool = False,
) -> MessageIngested:
    """The event for one fetched message (`parsed` when the caller parsed it already)."""
    parsed = parsed if parsed is not None else parse_message(fetched.raw)
    problems = list(parsed.parse_errors)
    sender = contract_addresses([parsed.sender] if parsed.sender else [], problems)
    data = MessageIngestedData(
        account_id=account.account_id,
        owner_user_id=account.user_id,
        account_email=account.email,
        folder=place.folder,
        folder_role=place.role,
        uidvalidity=place.uidvalidity,
        uid=fetched.uid,
        message_id=parsed.message_id,
        in_reply_to=parsed.in_reply_to,
        references=parsed.references,
        subject=parsed.subject,
        sent_at=parsed.sent_at,
        received_at=datetime.now(UTC),
        from_=sender[0] if sender else None,
        to=contract_addresses(parsed.to, problems),
        cc=contract_addresses(parsed.cc, problems),
        bcc=contract_addresses(parsed.bcc, problems),
        reply_to=contract_addresses(parsed.reply_to, problems),
        snippet="" if too_large else parsed.snippet,
        has_html=parsed.has_html,
        attachments=() if too_large else contract_attachments(parsed),
        flags=fetched.flags,
        raw=RawMessageRef(sha256=sha256, size=len(fetched.raw)),
        parse_error="; ".join(dict.fromkeys(problems)) or None,
        account_type="team" if account.account_type == "team" else "personal",
        member_user_ids=account.member_user_ids,
        default_visibility=account.settings.default_visibility,
        message_size=message_size if message_size is not None else len(fetched.raw),
        too_large=too_large,
    )
    return MessageIngested.build(
        company_id=account.company_id,
        source="ingest",
        data=data,
        id=event_id("ingested", account.account_id, place, fetched.uid),
    )


def describe(
    account: Account,
    place: Place,
    fetched: FetchedMessage,
    sha256: str,
    parsed: ParsedMessage | None = None,
    *,
    message_size: int | None = None,
    too_large: bool = False,
) -> MessageIngested:
    """The message's event, or, when even that fails, a bare one that still points at the
    stored raw bytes and says why (R10: never dropped, never stopping the sync)."""
    try:
        event = ingested_event(
            account,
            place,
            fetched,
            sha256,
            parsed,
            message_size=message_size,
            too_large=too_large,
        )
        event.to_bytes()  # what the outbox will do: fail here, for this message only
        return event
    except Exception as exc:
        log.warning(
            "message stored raw without its fields",
            extra={"account_id": account.account_id, "uid": fetched.uid, "error": repr(exc)},
        )
        bare = FetchedMessage(uid=fetched.uid, flags=fetched.flags, raw=b"")
        event = ingested_event(account, place, bare, sha256)
        data = event.data.model_copy(
            update={
                "raw": RawMessageRef(sha256=sha256, size=len(fetched.raw)),
                "parse_error": f"could not describe the message: {type(exc).__name__}",
                "message_size": message_size if message_size is not None else len(fetched.raw),
                "too_large": too_large,
            }
        )
        return event.model_copy(update={"data": data})


def screened_event(
    account: Account, place: Place, uid: int, parsed: ParsedMessage, reason: str
) -> MessageScreened:
    """R9: the record that a message was held back, without its content."""
    return MessageScreened.build(
        company_id=account.company_id,
        source="ingest",
        data=MessageScreenedData(
            account_id=account.account_id,
            folder=place.folder,
            uidvalidity=place.uidvalidity,
            uid=uid,
            message_id=parsed.message_id,
            sender=parsed.sender.email if parsed.sender else "",
            reason=reason,
        ),
        id=event_id("screened", account.account_id, place, uid),
    )


def expunged_event(
    account: Account, place: Place, uid: int, message_id: str | None, sha256: str | None
) -> MessageExpunged:
    """R8: the message left the mailbox for good (not moved to another folder)."""
    return MessageExpunged.build(
        company_id=account.company_id,
        source="ingest",
        data=MessageExpungedData(
            account_id=account.account_id,
            folder=place.folder,
            uidvalidity=place.uidvalidity,
            uid=uid,
            message_id=message_id,
            raw_sha256=sha256,
        ),
        id=event_id("expunged", account.account_id, place, uid),
    )
