"""R10: whatever goes wrong describing one message, it is still published (pointing at its
stored raw bytes, with the reason) and the rest of the batch is unaffected."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from mailsync_ingest import message_events
from mailsync_ingest.adapters.imap import FetchedMessage, ImapEndpoint
from mailsync_ingest.message_events import Place
from mailsync_ingest.repository import Account
from mailsync_mime.parsing import ParsedMessage, parse_message

ACCOUNT = Account(
    account_id="acct-1",
    company_id="company-1",
    user_id="user-1",
    email="dana@sales.test",
    provider=None,
    account_type="personal",
    member_user_ids=(),
    imap=ImapEndpoint("127.0.0.1", 143, "plain"),
    username="dana@sales.test",
    sealed_password=b"",
    state="active",
    is_default=True,
)
INBOX = Place("INBOX", "inbox", 7)
RAW = (
    b"From: Ole <ole@customer.test>\r\nSubject: Offer\r\n"
    b"Message-ID: <m1@customer.test>\r\n\r\nHi\r\n"
)


def test_r10_a_well_formed_message_is_described_with_its_fields() -> None:
    sha = hashlib.sha256(RAW).hexdigest()
    event = message_events.describe(ACCOUNT, INBOX, FetchedMessage(3, ("\\Seen",), RAW), sha)
    assert event.data.subject == "Offer"
    assert event.data.message_id == "m1@customer.test"
    assert event.data.parse_error is None
    assert event.data.raw.sha256 == sha
    assert event.data.raw.size == len(RAW)


def test_r10_a_message_whose_fields_cannot_be_serialized_is_published_bare_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def parse_with_a_lone_surrogate(raw: bytes) -> ParsedMessage:
        parsed = parse_message(raw)
        if not raw:
            return parsed
        # What an undeclared 8-bit header decoded with surrogateescape looks like.
        return dataclasses.replace(parsed, subject="Gr\udcfc\udcdfe")

    monkeypatch.setattr(message_events, "parse_message", parse_with_a_lone_surrogate)
    sha = hashlib.sha256(RAW).hexdigest()
    event = message_events.describe(ACCOUNT, INBOX, FetchedMessage(3, (), RAW), sha)
    assert event.data.parse_error is not None
    assert "could not describe the message" in event.data.parse_error
    assert event.data.raw.sha256 == sha
    assert event.data.raw.size == len(RAW)
    assert event.data.uid == 3
    event.to_bytes()


def test_r10_the_event_id_is_the_same_when_the_same_message_is_fetched_again() -> None:
    sha = hashlib.sha256(RAW).hexdigest()
    first = message_events.describe(ACCOUNT, INBOX, FetchedMessage(3, (), RAW), sha)
    again = message_events.describe(ACCOUNT, INBOX, FetchedMessage(3, ("\\Seen",), RAW), sha)
    other_uid = message_events.describe(ACCOUNT, INBOX, FetchedMessage(4, (), RAW), sha)
    assert first.id == again.id
    assert first.id != other_uid.id
