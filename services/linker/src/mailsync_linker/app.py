"""Wires the linker: CRM read model and message filing consumers on the shared runtime."""

from __future__ import annotations

from starlette.applications import Starlette

from mailsync_contracts.topics import CRM_ENTITIES, INGESTED, THREADS
from mailsync_linker import handlers
from mailsync_linker.settings import LinkerSettings
from mailsync_platform.service import Runtime, ServiceSpec, build_app


def subscribe(runtime: Runtime) -> None:
    runtime.consumer.subscribe(
        CRM_ENTITIES,
        {
            "crm.entity.upserted": handlers.entity_upserted,
            "crm.entity.deleted": handlers.entity_deleted,
        },
    )
    runtime.consumer.subscribe(INGESTED, {"mail.message.ingested": handlers.message_ingested})


def create_app(settings: LinkerSettings | None = None) -> Starlette:
    spec = ServiceSpec(
        name="linker",
        migrations_package="mailsync_linker.migrations",
        subscribe=subscribe,
        publishes=(THREADS,),
    )
    return build_app(spec, settings or LinkerSettings())
