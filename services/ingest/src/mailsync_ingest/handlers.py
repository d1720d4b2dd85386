"""Account commands in, account events out: one transaction, one use case each."""

from __future__ import annotations

from mailsync_contracts import (
    AccountConnected,
    AccountConnectedData,
    AccountRejected,
    AccountRejectedData,
    ConnectAccount,
)
from mailsync_contracts.topics import ACCOUNTS
from mailsync_ingest import repository
from mailsync_ingest.adapters.imap import ImapEndpoint
from mailsync_ingest.credentials import CredentialCipher
from mailsync_ingest.domain import Refusal, refuse_connect
from mailsync_ingest.presets import resolve_servers
from mailsync_ingest.repository import Account
from mailsync_platform.database import DbConnection
from mailsync_platform.outbox import stage


class AccountCommands:
    def __init__(self, cipher: CredentialCipher) -> None:
        self._cipher = cipher

    async def connect(self, command: ConnectAccount, conn: DbConnection) -> None:
        data = command.data
        if await repository.get_account(conn, data.account_id) is not None:
            # The same account connected again: it already is; nothing changes (R1).
            return
        resolved = resolve_servers(data.provider, data.email, data.imap, data.smtp)
        if isinstance(resolved, Refusal):
            await self._reject(conn, command, resolved)
            return
        await repository.lock_user_accounts(conn, command.company_id, data.user_id)
        connected = await repository.count_connected(conn, command.company_id, data.user_id)
        refusal = refuse_connect(
            data.plan, data.account_type, connected, resolved.imap.host, resolved.imap.security
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
            is_default=connected == 0,  # R3: the first account becomes the default
        )
        await repository.insert_account(conn, account)
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
            ),
        )
        await stage(conn, ACCOUNTS, account.account_id, event)

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
