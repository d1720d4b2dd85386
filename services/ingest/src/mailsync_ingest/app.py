"""Wires ingest: account commands consumer, the mailbox sync, and the shared runtime."""

from __future__ import annotations

from starlette.applications import Starlette

from mailsync_contracts.topics import ACCOUNT_COMMANDS, ACCOUNTS, INGESTED
from mailsync_ingest.credentials import CredentialCipher
from mailsync_ingest.handlers import AccountCommands
from mailsync_ingest.key_rotation import reseal_at_start
from mailsync_ingest.settings import IngestSettings
from mailsync_ingest.sync import MailboxSync
from mailsync_platform.service import Runtime, ServiceSpec, build_app


def create_app(settings: IngestSettings | None = None) -> Starlette:
    settings = settings or IngestSettings()
    cipher = CredentialCipher(settings.credentials_key)
    commands = AccountCommands(cipher)
    raw_store = settings.raw_store()

    def subscribe(runtime: Runtime) -> None:
        runtime.consumer.subscribe(
            ACCOUNT_COMMANDS,
            {
                "mail.account.connect": commands.connect,
                "mail.account.update_settings": commands.update_settings,
                "mail.account.disconnect": commands.disconnect,
                "mail.account.set_default": commands.set_default,
                "mail.account.reauthenticate": commands.reauthenticate,
            },
        )

    async def reseal_credentials(runtime: Runtime) -> None:
        await reseal_at_start(runtime.pool, cipher)

    async def mailbox_sync(runtime: Runtime) -> None:
        try:
            await MailboxSync(runtime, settings, cipher, raw_store).supervise()
        finally:
            await raw_store.aclose()

    spec = ServiceSpec(
        name="ingest",
        migrations_package="mailsync_ingest.migrations",
        subscribe=subscribe,
        on_started=reseal_credentials,
        background=(mailbox_sync,),
        publishes=(INGESTED, ACCOUNTS),
    )
    return build_app(spec, settings)
