"""The sync engine against the real Dovecot, broker and Postgres, in-process: push, initial
sync order and progress, scope, moves and deletes, UIDVALIDITY, screening, size limits,
resuming after reauthentication, and two replicas sharing accounts."""

from __future__ import annotations

import asyncio
import imaplib
import os
import secrets
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pydantic import SecretStr

from mailsync_contracts import (
    ReauthenticateAccount,
    ReauthenticateAccountData,
    SyncScope,
    UpdateAccountSettings,
    UpdateAccountSettingsData,
)
from mailsync_contracts.topics import ACCOUNT_COMMANDS, ACCOUNTS, INGESTED
from mailsync_devstack.dovecot import Dovecot, MailboxUser
from mailsync_devstack.stack import LocalStack
from tests.support.ingest import IngestUnderTest, connect_command, mail
from tests.support.topics import TopicWatcher, TopicWriter

pytestmark = pytest.mark.integration

IO = tuple[TopicWriter, TopicWatcher]


def _new_account() -> str:
    return f"acct-{secrets.token_hex(4)}"


@asynccontextmanager
async def _running(ingest: IngestUnderTest) -> AsyncIterator[None]:
    app = ingest.app()
    async with app.router.lifespan_context(app):
        yield


def _of(account_id: str, kind: str = "mail.message.ingested") -> Callable[[Any], bool]:
    return lambda e: e.type == kind and e.data.account_id == account_id


def _subject(account_id: str, subject: str) -> Callable[[Any], bool]:
    return lambda e: _of(account_id)(e) and e.data.subject == subject


def _events(watcher: TopicWatcher, topic: str, account_id: str, kind: str) -> list[Any]:
    return [e for e in watcher.events(topic) if _of(account_id, kind)(e)]


async def _synced(watcher: TopicWatcher, account_id: str) -> None:
    await watcher.wait_for(ACCOUNTS, _of(account_id, "mail.account.synced"))


def _imap(dovecot: Dovecot, user: MailboxUser) -> Any:
    return dovecot.imap(user.email)


async def test_r7_idle_delivers_new_mail_without_polling(
    local_stack: LocalStack,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
    database_url: str,
    tmp_path: Path,
    io: IO,
) -> None:
    writer, watcher = io
    account_id = _new_account()
    # Folders without push are polled every 10 minutes here: only IDLE can be this quick.
    ingest = IngestUnderTest(local_stack, database_url, tmp_path, poll_seconds=600.0)
    async with _running(ingest):
        await writer.send(
            ACCOUNT_COMMANDS, account_id, connect_command(local_stack, mailbox_user, account_id)
        )
        await _synced(watcher, account_id)
        await asyncio.sleep(0.5)  # in IDLE by now
        appended_at = time.monotonic()
        dovecot.append(mailbox_user.email, "INBOX", mail("pushed to us", 1))
        event = await watcher.wait_for(INGESTED, _of(account_id), timeout=30.0)
        latency = time.monotonic() - appended_at
    assert event.data.subject == "pushed to us"
    assert event.data.folder_role == "inbox"
    assert latency < 30.0  # well under the 600 s poll: the push did it


async def test_r6_initial_sync_is_newest_first_with_progress_then_synced_once(
    local_stack: LocalStack,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
    database_url: str,
    tmp_path: Path,
    io: IO,
) -> None:
    writer, watcher = io
    account_id = _new_account()
    for n in range(30):
        dovecot.append(mailbox_user.email, "INBOX", mail(f"history {n}", n))
    dovecot.append(mailbox_user.email, "Sent", mail("we wrote", 99, sender="owner@example.test"))
    ingest = IngestUnderTest(local_stack, database_url, tmp_path, backfill_chunk=10, fetch_batch=4)
    async with _running(ingest):
        await writer.send(
            ACCOUNT_COMMANDS, account_id, connect_command(local_stack, mailbox_user, account_id)
        )
        await _synced(watcher, account_id)
        await watcher.collect(1.0)
    inbox = [
        e.data
        for e in _events(watcher, INGESTED, account_id, "mail.message.ingested")
        if e.data.folder == "INBOX"
    ]
    assert [d.uid for d in inbox] == list(range(30, 0, -1)), "newest first"
    sent = [
        e.data
        for e in _events(watcher, INGESTED, account_id, "mail.message.ingested")
        if e.data.folder_role == "sent"
    ]
    assert [d.subject for d in sent] == ["we wrote"]
    progress = [
        e.data
        for e in _events(watcher, ACCOUNTS, account_id, "mail.account.sync_progress")
        if e.data.folder == "INBOX"
    ]
    assert [p.done for p in progress] == [10, 20, 30]
    assert {p.total for p in progress} == {30}
    assert len(_events(watcher, ACCOUNTS, account_id, "mail.account.synced")) == 1


