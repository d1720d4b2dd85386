"""Wires the linker: the CRM read model, mail filing, thread commands and the read API."""

from __future__ import annotations

from starlette.applications import Starlette

from mailsync_contracts.topics import (
    ACCOUNTS,
    CRM_ENTITIES,
    INGESTED,
    OUTBOUND,
    THREAD_COMMANDS,
    THREADS,
)
from mailsync_linker import api, handlers
from mailsync_linker.settings import LinkerSettings
from mailsync_platform.consumer import UseCase
from mailsync_platform.service import Runtime, ServiceSpec, build_app

THREAD_COMMAND_TYPES = (
    "mail.thread.archive",
    "mail.thread.unarchive",
    "mail.thread.delete",
    "mail.message.delete",
    "mail.thread.link",
    "mail.thread.unlink",
    "mail.thread.set_visibility",
    "mail.thread.mark_read",
)


USE_CASES: dict[str, dict[str, UseCase]] = {
    CRM_ENTITIES: {
        "crm.entity.upserted": handlers.entity_upserted,
        "crm.entity.deleted": handlers.entity_deleted,
    },
    ACCOUNTS: {
        "mail.account.connected": handlers.account_connected,
        "mail.account.disconnected": handlers.account_disconnected,
    },
    THREAD_COMMANDS: dict.fromkeys(THREAD_COMMAND_TYPES, handlers.thread_command),
}
"""Record by record: CRM changes and user commands are few, and each is its own story."""

MAIL_TYPES: dict[str, tuple[str, ...]] = {
    INGESTED: ("mail.message.ingested", "mail.message.expunged"),
    OUTBOUND: ("mail.message.sent",),
}
"""Mail is filed a poll at a time (`handlers.mail_batch`): a mailbox's initial sync or a busy
company's day arrives by the thousand, and a transaction per message cannot keep up."""


def subscribe(runtime: Runtime) -> None:
    for topic, use_cases in USE_CASES.items():
        runtime.consumer.subscribe(topic, use_cases)
    for topic, types in MAIL_TYPES.items():
        runtime.consumer.subscribe_batch(topic, handlers.mail_batch, types=types)


def create_app(settings: LinkerSettings | None = None) -> Starlette:
    spec = ServiceSpec(
        name="linker",
        migrations_package="mailsync_linker.migrations",
        subscribe=subscribe,
        routes=api.routes,
        publishes=(THREADS,),
    )
    return build_app(spec, settings or LinkerSettings())
