"""Wiring shared by the four services: one factory turns a `ServiceSpec` into a runnable app.

The app is a Starlette application whose lifespan owns everything that connects: schema
migrations, the Postgres pool, the faststream Kafka broker with its subscribers, the outbox
relay and the service's own background tasks. Nothing connects at import time, and shutdown
undoes startup in reverse order. HTTP serves `/healthz`, `/readyz`, `/metrics` and whatever
routes the service adds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import uvicorn
from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from mailsync_contracts.topics import DEADLETTER
from mailsync_platform.consumer import Consumer, ConsumerMetrics
from mailsync_platform.database import Migration, load_migrations, migrate, open_pool
from mailsync_platform.deadletter import DeadLetterPublisher
from mailsync_platform.health import health_routes
from mailsync_platform.logs import configure_logging
from mailsync_platform.outbox import OutboxRelay
from mailsync_platform.settings import ServiceSettings
from mailsync_platform.telemetry import configure_tracing

log = logging.getLogger(__name__)

PLATFORM_MIGRATIONS = "mailsync_platform.migrations"
# The outbox relay queues a whole batch before awaiting it; a few milliseconds of linger
# let the producer pack it into a handful of requests.
OUTBOX_LINGER_MS = 5
# How long a stopping service may take to publish what its outbox still holds.
RELAY_STOP_GRACE_SECONDS = 5.0


@dataclass
class Runtime:
    """What a running service has at hand; handed to the spec's hooks."""

    service: str
    settings: ServiceSettings
    broker: KafkaBroker
    registry: CollectorRegistry
    consumer: Consumer
    _pool: asyncpg.Pool | None = None
    _relay: OutboxRelay | None = None
    _producer: AIOKafkaProducer | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the database pool is opened in the lifespan, not before")
        return self._pool

    def events_staged(self) -> None:
        """Tell the outbox relay that a transaction committed new events."""
        if self._relay is not None:
            self._relay.wake()

    async def publish_raw(
        self, topic: str, key: str, payload: bytes, headers: Mapping[str, str]
    ) -> Awaitable[object]:
        """Queue one record; the returned future resolves when the broker acknowledged it.

        The outbox relay's records go out through a plain aiokafka producer rather than the
        faststream broker: they already carry their `traceparent` (taken when they were
        staged), and faststream's per-message publish path (middlewares, generated ids)
        cost more than half a millisecond a record, the largest share of a busy ingest."""
        if self._producer is None:
            raise RuntimeError("the outbox producer is started in the lifespan, not before")
        acknowledgement: Awaitable[object] = await self._producer.send(
            topic,
            payload,
            key=key.encode(),
            headers=[(name, value.encode()) for name, value in headers.items()],
        )
        return acknowledgement


BackgroundTask = Callable[[Runtime], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class ServiceSpec:
    """A service described as data: its name, schema, migrations and how to wire it."""

    name: str
    migrations_package: str
    subscribe: Callable[[Runtime], None]
    routes: Callable[[Runtime], Sequence[BaseRoute]] = lambda runtime: ()
    background: Sequence[BackgroundTask] = ()
    publishes: Sequence[str] = ()
    on_started: Callable[[Runtime], Awaitable[None]] | None = None

    @property
    def schema(self) -> str:
        return self.name

    def migrations(self) -> list[Migration]:
        return load_migrations(PLATFORM_MIGRATIONS, "platform") + load_migrations(
            self.migrations_package, self.name
        )


def build_app(spec: ServiceSpec, settings: ServiceSettings) -> Starlette:
    """Build the service app; nothing connects until its lifespan starts."""
    configure_logging(spec.name, settings.log_level)
    tracer_provider = configure_tracing(spec.name, settings.otel_exporter_otlp_endpoint)
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    broker = KafkaBroker(
        settings.kafka_bootstrap.split(","),
        client_id=f"mailsync-{spec.name}",
        middlewares=(
            KafkaTelemetryMiddleware(tracer_provider=tracer_provider),
            KafkaPrometheusMiddleware(registry=registry, app_name=f"mailsync-{spec.name}"),
        ),
        logger=logging.getLogger(f"mailsync.{spec.name}.broker"),
    )
    runtime_box: list[Runtime] = []
    dead_letters = DeadLetterPublisher(spec.name, broker)
    consumer = Consumer(
        broker,
        service=spec.name,
        group_id=settings.group_for(spec.name),
        pool=lambda: runtime_box[0].pool,
        dead_letters=dead_letters,
        metrics=ConsumerMetrics(registry, spec.name),
        after_commit=lambda: runtime_box[0].events_staged(),
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
    )
    runtime = Runtime(spec.name, settings, broker, registry, consumer)
    runtime_box.append(runtime)
    spec.subscribe(runtime)
    # Declared for the AsyncAPI document; events are actually sent by the outbox relay.
    for topic in (*spec.publishes, DEADLETTER):
        broker.publisher(topic, title=f"{topic}:{spec.name}")

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with run_runtime(spec, runtime):
            yield

    routes = [*health_routes(runtime), *spec.routes(runtime)]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.runtime = runtime
    return app


@contextlib.asynccontextmanager
async def run_runtime(spec: ServiceSpec, runtime: Runtime) -> AsyncIterator[None]:
    settings = runtime.settings
    applied = await migrate(settings.database_url, spec.schema, spec.migrations())
    log.info("schema up to date", extra={"schema": spec.schema, "applied": ",".join(applied)})
    runtime._pool = await open_pool(settings.database_url, spec.schema, settings.db_pool_size)
    relay = OutboxRelay(
        runtime.pool, spec.schema, runtime.publish_raw, settings.outbox_poll_seconds
    )
    runtime._relay = relay
    tasks: list[asyncio.Task[None]] = []
    relaying: asyncio.Task[None] | None = None
    try:
        await runtime.broker.start()
        runtime._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap.split(","),
            client_id=f"mailsync-{spec.name}-outbox",
            acks="all",
            linger_ms=OUTBOX_LINGER_MS,
        )
        await runtime._producer.start()
        relaying = asyncio.create_task(relay.run(), name="outbox-relay")
        for job in spec.background:
            tasks.append(asyncio.create_task(job(runtime), name=getattr(job, "__name__", "job")))
        if spec.on_started is not None:
            await spec.on_started(runtime)
        log.info("service started", extra={"http_port": settings.http_port})
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if relaying is not None:
            # The background jobs staged their last events; publish them, then stop. Rows
            # still in the outbox after the grace period stay committed for the next start.
            relay.stop()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RELAY_STOP_GRACE_SECONDS):
                    await relaying
            relaying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relaying
        if runtime._producer is not None:
            await runtime._producer.stop()
            runtime._producer = None
        await runtime.broker.stop()
        await runtime.pool.close()
        runtime._pool = None
        log.info("service stopped")


def serve(app: Starlette, settings: ServiceSettings) -> None:
    """Run the app under uvicorn until SIGTERM/SIGINT; used by every `__main__`."""
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    # uvicorn installs its own SIGINT/SIGTERM handlers that end the lifespan cleanly.
    asyncio.run(server.serve())