async def test_r6_only_the_chosen_folders_are_synced(
    local_stack: LocalStack,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
    database_url: str,
    tmp_path: Path,
    io: IO,
) -> None:
    writer, watcher = io
    account_id = _new_account()
    with _imap(dovecot, mailbox_user) as imap:
        imap.create('"Clients/Acme"')
    dovecot.append(mailbox_user.email, "INBOX", mail("not in scope", 1))
    dovecot.append(mailbox_user.email, "Clients/Acme", mail("acme thread", 2))
    scope = SyncScope(mode="folders", folders=("Clients/Acme",))
    async with _running(IngestUnderTest(local_stack, database_url, tmp_path)):
        await writer.send(
            ACCOUNT_COMMANDS,
            account_id,
            connect_command(local_stack, mailbox_user, account_id, scope=scope),
        )
        await _synced(watcher, account_id)
        dovecot.append(mailbox_user.email, "Clients/Acme", mail("acme later", 3))
        dovecot.append(mailbox_user.email, "INBOX", mail("still not in scope", 4))
        await watcher.wait_for(
            INGESTED, lambda e: _of(account_id)(e) and e.data.subject == "acme later"
        )
        await watcher.collect(1.0)
    subjects = sorted(
        e.data.subject for e in _events(watcher, INGESTED, account_id, "mail.message.ingested")
    )
    assert subjects == ["acme later", "acme thread"]


async def test_r8_a_move_to_another_folder_is_not_a_delete_and_an_expunge_is(
    local_stack: LocalStack,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
    database_url: str,
    tmp_path: Path,
    io: IO,
) -> None:
    writer, watcher = io
    account_id = _new_account()
    archived = dovecot.append(mailbox_user.email, "INBOX", mail("to archive", 1))
    filed = dovecot.append(mailbox_user.email, "INBOX", mail("to file away", 2))
    trashed = dovecot.append(mailbox_user.email, "INBOX", mail("to trash", 3))
    deleted = dovecot.append(mailbox_user.email, "INBOX", mail("to delete", 4))
    with _imap(dovecot, mailbox_user) as imap:
        imap.create('"Filed"')
    # Filed is outside the scope: only a search of the mailbox can tell that move from a delete.
    scope = SyncScope(mode="folders", folders=("INBOX", "Archive"))
    async with _running(IngestUnderTest(local_stack, database_url, tmp_path)):
        await writer.send(
            ACCOUNT_COMMANDS,
            account_id,
            connect_command(local_stack, mailbox_user, account_id, scope=scope),
        )
        await _synced(watcher, account_id)
        ingested = {
            e.data.subject: e.data
            for e in _events(watcher, INGESTED, account_id, "mail.message.ingested")
        }
        dovecot.move(mailbox_user.email, "INBOX", [archived], "Archive")
        dovecot.move(mailbox_user.email, "INBOX", [filed], "Filed")
        dovecot.move(mailbox_user.email, "INBOX", [trashed], "Trash")
        dovecot.expunge(mailbox_user.email, "INBOX", [deleted])
        await watcher.wait_for(
            INGESTED,
            lambda e: _of(account_id, "mail.message.expunged")(e) and e.data.uid == deleted,
        )
        await watcher.wait_for(
            INGESTED,
            lambda e: _of(account_id, "mail.message.expunged")(e) and e.data.uid == trashed,
        )
        await watcher.collect(2.0)
    expunged = _events(watcher, INGESTED, account_id, "mail.message.expunged")
    assert sorted(e.data.message_id for e in expunged) == sorted(
        [ingested["to trash"].message_id, ingested["to delete"].message_id]
    )
    assert all(e.data.folder == "INBOX" for e in expunged)
    # The archived copy is the same message: not published again.
    subjects = [
        e.data.subject for e in _events(watcher, INGESTED, account_id, "mail.message.ingested")
    ]
    assert sorted(subjects) == ["to archive", "to delete", "to file away", "to trash"]


