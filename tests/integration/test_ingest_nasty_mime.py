"""R10 end to end: the hostile corpus (tests/support/nasty_mime.py) goes into a real Dovecot
INBOX and through ingest in-process; every message comes out on `mail.ingested.v1` exactly
once, with its fields or with the reason it could not be read, and the raw store holds the
very bytes Dovecot serves."""

from __future__ import annotations

import imaplib
import secrets
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from mailsync_contracts.topics import ACCOUNT_COMMANDS, INGESTED
from mailsync_devstack.dovecot import Dovecot, MailboxUser, crlf
from mailsync_devstack.stack import LocalStack
from mailsync_mime.parsing import parse_message
from mailsync_rawstore import LocalRawStore
from tests.support.ingest import IngestUnderTest, connect_command
from tests.support.nasty_mime import NASTY_MESSAGES
from tests.support.topics import TopicWatcher, TopicWriter

pytestmark = pytest.mark.integration

# What no mailbox can hold, so ingest never meets it over IMAP (the unit tests parse it).
SERVER_REFUSES = {"empty-message": "zero byte message"}
# What Dovecot stores otherwise than it was appended (the unit tests parse the originals);
# ingest gets, keeps and parses Dovecot's version like any other message.
SERVER_REWRITES = {
    "nul-bytes-everywhere": "NUL stored as 0x80",
    "bare-cr-line-ends": "bare CR stored as CRLF",
}


async def test_r10_every_nasty_message_is_published_once_with_fields_or_a_reason_and_kept_raw(
    local_stack: LocalStack,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
    database_url: str,
    tmp_path: Path,
    io: tuple[TopicWriter, TopicWatcher],
) -> None:
    writer, watcher = io
    uids: dict[str, int] = {}
    for name, nasty in NASTY_MESSAGES.items():
        if name in SERVER_REFUSES:
            with pytest.raises(imaplib.IMAP4.error, match=SERVER_REFUSES[name]):
                dovecot.append(mailbox_user.email, "INBOX", nasty.raw)
            continue
        uids[name] = dovecot.append(mailbox_user.email, "INBOX", nasty.raw)
    held = dict(dovecot.fetch_with_uids(mailbox_user.email, "INBOX"))
    assert sorted(held) == sorted(uids.values())
    account_id = f"acct-{secrets.token_hex(4)}"
    ingest = IngestUnderTest(local_stack, database_url, tmp_path)
    app = ingest.app()

    def inbox_events() -> list[Any]:
        return [
            e
            for e in watcher.events(INGESTED)
            if e.data.account_id == account_id and e.data.folder == "INBOX"
        ]

    async with app.router.lifespan_context(app):
        await writer.send(
            ACCOUNT_COMMANDS,
            account_id,
            connect_command(local_stack, mailbox_user, account_id, mailbox_user.password),
        )
        deadline = time.monotonic() + 120
        while {e.data.uid for e in inbox_events()} < set(held):
            assert time.monotonic() < deadline, "not every nasty message was published"
            await watcher.collect(0.5)
        await watcher.collect(2.0)  # several poll periods: a republished message would show

    events = inbox_events()
    published = Counter(e.data.uid for e in events)
    assert published == Counter(held.keys()), "each message exactly once, by uid"
    store = LocalRawStore(tmp_path)
    by_uid = {e.data.uid: e.data for e in events}
    for name, uid in uids.items():
        data = by_uid[uid]
        stored = await store.get(data.raw.sha256)
        assert stored == held[uid], f"{name}: the raw store keeps Dovecot's bytes"
        assert data.raw.size == len(held[uid])
        parsed = parse_message(held[uid])
        assert data.subject == parsed.subject, name
        assert data.snippet == parsed.snippet, name
        if name in SERVER_REWRITES:
            assert held[uid] != crlf(NASTY_MESSAGES[name].raw), SERVER_REWRITES[name]
            continue
        assert held[uid] == crlf(NASTY_MESSAGES[name].raw), name
        expected = NASTY_MESSAGES[name].expected
        if expected.subject is not None:
            assert data.subject == expected.subject, name
        expected_error = expected.parse_error
        if expected_error is not None:
            assert data.parse_error is not None, name
            assert expected_error in data.parse_error, name
        elif data.parse_error is not None:
            # Only what the contract adds to the parser's reading (e.g. an address it refuses).
            assert parsed.parse_error is None or parsed.parse_error in data.parse_error, name
