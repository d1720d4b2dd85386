"""ingest's account commands against the real broker, Postgres and Dovecot, in-process:
settings, disconnect, default account, reauthenticate, reconnect, credentials key rotation,
and commands that can never apply.

The command topic holds every earlier test's commands too (a fresh consumer group reads it
from the start), so every assertion filters by this test's own account ids.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from cryptography.fernet import Fernet
from pydantic import SecretStr

from mailsync_contracts import (
    AccountIdData,
    AccountSettings,
    ConnectAccount,
    DisconnectAccount,
    ReauthenticateAccount,
    ReauthenticateAccountData,
    SetDefaultAccount,
    SetDefaultAccountData,
    SyncScope,
    UpdateAccountSettings,
    UpdateAccountSettingsData,
)
from mailsync_contracts.topics import ACCOUNT_COMMANDS, ACCOUNTS, DEADLETTER
from mailsync_devstack.dovecot import Dovecot, MailboxUser
from mailsync_devstack.stack import LocalStack
from mailsync_ingest.credentials import CredentialCipher
from mailsync_ingest.presets import preset_by_name
from tests.support.ingest import IngestUnderTest, connect_command
from tests.support.topics import TopicWatcher, TopicWriter

pytestmark = pytest.mark.integration

COMPANY = "company-sync"  # connect_command's default tenant


def new_id() -> str:
    return f"acct-{secrets.token_hex(4)}"


def disconnect(account_id: str, company_id: str = COMPANY) -> DisconnectAccount:
    return DisconnectAccount.build(
        company_id=company_id, source="crm", data=AccountIdData(account_id=account_id)
    )


def set_default(account_id: str, user_id: str) -> SetDefaultAccount:
    return SetDefaultAccount.build(
        company_id=COMPANY,
        source="crm",
        data=SetDefaultAccountData(account_id=account_id, user_id=user_id),
    )


def update_settings(company_id: str = COMPANY, **fields: Any) -> UpdateAccountSettings:
    return UpdateAccountSettings.build(
        company_id=company_id,
        source="crm",
        data=UpdateAccountSettingsData.model_validate(fields),
    )


def reauthenticate(account_id: str, username: str, password: str) -> ReauthenticateAccount:
    return ReauthenticateAccount.build(
        company_id=COMPANY,
        source="crm",
        data=ReauthenticateAccountData(
            account_id=account_id, username=username, password=SecretStr(password)
        ),
    )


def of(account_id: str, event_type: str) -> Callable[[Any], bool]:
    return lambda e: e.type == event_type and e.data.account_id == account_id


# What account commands publish (the sync engine adds progress and reauth events).
COMMAND_OUTCOMES = frozenset(
    {
        "mail.account.connected",
        "mail.account.rejected",
        "mail.account.settings_updated",
        "mail.account.disconnected",
        "mail.account.default_changed",
        "mail.account.reauthenticated",
    }
)


def account_events(watcher: TopicWatcher, *account_ids: str) -> list[tuple[str, str]]:
    """(type, account id) of the command outcomes for these accounts, each event once (the
    outbox publishes at least once)."""
    seen: dict[object, tuple[str, str]] = {}
    for e in watcher.events(ACCOUNTS):
        if e.type in COMMAND_OUTCOMES and e.data.account_id in account_ids:
            seen.setdefault(e.id, (e.type, e.data.account_id))
    return list(seen.values())


async def stored_accounts(database_url: str, *account_ids: str) -> dict[str, asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT account_id, user_id, username, sealed_password, state, is_default,"
            " settings::text AS settings, max_message_bytes, lease_owner, lease_until"
            " FROM ingest.accounts WHERE account_id = ANY($1::text[])",
            list(account_ids),
        )
    finally:
        await conn.close()
    return {row["account_id"]: row for row in rows}


@pytest_asyncio.fixture(loop_scope="session")
async def dead_letters(local_stack: LocalStack) -> AsyncIterator[TopicWatcher]:
    """A watcher of `mail.deadletter.v1` from its current end."""
    watcher = TopicWatcher(local_stack.kafka_bootstrap, [DEADLETTER])
    await watcher.start()
    yield watcher
    await watcher.stop()


async def connect_in_order(
    writer: TopicWriter, watcher: TopicWatcher, commands: list[ConnectAccount]
) -> None:
    """Connect one after the other, so their connection order is the commands' order."""
    for command in commands:
        account_id = command.data.account_id
        await writer.send(ACCOUNT_COMMANDS, account_id, command)
        await watcher.wait_for(ACCOUNTS, of(account_id, "mail.account.connected"))


