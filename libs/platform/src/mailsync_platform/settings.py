"""Configuration read from the environment, once, at start.

Every service subclasses `ServiceSettings`; nothing else in mailsync reads `os.environ`.
All variables carry the `MAILSYNC_` prefix except the standard OpenTelemetry ones.
"""

from __future__ import annotations

from typing import Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mailsync_rawstore import RawStore, S3Credentials, open_raw_store


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
        default="file://.state/rawstore",
        description=(
            "Claim-check store for raw MIME: file:///dir, or "
            "s3://bucket[/prefix][?endpoint=https://host:port&region=name&ca_file=/path]."
        ),
    )
    raw_store_access_key_id: SecretStr | None = Field(
        default=None,
        min_length=1,
        description="Access key of an s3:// raw store; unset means unsigned requests.",
    )
    raw_store_secret_access_key: SecretStr | None = Field(
        default=None, min_length=1, description="Secret of raw_store_access_key_id."
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

    @model_validator(mode="after")
    def _raw_store_key_comes_whole(self) -> Self:
        if (self.raw_store_access_key_id is None) != (self.raw_store_secret_access_key is None):
            raise ValueError(
                "MAILSYNC_RAW_STORE_ACCESS_KEY_ID and MAILSYNC_RAW_STORE_SECRET_ACCESS_KEY "
                "are set together or not at all"
            )
        return self

    def group_for(self, service: str) -> str:
        return self.consumer_group or f"mailsync-{service}"

    def raw_store(self) -> RawStore:
        """The store `raw_store_url` names, signing with the raw store key if one is set."""
        credentials = None
        if (
            self.raw_store_access_key_id is not None
            and self.raw_store_secret_access_key is not None
        ):
            credentials = S3Credentials(
                self.raw_store_access_key_id.get_secret_value(),
                self.raw_store_secret_access_key.get_secret_value(),
            )
        return open_raw_store(self.raw_store_url, credentials)
