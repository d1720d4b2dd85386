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
from mailsync_linker import handlers
from mailsync_linker.settings import LinkerSettings
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


def subscribe(runtime: Runtime) -> None:
    runtime.consumer.subscribe(
        CRM_ENTITIES,
        {
            "crm.entity.upserted": handlers.entity_upserted,
            "crm.entity.deleted": handlers.entity_deleted,
        },
    )
    runtime.consumer.subscribe(
        INGESTED,
        {
            "mail.message.ingested": handlers.mail_record,
            "mail.message.expunged": handlers.mail_record,
        },
    )
    runtime.consumer.subscribe(OUTBOUND, {"mail.message.sent": handlers.mail_record})
    runtime.consumer.subscribe(
        ACCOUNTS,
        {
            "mail.account.connected": handlers.account_connected,
            "mail.account.disconnected": handlers.account_disconnected,
        },
    )
    runtime.consumer.subscribe(
        THREAD_COMMANDS, dict.fromkeys(THREAD_COMMAND_TYPES, handlers.thread_command)
    )


def create_app(settings: LinkerSettings | None = None) -> Starlette:
    spec = ServiceSpec(
        name="linker",
        migrations_package="mailsync_linker.migrations",
        subscribe=subscribe,
        publishes=(THREADS,),
    )
    return build_app(spec, settings or LinkerSettings())