async def test_r3_disconnecting_the_default_promotes_the_oldest_remaining_account(
    local_stack: LocalStack,
    mailbox_user: MailboxUser,
    database_url: str,
    tmp_path: Path,
    io: tuple[TopicWriter, TopicWatcher],
) -> None:
    writer, watcher = io
    user_id = f"user-{secrets.token_hex(4)}"
    first, second, third = new_id(), new_id(), new_id()
    ingest = IngestUnderTest(local_stack, database_url, tmp_path)
    app = ingest.app()
    async with app.router.lifespan_context(app):
        await connect_in_order(
            writer,
            watcher,
            [
                connect_command(local_stack, mailbox_user, a, user_id=user_id)
                for a in (first, second, third)
            ],
        )
        await writer.send(ACCOUNT_COMMANDS, first, disconnect(first))
        await watcher.wait_for(ACCOUNTS, of(first, "mail.account.disconnected"))
        changed = await watcher.wait_for(ACCOUNTS, of(second, "mail.account.default_changed"))
        stored = await stored_accounts(database_url, first, second, third)
        # Idempotent: a second disconnect publishes nothing.
        await writer.send(ACCOUNT_COMMANDS, first, disconnect(first))
        # Disconnecting an account that is not the default promotes nobody.
        await writer.send(ACCOUNT_COMMANDS, third, disconnect(third))
        await watcher.wait_for(ACCOUNTS, of(third, "mail.account.disconnected"))
        await watcher.collect(2.0)
    assert changed.data.user_id == user_id
    assert changed.data.previous_account_id == first
    gone = stored[first]
    assert gone["state"] == "disconnected"
    assert bytes(gone["sealed_password"]) == b"", "credentials are wiped on disconnect"
    assert not gone["is_default"]
    assert gone["lease_owner"] is None
    assert gone["lease_until"] is None
    assert stored[second]["is_default"]
    assert not stored[third]["is_default"]
    # Different accounts are different keys: only the set of events is certain, not its order.
    assert sorted(account_events(watcher, first, second, third)) == sorted(
        [
            ("mail.account.connected", first),
            ("mail.account.connected", second),
            ("mail.account.connected", third),
            ("mail.account.disconnected", first),
            ("mail.account.default_changed", second),
            ("mail.account.disconnected", third),
        ]
    )
    after = await stored_accounts(database_url, second, third)
    assert after[second]["is_default"]
    assert not after[third]["is_default"]


async def test_r3_set_default_moves_the_default_and_the_current_default_again_changes_nothing(
    local_stack: LocalStack,
    mailbox_user: MailboxUser,
    database_url: str,
    tmp_path: Path,
    io: tuple[TopicWriter, TopicWatcher],
) -> None:
    writer, watcher = io
    user_id = f"user-{secrets.token_hex(4)}"
    first, second = new_id(), new_id()
    ingest = IngestUnderTest(local_stack, database_url, tmp_path)
    app = ingest.app()
    async with app.router.lifespan_context(app):
        await connect_in_order(
            writer,
            watcher,
            [
                connect_command(local_stack, mailbox_user, a, user_id=user_id)
                for a in (first, second)
            ],
        )
        await writer.send(ACCOUNT_COMMANDS, second, set_default(second, user_id))
        changed = await watcher.wait_for(ACCOUNTS, of(second, "mail.account.default_changed"))
        await writer.send(ACCOUNT_COMMANDS, second, set_default(second, user_id))
        # A command on the same key behind it: once its event is out, "again" was handled.
        await writer.send(
            ACCOUNT_COMMANDS, second, update_settings(account_id=second, mirror_delete=True)
        )
        await watcher.wait_for(ACCOUNTS, of(second, "mail.account.settings_updated"))
        await writer.send(ACCOUNT_COMMANDS, first, set_default(first, user_id))
        back = await watcher.wait_for(ACCOUNTS, of(first, "mail.account.default_changed"))
        await watcher.collect(1.5)
    assert (changed.data.user_id, changed.data.previous_account_id) == (user_id, first)
    assert back.data.previous_account_id == second
    defaults = [
        account_id
        for event_type, account_id in account_events(watcher, first, second)
        if event_type == "mail.account.default_changed"
    ]
    assert defaults == [second, first], "setting the current default again publishes nothing"
    stored = await stored_accounts(database_url, first, second)
    assert stored[first]["is_default"]
    assert not stored[second]["is_default"]


