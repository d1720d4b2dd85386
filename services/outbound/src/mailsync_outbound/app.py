"""Wires outbound. So far it keeps its view of the sending accounts current; sending,
mirroring and tracking rewrites build on it."""

from __future__ import annotations

from starlette.applications import Starlette

from mailsync_contracts.topics import ACCOUNTS
from mailsync_outbound import handlers
from mailsync_outbound.settings import OutboundSettings
from mailsync_platform.service import Runtime, ServiceSpec, build_app


def subscribe(runtime: Runtime) -> None:
    runtime.consumer.subscribe(
        ACCOUNTS,
        {
            "mail.account.connected": handlers.account_connected,
            "mail.account.reauth_required": handlers.account_reauth_required,
            "mail.account.disconnected": handlers.account_disconnected,
        },
    )


def create_app(settings: OutboundSettings | None = None) -> Starlette:
    spec = ServiceSpec(
        name="outbound", migrations_package="mailsync_outbound.migrations", subscribe=subscribe
    )
    return build_app(spec, settings or OutboundSettings())
