"""Account commands in, account events out: one transaction, one use case each.

Invariants:
- every state change and the events it causes are staged in the consumer's transaction, so
  an event is published exactly when its change committed;
- a command that can never apply as sent (unknown account, another company's account, a
  disconnected account for anything but connect, set_default for another user) raises
  `CommandRefused`: the consumer dead-letters it at once with the reason (`refused`) and moves
  on, where a transient failure (database unreachable) would be retried forever;
- a command that is already in effect (connect of a connected account, a second disconnect,
  set_default of the current default) changes nothing and publishes nothing;
- no credential ever reaches an event, a log line or an exception message.
"""

from __future__ import annotations

import logging

from mailsync_contracts import (
    AccountConnected,
    AccountConnectedData,
    AccountDisconnected,
    AccountIdData,
    AccountReauthenticated,
    AccountRejected,
    AccountRejectedData,
    AccountSettings,
    AccountSettingsUpdated,
    AccountSettingsUpdatedData,
    ConnectAccount,
    DefaultAccountChanged,
    DefaultAccountChangedData,
    DisconnectAccount,
    ReauthenticateAccount,
    SetDefaultAccount,
    UpdateAccountSettings,
)
from mailsync_contracts.topics import ACCOUNTS
from mailsync_ingest import repository
from mailsync_ingest.adapters.imap import ImapEndpoint
from mailsync_ingest.credentials import CredentialCipher
from mailsync_ingest.domain import (
    Refusal,
    connected_count,
    current_default,
    default_on_connect,
    merge_settings,
    refuse_connect,
    successor_default,
)
from mailsync_ingest.presets import resolve_servers
from mailsync_ingest.repository import Account
from mailsync_platform.consumer import Refused
from mailsync_platform.database import DbConnection
from mailsync_platform.outbox import stage

log = logging.getLogger(__name__)


class CommandRefused(Refused):
    """The command can never be applied as sent; the consumer dead-letters it at once with
    this message as the reason (which names ids, never credentials)."""