async def test_r6_r9_connect_stores_settings_and_an_update_is_merged_persisted_and_published(
    local_stack: LocalStack,
    mailbox_user: MailboxUser,
    database_url: str,
    tmp_path: Path,
    io: tuple[TopicWriter, TopicWatcher],
) -> None:
    writer, watcher = io
    account_id = new_id()
    command = connect_command(
        local_stack,
        mailbox_user,
        account_id,
        scope=SyncScope(mode="folders", folders=("INBOX",)),
        history_days=30,
    )
    # A provider named with explicit servers: the servers win, the preset's limit applies (R4).
    command = command.model_copy(
        update={"data": command.data.model_copy(update={"provider": "gmail"})}
    )
    ingest = IngestUnderTest(local_stack, database_url, tmp_path)
    app = ingest.app()
    async with app.router.lifespan_context(app):
        await writer.send(ACCOUNT_COMMANDS, account_id, command)
        connected = await watcher.wait_for(ACCOUNTS, of(account_id, "mail.account.connected"))
        await writer.send(
            ACCOUNT_COMMANDS,
            account_id,
            update_settings(
                account_id=account_id,
                blocklist=["@Spam.test", "Ole Hansen <ole@x.test>", "Ole@Customer.TEST"],
                mirror_archive=True,
                default_visibility="shared",
            ),
        )
        updated = await watcher.wait_for(ACCOUNTS, of(account_id, "mail.account.settings_updated"))
        # A visibility a personal account does not have leaves the stored one (R14).
        await writer.send(
            ACCOUNT_COMMANDS,
            account_id,
            update_settings(account_id=account_id, default_visibility="team", history_days=7),
        )
        await watcher.wait_for(
            ACCOUNTS,
            lambda e: of(account_id, "mail.account.settings_updated")(e)
            and e.data.settings.history_days == 7,
        )
    scope = SyncScope(mode="folders", folders=("INBOX",))
    assert connected.data.settings == AccountSettings(sync_scope=scope, history_days=30)
    expected = AccountSettings(
        sync_scope=scope,
        history_days=30,
        default_visibility="shared",
        mirror_archive=True,
        blocklist=("@spam.test", "Ole@customer.test"),
    )
    assert updated.data.settings == expected, "the full settings, unusable entries dropped"
    stored = (await stored_accounts(database_url, account_id))[account_id]
    assert AccountSettings.model_validate_json(stored["settings"]) == expected.model_copy(
        update={"history_days": 7}
    )
    gmail = preset_by_name("gmail")
    assert gmail is not None
    assert stored["max_message_bytes"] == gmail.max_message_bytes


