"""Configuration read from the environment, once, at start.

Every service subclasses `ServiceSettings`; nothing else in mailsync reads `os.environ`.
All variables carry the `MAILSYNC_` prefix except the standard OpenTelemetry ones.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What every service needs to run: where the broker, database and raw store are."""

    model_config = SettingsConfigDict(env_prefix="MAILSYNC_", extra="ignore", frozen=True)

    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092", description="Comma-separated Kafka bootstrap servers."
    )
    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/mailsync",
        description="asyncpg DSN; each service keeps its tables in its own schema.",
    )
    http_host: str = Field(default="127.0.0.1", description="Interface the HTTP server binds.")
    http_port: int = Field(default=8080, description="Port of /healthz, /readyz, /metrics, API.")
    log_level: str = Field(default="INFO")
    raw_store_url: str = Field(
        default="file://.state/rawstore", description="Claim-check store for raw MIME."
    )
    consumer_group: str | None = Field(
        default=None, description="Kafka consumer group; defaults to mailsync-<service>."
    )
    db_pool_size: int = Field(default=10, ge=1)
    kafka_session_timeout_ms: int = Field(
        default=10_000,
        ge=1000,
        description=(
            "Consumer group session timeout: how long a dead consumer keeps its partitions. "
            "The local stack lowers it because Tansu makes a restarted consumer wait it out."
        ),
    )
    kafka_heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "OTEL_EXPORTER_OTLP_ENDPOINT", "MAILSYNC_OTEL_EXPORTER_OTLP_ENDPOINT"
        ),
        description="OTLP/HTTP endpoint for traces; unset means spans are not exported.",
    )
    outbox_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often leftover outbox rows are re-published."
    )

    def group_for(self, service: str) -> str:
        return self.consumer_group or f"mailsync-{service}"
