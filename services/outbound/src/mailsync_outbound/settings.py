"""Outbound configuration (env prefix MAILSYNC_)."""

from __future__ import annotations

from mailsync_platform.settings import ServiceSettings


class OutboundSettings(ServiceSettings):
    """Nothing beyond the shared settings yet; SMTP and signing keys arrive with sending."""
