"""Linker configuration (env prefix MAILSYNC_)."""

from __future__ import annotations

from mailsync_platform.settings import ServiceSettings


class LinkerSettings(ServiceSettings):
    """Nothing beyond the shared settings yet; the read API adds its token here."""