class AccountCommands:
    def __init__(self, cipher: CredentialCipher) -> None:
        self._cipher = cipher

    async def connect(self, command: ConnectAccount, conn: DbConnection) -> None:
        """Connect a new account, or reconnect a disconnected one (R1 and R3 apply again);
        a connect of an account that is connected already changes nothing."""
        data = command.data
        existing = await repository.get_account(conn, data.account_id)
        if existing is not None:
            _same_company(existing, command.company_id)
            if existing.state != "disconnected":
                # The same account connected again: it already is; nothing changes (R1).
                return
        resolved = resolve_servers(data.provider, data.email, data.imap, data.smtp)
        if isinstance(resolved, Refusal):
            await self._reject(conn, command, resolved)
            return
        await repository.lock_user_accounts(conn, command.company_id, data.user_id)
        accounts = await repository.user_accounts(conn, command.company_id, data.user_id)
        refusal = refuse_connect(
            data.plan,
            data.account_type,
            connected_count(accounts),
            resolved.imap.host,
            resolved.imap.security,
        )
        if refusal is not None:
            await self._reject(conn, command, refusal)
            return
        account = Account(
            account_id=data.account_id,
            company_id=command.company_id,
            user_id=data.user_id,
            email=data.email,
            provider=resolved.provider,
            account_type=data.account_type,
            member_user_ids=data.member_user_ids,
            imap=ImapEndpoint(resolved.imap.host, resolved.imap.port, resolved.imap.security),
            username=data.username,
            sealed_password=self._cipher.seal(data.password.get_secret_value()),
            state="active",
            is_default=default_on_connect(accounts, data.account_id),
            settings=AccountSettings(sync_scope=data.sync_scope, history_days=data.history_days),
            max_message_bytes=resolved.preset.max_message_bytes if resolved.preset else None,
        )
        if existing is None:
            stored = await repository.insert_account(conn, account)
        else:
            stored = await repository.reconnect_account(conn, account)
        if not stored:
            # Another replica got there first (a redelivery racing a rebalance).
            return
        event = AccountConnected.build(
            company_id=command.company_id,
            source="ingest",
            data=AccountConnectedData(
                account_id=account.account_id,
                user_id=account.user_id,
                email=account.email,
                provider=account.provider,
                account_type=data.account_type,
                member_user_ids=account.member_user_ids,
                is_default=account.is_default,
                imap=resolved.imap,
                smtp=resolved.smtp,
                settings=account.settings,
            ),
        )
        await stage(conn, ACCOUNTS, account.account_id, event)
        log.info(
            "account connected",
            extra={"account_id": account.account_id, "reconnected": existing is not None},
        )

    async def update_settings(self, command: UpdateAccountSettings, conn: DbConnection) -> None:
        """Merge the command's non-null fields into the stored settings and publish the full
        result. Unusable parts are dropped, not the whole command (`domain.merge_settings`):
        a blocklist entry that is neither `name@domain` nor `@domain` is left out, a
        visibility the account type does not offer leaves the stored one; the published
        settings show what was kept. The event is published even when nothing changed, so the
        CRM always learns the effective settings."""
        account = await self._account(conn, command.company_id, command.data.account_id)
        _not_disconnected(account, "its settings cannot change")
        change = merge_settings(account.settings, command.data, account.account_type)
        if change.not_applied:
            log.warning(
                "parts of a settings update were not applied",
                extra={"account_id": account.account_id, "not_applied": len(change.not_applied)},
            )
        await repository.save_settings(conn, account.account_id, change.settings)
        event = AccountSettingsUpdated.build(
            company_id=command.company_id,
            source="ingest",
            data=AccountSettingsUpdatedData(
                account_id=account.account_id, settings=change.settings
            ),
        )
        await stage(conn, ACCOUNTS, account.account_id, event)

    async def disconnect(self, command: DisconnectAccount, conn: DbConnection) -> None:
        """Stop syncing and forget the credentials; when this was the user's default, their
        oldest remaining account becomes the default (R3). A second disconnect does nothing."""
        account = await self._account(
            conn, command.company_id, command.data.account_id, lock_user=True
        )
        if not await repository.disconnect_account(conn, account.account_id):
            return
        await stage(
            conn,
            ACCOUNTS,
            account.account_id,
            AccountDisconnected.build(
                company_id=command.company_id,
                source="ingest",
                data=AccountIdData(account_id=account.account_id),
            ),
        )
        log.info("account disconnected", extra={"account_id": account.account_id})
        if not account.is_default:
            return
        accounts = await repository.user_accounts(conn, account.company_id, account.user_id)
        successor = successor_default(accounts, account.account_id)
        if successor is None:
            return
        await repository.make_default(conn, account.company_id, account.user_id, successor)
        await self._default_changed(conn, account, successor, account.account_id)

    async def set_default(self, command: SetDefaultAccount, conn: DbConnection) -> None:
        """R3: make the account its user's default; the current default again does nothing."""
        data = command.data
        account = await self._account(conn, command.company_id, data.account_id, lock_user=True)
        if account.user_id != data.user_id:
            raise CommandRefused(
                f"account {account.account_id!r} belongs to another user than {data.user_id!r}"
            )
        _not_disconnected(account, "it cannot be the default")
        accounts = await repository.user_accounts(conn, account.company_id, account.user_id)
        previous = current_default(accounts)
        if previous == account.account_id:
            return
        await repository.make_default(conn, account.company_id, account.user_id, account.account_id)
        await self._default_changed(conn, account, account.account_id, previous)

    async def reauthenticate(self, command: ReauthenticateAccount, conn: DbConnection) -> None:
        """R5: new credentials, sealed; the account is active again and the sync engine
        resumes it from its stored cursors. Also accepted for an active account (a changed
        password); a disconnected account needs a connect."""
        data = command.data
        account = await self._account(conn, command.company_id, data.account_id)
        _not_disconnected(account, "it needs a connect, not new credentials")
        sealed = self._cipher.seal(data.password.get_secret_value())
        if not await repository.replace_credentials(
            conn, account.account_id, data.username, sealed
        ):
            raise CommandRefused(f"account {account.account_id!r} is disconnected")
        event = AccountReauthenticated.build(
            company_id=command.company_id,
            source="ingest",
            data=AccountIdData(account_id=account.account_id),
        )
        await stage(conn, ACCOUNTS, account.account_id, event)
        log.info(
            "account reauthenticated",
            extra={"account_id": account.account_id, "previous_state": account.state},
        )

    async def _account(
        self, conn: DbConnection, company_id: str, account_id: str, *, lock_user: bool = False
    ) -> Account:
        """The command's account, its row locked for the transaction; refused when unknown or
        another company's. With `lock_user`, the user's accounts are serialized first: every
        use case takes the user lock before any row lock, so two of them never deadlock."""
        account = await repository.get_account(conn, account_id)
        if account is None:
            raise CommandRefused(f"no account {account_id!r}")
        _same_company(account, company_id)
        if lock_user:
            await repository.lock_user_accounts(conn, account.company_id, account.user_id)
        locked = await repository.lock_account(conn, account_id)
        if locked is None:
            raise CommandRefused(f"no account {account_id!r}")
        return locked

    async def _default_changed(
        self, conn: DbConnection, account: Account, new_default: str, previous: str | None
    ) -> None:
        event = DefaultAccountChanged.build(
            company_id=account.company_id,
            source="ingest",
            data=DefaultAccountChangedData(
                user_id=account.user_id, account_id=new_default, previous_account_id=previous
            ),
        )
        await stage(conn, ACCOUNTS, new_default, event)

    async def _reject(self, conn: DbConnection, command: ConnectAccount, refusal: Refusal) -> None:
        event = AccountRejected.build(
            company_id=command.company_id,
            source="ingest",
            data=AccountRejectedData(
                account_id=command.data.account_id,
                user_id=command.data.user_id,
                reason=refusal.reason,
                code=refusal.code,
            ),
        )
        await stage(conn, ACCOUNTS, command.data.account_id, event)


def _same_company(account: Account, company_id: str) -> None:
    if account.company_id != company_id:
        # Tenants never touch each other's accounts; which company owns it is not said.
        raise CommandRefused(f"account {account.account_id!r} is not one of {company_id!r}")


def _not_disconnected(account: Account, consequence: str) -> None:
    if account.state == "disconnected":
        raise CommandRefused(f"account {account.account_id!r} is disconnected: {consequence}")