async def test_r1_r3_a_disconnected_account_reconnects_and_counts_against_the_plan_again(
    local_stack: LocalStack,
    dovecot: Dovecot,
    database_url: str,
    tmp_path: Path,
    io: tuple[TopicWriter, TopicWatcher],
) -> None:
    writer, watcher = io
    user_id = f"user-{secrets.token_hex(4)}"
    mailbox = dovecot.add_user(f"reconnect-{secrets.token_hex(3)}@example.test")
    other_mailbox = dovecot.add_user(f"reconnect-{secrets.token_hex(3)}@example.test")
    account_id, other = new_id(), new_id()

    def connect(target: str, who: MailboxUser, scope: SyncScope | None = None) -> ConnectAccount:
        return connect_command(
            local_stack, who, target, plan="growth", user_id=user_id, scope=scope
        )

    ingest = IngestUnderTest(local_stack, database_url, tmp_path)
    app = ingest.app()
    async with app.router.lifespan_context(app):
        await connect_in_order(writer, watcher, [connect(account_id, mailbox)])
        await writer.send(ACCOUNT_COMMANDS, account_id, disconnect(account_id))
        await watcher.wait_for(ACCOUNTS, of(account_id, "mail.account.disconnected"))
        # The growth plan's one account is free again: another account takes it.
        await connect_in_order(writer, watcher, [connect(other, other_mailbox)])
        await writer.send(ACCOUNT_COMMANDS, account_id, connect(account_id, mailbox))
        refused = await watcher.wait_for(ACCOUNTS, of(account_id, "mail.account.rejected"))
        await writer.send(ACCOUNT_COMMANDS, other, disconnect(other))
        await watcher.wait_for(ACCOUNTS, of(other, "mail.account.disconnected"))
        folders = SyncScope(mode="folders", folders=("INBOX",))
        await writer.send(ACCOUNT_COMMANDS, account_id, connect(account_id, mailbox, folders))
        back = await watcher.wait_for(
            ACCOUNTS,
            lambda e: of(account_id, "mail.account.connected")(e)
            and e.data.settings.sync_scope == folders,
        )
        stored = (await stored_accounts(database_url, account_id))[account_id]
    assert refused.data.code == "plan_limit", "R1: a reconnect counts against the plan"
    assert back.data.is_default, "R3: the user's only account is the default again"
    assert stored["state"] == "active"
    assert stored["is_default"]
    assert AccountSettings.model_validate_json(stored["settings"]).sync_scope == folders
    cipher = CredentialCipher(ingest.settings.credentials_key)
    opened = cipher.open(bytes(stored["sealed_password"])).get_secret_value()
    assert opened == mailbox.password, "new credentials are sealed again"


