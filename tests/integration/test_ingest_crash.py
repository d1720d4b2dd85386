"""Nothing lost, nothing duplicated: ingest is SIGKILLed in the middle of an initial sync and
another replica finishes it from the cursor and the lease the dead one left behind."""

from __future__ import annotations

import os
import secrets
from collections import defaultdict
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from mailsync_contracts.topics import ACCOUNT_COMMANDS, INGESTED
from mailsync_devstack.dovecot import Dovecot, MailboxUser, crlf
from mailsync_devstack.services import ServiceProcess
from mailsync_devstack.stack import LocalStack
from tests.support.ingest import connect_command, mail
from tests.support.topics import TopicWatcher, TopicWriter

pytestmark = pytest.mark.integration

MESSAGES = 2000


async def test_kill_9_during_initial_sync_loses_nothing_and_publishes_nothing_twice(
    local_stack: LocalStack,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
    database_url: str,
    tmp_path: Path,
    io: tuple[TopicWriter, TopicWatcher],
) -> None:
    writer, watcher = io
    account_id = f"acct-{secrets.token_hex(4)}"
    with dovecot.imap(mailbox_user.email) as imap:
        for n in range(MESSAGES):
            imap.append("INBOX", "", "", crlf(mail(f"history {n}", n)))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **local_stack.env(),
        "MAILSYNC_DATABASE_URL": database_url,
        "MAILSYNC_RAW_STORE_URL": (tmp_path / "raw").as_uri(),
        "MAILSYNC_CREDENTIALS_KEY": Fernet.generate_key().decode(),
        "MAILSYNC_CONSUMER_GROUP": f"ingest-{secrets.token_hex(4)}",
        "MAILSYNC_OUTBOX_POLL_SECONDS": "0.2",
        "MAILSYNC_LEASE_SECONDS": "3",
        "MAILSYNC_LEASE_RENEW_SECONDS": "0.5",
        "MAILSYNC_FETCH_BATCH": "25",
        "MAILSYNC_BACKFILL_CHUNK": "100",
    }
    doomed = ServiceProcess("ingest", env, tmp_path / "doomed")
    (tmp_path / "doomed").mkdir()
    doomed.start()
    try:
        await doomed.wait_ready()
        await writer.send(
            ACCOUNT_COMMANDS, account_id, connect_command(local_stack, mailbox_user, account_id)
        )

        def published() -> int:
            return sum(1 for e in watcher.events(INGESTED) if e.data.account_id == account_id)

        while published() < MESSAGES // 4:
            await watcher.collect(0.05)
    finally:
        doomed.kill()
    assert published() < MESSAGES, "killed in the middle of the initial sync"
    (tmp_path / "heir").mkdir()
    heir = ServiceProcess("ingest", env, tmp_path / "heir")
    heir.start()
    try:
        await heir.wait_ready()
        ids_by_message: dict[str, set[str]] = defaultdict(set)
        while len(ids_by_message) < MESSAGES:
            await watcher.collect(0.5)
            ids_by_message.clear()
            for event in watcher.events(INGESTED):
                if event.data.account_id == account_id and event.data.message_id:
                    ids_by_message[event.data.message_id].add(str(event.id))
        await watcher.collect(2.0)
    finally:
        heir.stop()
    events = [e for e in watcher.events(INGESTED) if e.data.account_id == account_id]
    ids_by_message.clear()
    for event in events:
        ids_by_message[event.data.message_id].add(str(event.id))
    assert len(ids_by_message) == MESSAGES, "every message published"
    # A message appears more than once only as a replay of the same event (same id): the
    # outbox re-publishing a row the dead replica had sent but not yet deleted. The linker
    # drops those by event id (processed_events). Never a second, different event.
    assert all(len(ids) == 1 for ids in ids_by_message.values())
    replays = len(events) - MESSAGES
    assert replays <= 500, f"{replays} replays: more than the outbox's unacknowledged rows"
