"""Linker configuration (env prefix MAILSYNC_)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from mailsync_platform.settings import ServiceSettings


class LinkerSettings(ServiceSettings):
    """The shared settings, plus what the read API needs."""

    service_token: SecretStr | None = Field(
        default=None,
        min_length=1,
        # One bearer token for every internal API (linker and tracking read the same Secret).
        description=(
            "Bearer token the CRM presents on the read API (/v1). Unset: every /v1 request "
            "is answered 503, the consumers run as usual."
        ),
    )
    tracking_base_url: str | None = Field(
        default=None,
        description=(
            "Public base URL of the tracking service; its open pixels are removed from mail "
            "shown in the conversation view, so a sender reading their mail is never an open."
        ),
    )