async def test_r7_a_uidvalidity_change_resyncs_the_folder_without_a_single_duplicate(
    local_stack: LocalStack,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
    database_url: str,
    tmp_path: Path,
    io: IO,
) -> None:
    writer, watcher = io
    account_id = _new_account()
    with _imap(dovecot, mailbox_user) as imap:
        imap.create('"Projects"')
    originals = [mail(f"project {n}", n) for n in range(5)]
    for raw in originals:
        dovecot.append(mailbox_user.email, "Projects", raw)
    scope = SyncScope(mode="folders", folders=("Projects",))
    ingest = IngestUnderTest(local_stack, database_url, tmp_path)
    async with _running(ingest):
        await writer.send(
            ACCOUNT_COMMANDS,
            account_id,
            connect_command(local_stack, mailbox_user, account_id, scope=scope),
        )
        await _synced(watcher, account_id)
    before = await _cursor_uidvalidity(database_url, account_id, "Projects")
    # Recreate the mailbox while ingest is down: same messages, new UIDVALIDITY (RFC 3501 2.3.1.1).
    with _imap(dovecot, mailbox_user) as imap:
        assert imap.delete('"Projects"')[0] == "OK"
        assert imap.create('"Projects"')[0] == "OK"
    for raw in [*originals, mail("project new", 9)]:
        dovecot.append(mailbox_user.email, "Projects", raw)
    async with _running(ingest):
        await watcher.wait_for(
            INGESTED, lambda e: _of(account_id)(e) and e.data.subject == "project new"
        )
        await watcher.collect(1.5)
    after = await _cursor_uidvalidity(database_url, account_id, "Projects")
    assert after != before, "the mailbox really got a new UIDVALIDITY"
    subjects = [
        e.data.subject for e in _events(watcher, INGESTED, account_id, "mail.message.ingested")
    ]
    assert sorted(subjects) == sorted([f"project {n}" for n in range(5)] + ["project new"])
    assert not _events(watcher, INGESTED, account_id, "mail.message.expunged")


