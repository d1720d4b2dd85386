"""ingest against the real broker, Postgres and Dovecot, in-process: accounts, the INBOX
sync, credentials at rest, resuming from the stored cursor."""

from __future__ import annotations

import secrets
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr

from mailsync_contracts import ConnectAccount, ConnectAccountData, MailServer
from mailsync_contracts.topics import ACCOUNT_COMMANDS, ACCOUNTS, INGESTED
from mailsync_devstack.dovecot import Dovecot, MailboxUser
from mailsync_devstack.stack import LocalStack
from tests.support.ingest import IngestUnderTest, connect_command, mail
from tests.support.topics import TopicWatcher, TopicWriter

pytestmark = pytest.mark.integration


async def test_r5_wrong_credentials_give_one_reauth_required_event_and_stop_only_that_account(
    local_stack: LocalStack,
    dovecot: Dovecot,
    database_url: str,
    tmp_path: Path,
    io: tuple[TopicWriter, TopicWatcher],
) -> None:
    writer, watcher = io
    good, bad = (
        dovecot.add_user(f"good-{secrets.token_hex(3)}@example.test"),
        dovecot.add_user(f"bad-{secrets.token_hex(3)}@example.test"),
    )
    good_id, bad_id = f"acct-{secrets.token_hex(4)}", f"acct-{secrets.token_hex(4)}"
    dovecot.append(good.email, "INBOX", mail("still syncing", 1))
    ingest = IngestUnderTest(local_stack, database_url, tmp_path)
    app = ingest.app()
    async with app.router.lifespan_context(app):
        await writer.send(
            ACCOUNT_COMMANDS, bad_id, connect_command(local_stack, bad, bad_id, "wrong")
        )
        await writer.send(
            ACCOUNT_COMMANDS, good_id, connect_command(local_stack, good, good_id, good.password)
        )
        await watcher.wait_for(
            ACCOUNTS,
            lambda e: e.type == "mail.account.reauth_required" and e.data.account_id == bad_id,
        )
        await watcher.wait_for(INGESTED, lambda e: e.data.account_id == good_id)
        await watcher.collect(2.0)  # several poll periods: a storm would show here
    reauth = [
        e
        for e in watcher.events(ACCOUNTS)
        if e.type == "mail.account.reauth_required" and e.data.account_id == bad_id
    ]
    assert len(reauth) == 1
    assert "wrong" not in reauth[0].to_bytes().decode(), "credentials never appear in events"
    conn = await asyncpg.connect(database_url)
    try:
        # The topic also holds other tests' accounts (a fresh group reads from the start).
        rows = await conn.fetch(
            "SELECT account_id, state FROM ingest.accounts WHERE account_id = ANY($1::text[])",
            [bad_id, good_id],
        )
        states = {row["account_id"]: row["state"] for row in rows}
        sealed = await conn.fetchval(
            "SELECT sealed_password FROM ingest.accounts WHERE account_id = $1", good_id
        )
    finally:
        await conn.close()
    assert states == {bad_id: "reauth_required", good_id: "active"}
    assert good.password.encode() not in bytes(sealed), "R5: credentials are encrypted at rest"


async def test_r1_a_connect_beyond_the_plan_limit_is_rejected_and_nothing_else_changes(
    local_stack: LocalStack,
    dovecot: Dovecot,
    database_url: str,
    tmp_path: Path,
    io: tuple[TopicWriter, TopicWatcher],
) -> None:
    writer, watcher = io
    user = dovecot.add_user(f"growth-{secrets.token_hex(3)}@example.test")
    first, second = f"acct-{secrets.token_hex(4)}", f"acct-{secrets.token_hex(4)}"
    ingest = IngestUnderTest(local_stack, database_url, tmp_path)
    app = ingest.app()
    async with app.router.lifespan_context(app):
        for account_id in (first, second):
            # Same CRM user for both: the plan limit counts per user.
            command = connect_command(
                local_stack, user, account_id, plan="growth", user_id=user.email
            )
            await writer.send(ACCOUNT_COMMANDS, account_id, command)
        # Commands for different accounts travel on different keys, so either may come first.
        connected = await watcher.wait_for(
            ACCOUNTS,
            lambda e: e.type == "mail.account.connected" and e.data.account_id in (first, second),
        )
        other = second if connected.data.account_id == first else first
        rejected = await watcher.wait_for(
            ACCOUNTS, lambda e: e.type == "mail.account.rejected" and e.data.account_id == other
        )
        await watcher.collect(1.0)
    assert connected.data.is_default
    assert rejected.data.code == "plan_limit"
    assert "growth" in rejected.data.reason
    # The refused account has nothing but its rejection; the other one syncs as usual.
    refused = [e.type for e in watcher.events(ACCOUNTS) if e.data.account_id == other]
    assert refused == ["mail.account.rejected"]
    accepted = [
        e.type for e in watcher.events(ACCOUNTS) if e.data.account_id == connected.data.account_id
    ]
    assert accepted[0] == "mail.account.connected"
    assert "mail.account.rejected" not in accepted


