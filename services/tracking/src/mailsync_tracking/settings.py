"""Tracking configuration (env prefix MAILSYNC_)."""

from __future__ import annotations

from mailsync_platform.settings import ServiceSettings


class TrackingSettings(ServiceSettings):
    """Nothing beyond the shared settings yet; the token signing key arrives with tracking."""