async def _cursor_uidvalidity(database_url: str, account_id: str, folder: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        value: int = await conn.fetchval(
            "SELECT uidvalidity FROM ingest.folder_cursors WHERE account_id = $1 AND folder = $2",
            account_id,
            folder,
        )
        return value
    finally:
        await conn.close()


async def test_r9_mail_from_a_blocked_sender_is_screened_unless_someone_else_is_unblocked(
    local_stack: LocalStack,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
    database_url: str,
    tmp_path: Path,
    io: IO,
) -> None:
    writer, watcher = io
    account_id = _new_account()
    async with _running(IngestUnderTest(local_stack, database_url, tmp_path)):
        await writer.send(
            ACCOUNT_COMMANDS, account_id, connect_command(local_stack, mailbox_user, account_id)
        )
        await _synced(watcher, account_id)
        settings = UpdateAccountSettings.build(
            company_id="company-sync",
            source="crm",
            data=UpdateAccountSettingsData(account_id=account_id, blocklist=("@spam.test",)),
        )
        await writer.send(ACCOUNT_COMMANDS, account_id, settings)
        await watcher.wait_for(ACCOUNTS, _of(account_id, "mail.account.settings_updated"))
        await asyncio.sleep(1.5)  # the sync restarts with the new settings on its next round
        # Addressed to the account's own address only: nobody unblocked is on it.
        own = f"To: {mailbox_user.email}".encode()
        blocked = mail("cheap pills", 1, sender="Promo <promo@spam.test>")
        blocked = blocked.replace(b"To: owner@example.test", own)
        kept = mail("cheap pills, but cc'd to a customer", 2, sender="Promo <promo@spam.test>")
        kept = kept.replace(b"To: owner@example.test", own + b"\nCc: ole@customer.test")
        dovecot.append(mailbox_user.email, "INBOX", blocked)
        dovecot.append(mailbox_user.email, "INBOX", kept)
        await watcher.wait_for(INGESTED, _of(account_id, "mail.message.screened"))
        await watcher.wait_for(INGESTED, _of(account_id))
        await watcher.collect(1.0)
    screened = _events(watcher, INGESTED, account_id, "mail.message.screened")
    ingested = _events(watcher, INGESTED, account_id, "mail.message.ingested")
    assert [e.data.sender for e in screened] == ["promo@spam.test"]
    assert "@spam.test" in screened[0].data.reason
    assert [e.data.subject for e in ingested] == ["cheap pills, but cc'd to a customer"]


async def test_r4_a_message_over_the_size_limit_is_recorded_from_its_header_and_flagged(
    local_stack: LocalStack,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
    database_url: str,
    tmp_path: Path,
    io: IO,
) -> None:
    writer, watcher = io
    account_id = _new_account()
    big = mail("the big deck", 1).replace(b"body 1", b"x" * 200_000)
    dovecot.append(mailbox_user.email, "INBOX", big)
    dovecot.append(mailbox_user.email, "INBOX", mail("small", 2))
    ingest = IngestUnderTest(local_stack, database_url, tmp_path, max_message_bytes=50_000)
    async with _running(ingest):
        await writer.send(
            ACCOUNT_COMMANDS, account_id, connect_command(local_stack, mailbox_user, account_id)
        )
        await _synced(watcher, account_id)
        await watcher.collect(0.5)
    events = {
        e.data.subject: e.data
        for e in _events(watcher, INGESTED, account_id, "mail.message.ingested")
    }
    assert events["the big deck"].too_large
    assert events["the big deck"].message_size is not None
    assert events["the big deck"].message_size > 200_000
    assert events["the big deck"].raw.size < 1_000, "only the header was fetched and stored"
    assert not events["small"].too_large


async def test_r6_the_history_window_leaves_older_mail_out(
    local_stack: LocalStack,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
    database_url: str,
    tmp_path: Path,
    io: IO,
) -> None:
    writer, watcher = io
    account_id = _new_account()
    with _imap(dovecot, mailbox_user) as imap:
        old = imaplib.Time2Internaldate(time.time() - 90 * 86400)
        imap.append("INBOX", "", old, mail("last quarter", 1).replace(b"\n", b"\r\n"))
    dovecot.append(mailbox_user.email, "INBOX", mail("this week", 2))
    async with _running(IngestUnderTest(local_stack, database_url, tmp_path)):
        command = connect_command(local_stack, mailbox_user, account_id, history_days=30)
        await writer.send(ACCOUNT_COMMANDS, account_id, command)
        await _synced(watcher, account_id)
        await watcher.collect(0.5)
    subjects = [
        e.data.subject for e in _events(watcher, INGESTED, account_id, "mail.message.ingested")
    ]
    assert subjects == ["this week"]


async def test_r5_reauthenticate_resumes_from_the_saved_cursor(
    local_stack: LocalStack,
    dovecot: Dovecot,
    database_url: str,
    tmp_path: Path,
    io: IO,
) -> None:
    writer, watcher = io
    user = dovecot.add_user(f"rotating-{secrets.token_hex(3)}@example.test")
    account_id = _new_account()
    dovecot.append(user.email, "INBOX", mail("before the password change", 1))
    async with _running(IngestUnderTest(local_stack, database_url, tmp_path)):
        await writer.send(
            ACCOUNT_COMMANDS, account_id, connect_command(local_stack, user, account_id)
        )
        await _synced(watcher, account_id)
        changed = dovecot.add_user(user.email, password=f"new-{secrets.token_hex(4)}")
        # Only a new login sees the new password: stop this replica's session by restarting.
    dovecot.append(user.email, "INBOX", mail("while locked out", 2))
    async with _running(IngestUnderTest(local_stack, database_url, tmp_path)) as _:
        await watcher.wait_for(ACCOUNTS, _of(account_id, "mail.account.reauth_required"))
        reauth = ReauthenticateAccount.build(
            company_id="company-sync",
            source="crm",
            data=ReauthenticateAccountData(
                account_id=account_id, username=user.email, password=SecretStr(changed.password)
            ),
        )
        await writer.send(ACCOUNT_COMMANDS, account_id, reauth)
        await watcher.wait_for(
            INGESTED, lambda e: _of(account_id)(e) and e.data.subject == "while locked out"
        )
        await watcher.collect(1.0)
    subjects = [
        e.data.subject for e in _events(watcher, INGESTED, account_id, "mail.message.ingested")
    ]
    assert subjects == ["before the password change", "while locked out"]
    assert len(_events(watcher, ACCOUNTS, account_id, "mail.account.reauth_required")) == 1


async def test_two_replicas_never_sync_one_account_and_a_stopped_one_hands_over(
    local_stack: LocalStack,
    dovecot: Dovecot,
    database_url: str,
    tmp_path: Path,
    io: IO,
) -> None:
    writer, watcher = io
    users = [dovecot.add_user(f"replica-{n}-{secrets.token_hex(3)}@example.test") for n in range(4)]
    accounts = [_new_account() for _ in users]
    for user in users:
        dovecot.append(user.email, "INBOX", mail("first", 1))
    group = f"ingest-{secrets.token_hex(4)}"
    first = IngestUnderTest(local_stack, database_url, tmp_path, consumer_group=group)
    second = IngestUnderTest(
        local_stack,
        database_url,
        tmp_path,
        consumer_group=group,
        credentials_key=first.settings.credentials_key,
    )
    async with AsyncExitStack() as replicas:
        await replicas.enter_async_context(_running(first))
        await replicas.enter_async_context(_running(second))
        for user, account_id in zip(users, accounts, strict=True):
            await writer.send(
                ACCOUNT_COMMANDS, account_id, connect_command(local_stack, user, account_id)
            )
        for account_id in accounts:
            await _synced(watcher, account_id)
        owners = await _lease_owners(database_url, accounts)
        assert all(owner is not None for owner in owners.values())
    # Both stopped: leases released at once, nobody holds them.
    assert set((await _lease_owners(database_url, accounts)).values()) == {None}
    for user in users:
        dovecot.append(user.email, "INBOX", mail("second", 2))
    # A replica starting now takes every released account at once.
    third = IngestUnderTest(
        local_stack, database_url, tmp_path, credentials_key=first.settings.credentials_key
    )
    async with _running(third):
        for account_id in accounts:
            await watcher.wait_for(INGESTED, _subject(account_id, "second"))
        await watcher.collect(1.0)
    for account_id in accounts:
        subjects = [
            e.data.subject for e in _events(watcher, INGESTED, account_id, "mail.message.ingested")
        ]
        assert sorted(subjects) == ["first", "second"], account_id


async def _lease_owners(database_url: str, accounts: list[str]) -> dict[str, str | None]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT account_id, lease_owner FROM ingest.accounts"
            " WHERE account_id = ANY($1::text[])",
            accounts,
        )
        return {row["account_id"]: row["lease_owner"] for row in rows}
    finally:
        await conn.close()


