"""The one way mailsync services consume a topic: decoded, deduplicated, dead-lettered.

For every record:
1. decode it against the topic's contract; a record that is not JSON, fails validation or has an
   unknown type goes to the dead-letter topic with the reason, and the offset moves on;
2. in one transaction, remember its event id in `processed_events` (a redelivered record is
   recognised and skipped) and run the use case, which stages its own events in the outbox;
3. commit the offset only after that transaction committed (at-least-once; faststream's
   NACK_ON_ERROR seeks back to the record when step 2 raises).

Transient failures (database or network unreachable) are retried forever with backoff, because
every record after this one would fail the same way; any other failure is retried a few times
and then dead-lettered, so one bad record never stalls the partition.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.middlewares import AckPolicy
from prometheus_client import CollectorRegistry, Counter

from mailsync_contracts import ContractViolation, decode
from mailsync_platform.database import DbConnection

log = logging.getLogger(__name__)

UseCase = Callable[[Any, DbConnection], Awaitable[None]]

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.PostgresConnectionError,
)


@dataclass(frozen=True, slots=True)
class ConsumedRecord:
    """Where a record came from, for the dead-letter topic and for logs."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]


class DeadLetterSink(Protocol):
    async def record(self, origin: ConsumedRecord, kind: str, reason: str) -> None: ...


class ConsumerMetrics:
    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.dead_letters = Counter(
            "mailsync_dead_letters",
            "Records sent to the dead-letter topic",
            ["service", "topic", "kind"],
            registry=registry,
        )
        self.duplicates = Counter(
            "mailsync_duplicate_records",
            "Redelivered records recognised and skipped",
            ["service", "topic"],
            registry=registry,
        )
        self.service = service


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3
    first_backoff_seconds: float = 0.2
    max_backoff_seconds: float = 10.0

    def backoff(self, attempt: int) -> float:
        # Capping the exponent keeps a long outage from overflowing the float.
        return min(self.first_backoff_seconds * 2.0 ** min(attempt, 64), self.max_backoff_seconds)


DEFAULT_RETRY = RetryPolicy()


class Consumer:
    """Binds use cases to topics on one broker for one service."""

    def __init__(
        self,
        broker: KafkaBroker,
        service: str,
        group_id: str,
        pool: Callable[[], asyncpg.Pool],
        dead_letters: DeadLetterSink,
        metrics: ConsumerMetrics,
        after_commit: Callable[[], None] = lambda: None,
        retry: RetryPolicy = DEFAULT_RETRY,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
    ) -> None:
        self._broker = broker
        self._service = service
        self._group_id = group_id
        self._pool = pool
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._after_commit = after_commit
        self._retry = retry
        self._transient_failures = 0
        self._session_timeout_ms = session_timeout_ms
        self._heartbeat_interval_ms = heartbeat_interval_ms

    def subscribe(self, topic: str, use_cases: dict[str, UseCase]) -> None:
        """Route each event type on `topic` to its use case; other known types are skipped."""

        @self._broker.subscriber(
            topic,
            group_id=self._group_id,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=self._heartbeat_interval_ms,
        )
        async def on_record(msg: KafkaMessage) -> None:
            raw = msg.raw_message
            assert not isinstance(raw, tuple)  # single-record subscriber
            origin = ConsumedRecord(
                topic=raw.topic,
                partition=raw.partition,
                offset=raw.offset,
                key=raw.key,
                value=msg.body,
                headers={k: v for k, v in msg.headers.items() if isinstance(v, str)},
            )
            await self.handle(origin, use_cases)

    async def handle(self, origin: ConsumedRecord, use_cases: dict[str, UseCase]) -> None:
        try:
            event = decode(origin.topic, origin.value)
        except ContractViolation as violation:
            await self._dead_letter(origin, violation.kind, violation.reason)
            return
        use_case = use_cases.get(event.type)
        if use_case is None:
            # A valid event this service has no business with (e.g. its own output).
            return
        for attempt in range(self._retry.attempts):
            try:
                await self._apply(origin, event, use_case)
                self._transient_failures = 0
                self._after_commit()
                return
            except TRANSIENT_ERRORS as exc:
                delay = self._retry.backoff(self._transient_failures)
                self._transient_failures += 1
                log.warning(
                    "transient failure, the record will be redelivered",
                    extra={"topic": origin.topic, "offset": origin.offset, "error": repr(exc)},
                )
                await asyncio.sleep(delay)
                raise
            except Exception as exc:
                log.exception(
                    "use case failed",
                    extra={"topic": origin.topic, "offset": origin.offset, "attempt": attempt},
                )
                if attempt + 1 == self._retry.attempts:
                    await self._dead_letter(
                        origin, "handler_failed", f"{type(exc).__name__}: {exc}"
                    )
                    return
                await asyncio.sleep(self._retry.backoff(attempt))

    async def _apply(self, origin: ConsumedRecord, event: Any, use_case: UseCase) -> None:
        async with self._pool().acquire() as conn, conn.transaction():
            first_time = await conn.fetchval(
                "INSERT INTO processed_events (event_id, topic) VALUES ($1, $2)"
                " ON CONFLICT (event_id) DO NOTHING RETURNING true",
                event.id,
                origin.topic,
            )
            if not first_time:
                self._metrics.duplicates.labels(self._service, origin.topic).inc()
                return
            await use_case(event, conn)

    async def _dead_letter(self, origin: ConsumedRecord, kind: str, reason: str) -> None:
        log.warning(
            "record dead-lettered",
            extra={"topic": origin.topic, "offset": origin.offset, "kind": kind, "reason": reason},
        )
        await self._dead_letters.record(origin, kind, reason)
        self._metrics.dead_letters.labels(self._service, origin.topic, kind).inc()