async def test_r5_reauthenticate_after_reauth_required_makes_the_account_active_again(
    local_stack: LocalStack,
    mailbox_user: MailboxUser,
    database_url: str,
    tmp_path: Path,
    io: tuple[TopicWriter, TopicWatcher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer, watcher = io
    account_id = new_id()
    wrong = f"wrong-{secrets.token_hex(6)}"
    ingest = IngestUnderTest(local_stack, database_url, tmp_path)
    app = ingest.app()
    # The app configures logging (replacing the root handlers): listen again after it.
    logging.getLogger().addHandler(caplog.handler)
    try:
        async with app.router.lifespan_context(app):
            await writer.send(
                ACCOUNT_COMMANDS,
                account_id,
                connect_command(local_stack, mailbox_user, account_id, wrong),
            )
            await watcher.wait_for(ACCOUNTS, of(account_id, "mail.account.reauth_required"))
            await writer.send(
                ACCOUNT_COMMANDS,
                account_id,
                reauthenticate(account_id, mailbox_user.email, mailbox_user.password),
            )
            await watcher.wait_for(ACCOUNTS, of(account_id, "mail.account.reauthenticated"))
            stored = (await stored_accounts(database_url, account_id))[account_id]
            await watcher.collect(1.0)
    finally:
        logging.getLogger().removeHandler(caplog.handler)
    assert stored["state"] == "active"
    assert stored["username"] == mailbox_user.email
    cipher = CredentialCipher(ingest.settings.credentials_key)
    opened = cipher.open(bytes(stored["sealed_password"])).get_secret_value()
    assert opened == mailbox_user.password
    for secret in (wrong, mailbox_user.password):
        assert secret.encode() not in bytes(stored["sealed_password"]), "R5: encrypted at rest"
        for record in watcher.records:
            assert secret.encode() not in record.value, "credentials never appear in events"
        assert secret not in caplog.text
        for logged in caplog.records:
            assert secret not in repr(vars(logged)), "credentials never appear in logs"
    assert caplog.records, "the logs were listened to"


async def test_r5_a_restart_with_a_new_primary_key_reseals_every_stored_password(
    local_stack: LocalStack,
    mailbox_user: MailboxUser,
    database_url: str,
    tmp_path: Path,
    io: tuple[TopicWriter, TopicWatcher],
) -> None:
    writer, watcher = io
    kept, wiped = new_id(), new_id()
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = IngestUnderTest(
        local_stack, database_url, tmp_path, credentials_key=SecretStr(old_key)
    )
    # A password the mailbox refuses: stored and rotated like any other, while the sync stops
    # at reauth_required instead of sitting in IDLE through the restarts.
    refused = f"refused-{secrets.token_hex(6)}"
    app = before.app()
    async with app.router.lifespan_context(app):
        await connect_in_order(
            writer,
            watcher,
            [connect_command(local_stack, mailbox_user, a, refused) for a in (kept, wiped)],
        )
        for account_id in (kept, wiped):
            await watcher.wait_for(ACCOUNTS, of(account_id, "mail.account.reauth_required"))
        await writer.send(ACCOUNT_COMMANDS, wiped, disconnect(wiped))
        await watcher.wait_for(ACCOUNTS, of(wiped, "mail.account.disconnected"))
    sealed_before = (await stored_accounts(database_url, kept))[kept]["sealed_password"]
    # Rotation step 2: the new key first, the old one still there to open what it sealed.
    rotated = IngestUnderTest(
        local_stack,
        database_url,
        tmp_path,
        credentials_key=SecretStr(f"{new_key},{old_key}"),
        consumer_group=before.settings.consumer_group,
    )
    app = rotated.app()
    async with app.router.lifespan_context(app):
        after_start = await stored_accounts(database_url, kept, wiped)
    app = rotated.app()
    async with app.router.lifespan_context(app):
        after_second_start = await stored_accounts(database_url, kept)
    sealed = bytes(after_start[kept]["sealed_password"])
    assert sealed != bytes(sealed_before)
    only_new = CredentialCipher(SecretStr(new_key))
    assert only_new.open(sealed).get_secret_value() == refused
    assert bytes(after_start[wiped]["sealed_password"]) == b"", "a wiped password stays wiped"
    assert bytes(after_second_start[kept]["sealed_password"]) == sealed, "a second pass is a no-op"


async def test_commands_for_unknown_or_foreign_accounts_are_dead_lettered_and_the_consumer_goes_on(
    local_stack: LocalStack,
    mailbox_user: MailboxUser,
    database_url: str,
    tmp_path: Path,
    io: tuple[TopicWriter, TopicWatcher],
    dead_letters: TopicWatcher,
) -> None:
    writer, watcher = io
    unknown, known = new_id(), new_id()
    ingest = IngestUnderTest(local_stack, database_url, tmp_path)
    app = ingest.app()
    async with app.router.lifespan_context(app):
        await writer.send(ACCOUNT_COMMANDS, unknown, disconnect(unknown))
        await connect_in_order(writer, watcher, [connect_command(local_stack, mailbox_user, known)])
        # Another tenant's command naming this account: refused, nothing changes.
        await writer.send(ACCOUNT_COMMANDS, known, disconnect(known, company_id="company-other"))
        # ... and the next command on the same partition is still processed.
        await writer.send(
            ACCOUNT_COMMANDS, known, update_settings(account_id=known, mirror_delete=True)
        )
        await watcher.wait_for(ACCOUNTS, of(known, "mail.account.settings_updated"))
        lost = await dead_letters.wait_for(DEADLETTER, lambda e: e.data.key == unknown)
        foreign = await dead_letters.wait_for(DEADLETTER, lambda e: e.data.key == known)
        stored = (await stored_accounts(database_url, known))[known]
    assert lost.data.original_topic == ACCOUNT_COMMANDS
    assert lost.data.service == "ingest"
    assert unknown in lost.data.error_message
    assert "company-other" in foreign.data.error_message
    assert foreign.company_id == "company-other"
    assert stored["state"] == "active"
    assert ("mail.account.disconnected", known) not in account_events(watcher, known)