def _imap_processes(dovecot: Dovecot, email: str) -> list[int]:
    """This Dovecot's `imap` worker processes serving `email`: one per client connection
    (the devstack's Dovecot puts "imap [user ip]" in each one's title)."""
    master = dovecot.pid
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            title = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        if name == "imap" and parent == master and f"[{email} ".encode() in title:
            found.append(int(entry.name))
    return found


def _logins(dovecot: Dovecot, email: str) -> int:
    return dovecot.log_path.read_text(errors="replace").count(f"Login: user=<{email}>")


async def test_a_dropped_connection_is_reestablished_without_a_storm(
    local_stack: LocalStack,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
    database_url: str,
    tmp_path: Path,
    io: IO,
) -> None:
    writer, watcher = io
    account_id = _new_account()
    async with _running(IngestUnderTest(local_stack, database_url, tmp_path)):
        await writer.send(
            ACCOUNT_COMMANDS, account_id, connect_command(local_stack, mailbox_user, account_id)
        )
        await _synced(watcher, account_id)
        logins_before = _logins(dovecot, mailbox_user.email)
        # What a server restart or a network cut looks like from here: the sockets die.
        sessions = _imap_processes(dovecot, mailbox_user.email)
        assert sessions, "the account's IMAP session is there to cut"
        for pid in sessions:
            os.kill(pid, signal.SIGKILL)
        dovecot.append(mailbox_user.email, "INBOX", mail("after the cut", 1))
        await watcher.wait_for(INGESTED, _subject(account_id, "after the cut"))
        await watcher.collect(2.0)
    # One reconnect (plus the test's own APPEND login), not one per retry tick.
    assert _logins(dovecot, mailbox_user.email) - logins_before <= 3
