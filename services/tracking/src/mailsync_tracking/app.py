"""Wires tracking. The pixel and redirect routes and the mail.outbound.v1 consumer are
still to come; the process already runs with its schema, health and metrics."""

from __future__ import annotations

from starlette.applications import Starlette

from mailsync_platform.service import Runtime, ServiceSpec, build_app
from mailsync_tracking.settings import TrackingSettings


def subscribe(runtime: Runtime) -> None:
    """No topic yet: tracked messages arrive on mail.outbound.v1 once outbound sends."""


def create_app(settings: TrackingSettings | None = None) -> Starlette:
    spec = ServiceSpec(
        name="tracking", migrations_package="mailsync_tracking.migrations", subscribe=subscribe
    )
    return build_app(spec, settings or TrackingSettings())