async def test_a_restarted_ingest_resumes_from_its_cursor_without_republishing(
    local_stack: LocalStack,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
    database_url: str,
    tmp_path: Path,
    io: tuple[TopicWriter, TopicWatcher],
) -> None:
    writer, watcher = io
    account_id = f"acct-{secrets.token_hex(4)}"
    for n in range(3):
        dovecot.append(mailbox_user.email, "INBOX", mail(f"before restart {n}", n))
    ingest = IngestUnderTest(local_stack, database_url, tmp_path)
    app = ingest.app()
    async with app.router.lifespan_context(app):
        await writer.send(
            ACCOUNT_COMMANDS,
            account_id,
            connect_command(local_stack, mailbox_user, account_id, mailbox_user.password),
        )
        await watcher.wait_for(
            INGESTED,
            lambda e: e.data.account_id == account_id and e.data.subject == "before restart 2",
        )
    dovecot.append(mailbox_user.email, "INBOX", mail("after restart", 9))
    app = ingest.app()
    async with app.router.lifespan_context(app):
        await watcher.wait_for(
            INGESTED,
            lambda e: e.data.account_id == account_id and e.data.subject == "after restart",
        )
        await watcher.collect(1.0)
    subjects = [e.data.subject for e in watcher.events(INGESTED) if e.data.account_id == account_id]
    assert sorted(subjects) == sorted(
        ["before restart 0", "before restart 1", "before restart 2", "after restart"]
    )
    uids = [e.data.uid for e in watcher.events(INGESTED) if e.data.account_id == account_id]
    # The initial sync goes newest first (the inbox is useful from the top); new mail after it.
    assert uids == [3, 2, 1, 4]


async def test_r4_a_connect_by_provider_name_uses_the_preset_and_an_unknown_domain_is_refused(
    local_stack: LocalStack,
    database_url: str,
    tmp_path: Path,
    io: tuple[TopicWriter, TopicWatcher],
) -> None:
    writer, watcher = io
    by_name, unknown = f"acct-{secrets.token_hex(4)}", f"acct-{secrets.token_hex(4)}"

    def connect(account_id: str, email: str, provider: str | None) -> ConnectAccount:
        return ConnectAccount.build(
            company_id="company-sync",
            source="crm",
            data=ConnectAccountData(
                account_id=account_id,
                user_id=f"user-of-{account_id}",
                email=email,
                provider=provider,
                username=email,
                password=SecretStr("app-password"),
                account_type="personal",
                plan="premium",
            ),
        )

    ingest = IngestUnderTest(local_stack, database_url, tmp_path)
    app = ingest.app()
    async with app.router.lifespan_context(app):
        # The sync then cannot reach Gmail (no network here); only the event is checked.
        await writer.send(
            ACCOUNT_COMMANDS, by_name, connect(by_name, f"{by_name}@example.test", "gmail")
        )
        await writer.send(
            ACCOUNT_COMMANDS, unknown, connect(unknown, "someone@unknown-provider.test", None)
        )
        connected = await watcher.wait_for(
            ACCOUNTS,
            lambda e: e.type == "mail.account.connected" and e.data.account_id == by_name,
        )
        rejected = await watcher.wait_for(
            ACCOUNTS,
            lambda e: e.type == "mail.account.rejected" and e.data.account_id == unknown,
        )
    assert connected.data.provider == "gmail"
    assert connected.data.imap == MailServer(host="imap.gmail.com", port=993, security="tls")
    assert connected.data.smtp == MailServer(host="smtp.gmail.com", port=465, security="tls")
    assert rejected.data.code == "invalid_settings"
    assert "unknown-provider.test" in rejected.data.reason
