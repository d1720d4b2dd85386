"""The one way mailsync services consume a topic: decoded, deduplicated, dead-lettered.

For every record:
1. decode it against the topic's contract; a record that is not JSON, fails validation or has an
   unknown type goes to the dead-letter topic with the reason, and the offset moves on;
2. in one transaction, remember its event id in `processed_events` (a redelivered record is
   recognised and skipped) and run the use case, which stages its own events in the outbox;
3. commit the offset only after that transaction committed (at-least-once; faststream's
   NACK_ON_ERROR seeks back to the record when step 2 raises).

Transient failures (database or network unreachable) are retried forever with backoff, because
every record after this one would fail the same way; a use case that refuses the record
(`Refused`: it can never apply) has it dead-lettered at once with its reason; any other failure
is retried a few times and then dead-lettered, so one bad record never stalls the partition.

`subscribe_batch` gives the same guarantees to one poll of records at a time (for throughput:
one transaction, one fsync and a few round trips per poll instead of per record):
1. each record is decoded and dead-lettered exactly as above; valid events of a type outside
   `types` are skipped; the rest stay in arrival order (each partition's records in offset
   order, so one key's records in the order they were written);
2. one transaction remembers every event id with a single insert and hands the use case only the
   events seen for the first time, each id once (the first occurrence when a poll repeats an
   id), in that order; the use case is not called when every event was a duplicate;
3. after the commit the outbox relay is woken, and then the poll's offsets are committed; a
   raise seeks every partition of the poll back to its first record, so nothing is committed
   past an unapplied record.
A transient failure backs off and redelivers the whole poll, as above. Any other failure of the
batch rolls the whole transaction back, and the poll's events are then applied one by one, each
in its own transaction with a one-element list and the single-record retries, so a poison record
is dead-lettered as `handler_failed` while every other record of the poll is applied once.
The poll runs under faststream's batch span, to which each distinct record trace is linked;
when all its records belong to one trace (one mail, one command: the quiet case) it is applied
in a span of that trace, so what it stages continues the trace end to end. A poll of many traces
stages its events in the batch span's trace. A record applied one by one runs in a span of its
own record's trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypedDict
from uuid import UUID

import asyncpg
from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy
from opentelemetry import propagate, trace
from prometheus_client import CollectorRegistry, Counter

from mailsync_contracts import ContractViolation, decode
from mailsync_platform.database import DbConnection

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

UseCase = Callable[[Any, DbConnection], Awaitable[None]]
BatchUseCase = Callable[[Sequence[Any], DbConnection], Awaitable[None]]

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.PostgresConnectionError,
)

# The OpenTelemetry SDK's default span link limit: links past it would be dropped anyway.
_MAX_LINKS = 128
# One statement for the whole poll; ids arrive deduplicated, so RETURNING lists exactly the
# ids this transaction saw first.
_REMEMBER_EVENTS = (
    "INSERT INTO processed_events (event_id, topic) SELECT unnest($1::uuid[]), $2"
    " ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)


class Refused(Exception):
    """A record that can never be applied as sent (an unknown thread, a user without the
    right): the use case raises it with the reason, nothing it did is committed, and the
    record is dead-lettered at once as `refused` instead of being retried."""


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


def first_time_events(events: Sequence[Any], new_ids: Collection[UUID]) -> list[Any]:
    """`events` whose id is in `new_ids`, in their order, each id only at its first occurrence."""
    pending = set(new_ids)
    fresh: list[Any] = []
    for event in events:
        if event.id in pending:
            pending.remove(event.id)
            fresh.append(event)
    return fresh


def _undecoded(msg: StreamMessage[Any]) -> Any:
    # The consumer decodes against the contract itself. faststream's default decoder would
    # parse every JSON body first, and raise on a record labelled application/json that is
    # not JSON before the handler could dead-letter it: a poison record blocking its partition.
    return msg.body


def _consumed(record: ConsumerRecord[Any, Any], headers: Mapping[str, Any]) -> ConsumedRecord:
    return ConsumedRecord(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value or b"",
        headers={k: v for k, v in headers.items() if isinstance(v, str)},
    )


def trace_links(records: Sequence[ConsumedRecord]) -> list[trace.Link]:
    """A link to each distinct trace context among `records`, in order, at most _MAX_LINKS."""
    # Records staged by one transaction share their traceparent: extract each one once.
    firsts: dict[str, ConsumedRecord] = {}
    for origin in records:
        traceparent = origin.headers.get("traceparent")
        if traceparent is not None:
            firsts.setdefault(traceparent, origin)
            if len(firsts) == _MAX_LINKS:
                break
    contexts = (
        trace.get_current_span(propagate.extract(origin.headers)).get_span_context()
        for origin in firsts.values()
    )
    return [trace.Link(context) for context in contexts if context.is_valid]


class _Subscription(TypedDict):
    group_id: str
    auto_offset_reset: Literal["earliest"]
    ack_policy: AckPolicy
    session_timeout_ms: int
    heartbeat_interval_ms: int


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
        self._pool = pool
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._after_commit = after_commit
        self._retry = retry
        self._transient_failures = 0
        # What every subscriber of this consumer shares: its group, and offsets committed only
        # after processing (NACK_ON_ERROR seeks back on a raise).
        self._subscription: _Subscription = {
            "group_id": group_id,
            "auto_offset_reset": "earliest",
            "ack_policy": AckPolicy.NACK_ON_ERROR,
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": heartbeat_interval_ms,
        }

    def subscribe(self, topic: str, use_cases: dict[str, UseCase]) -> None:
        """Route each event type on `topic` to its use case; other known types are skipped."""

        @self._broker.subscriber(topic, decoder=_undecoded, **self._subscription)
        async def on_record(msg: KafkaMessage) -> None:
            raw = msg.raw_message
            assert not isinstance(raw, tuple)  # single-record subscriber
            await self.handle(_consumed(raw, msg.headers), use_cases)

    def subscribe_batch(
        self,
        topic: str,
        use_case: BatchUseCase,
        *,
        types: Collection[str],
        max_records: int = 500,
        max_wait_ms: int = 50,
    ) -> None:
        """Apply the events of `types` on `topic` a poll at a time (see the module docstring).

        A poll holds at most `max_records` records. `max_wait_ms` is how long a poll waits
        when no record is buffered at all; one that finds records returns them at once, so
        under load polls fill up to `max_records` and at rest a record waits no longer.

        A poll applied one by one takes up to `max_records` times a poison record's retries
        (0.6 s with the default policy) before the next poll; the Kafka client leaves the group
        when that exceeds its max poll interval (5 min), so mind both when raising either.
        """
        wanted = frozenset(types)

        @self._broker.subscriber(
            topic,
            batch=True,
            max_records=max_records,
            batch_timeout_ms=max_wait_ms,
            decoder=_undecoded,
            **self._subscription,
        )
        async def on_batch(msg: KafkaMessage) -> None:
            raw = msg.raw_message
            assert isinstance(raw, tuple)  # batch subscriber
            records = [_consumed(r, h) for r, h in zip(raw, msg.batch_headers, strict=True)]
            await self.handle_batch(records, use_case, wanted)

    async def handle(self, origin: ConsumedRecord, use_cases: dict[str, UseCase]) -> None:
        event = await self._decode(origin)
        if event is None:
            return
        use_case = use_cases.get(event.type)
        if use_case is None:
            # A valid event this service has no business with (e.g. its own output).
            return
        await self._apply_with_retries(origin, event, use_case)

    async def handle_batch(
        self, records: Sequence[ConsumedRecord], use_case: BatchUseCase, types: Collection[str]
    ) -> None:
        """Apply one poll of one topic's `records`, in their order (see the module docstring)."""
        batch_span = trace.get_current_span()
        links = trace_links(records)
        if batch_span.is_recording():
            for link in links:
                batch_span.add_link(link.context)
        batch: list[tuple[ConsumedRecord, Any]] = []
        for origin in records:
            event = await self._decode(origin)
            if event is not None and event.type in types:
                batch.append((origin, event))
        if not batch:
            return
        try:
            with self._poll_trace(batch[0][0], links, batch_span):
                duplicates = await self._apply_batch(batch, use_case)
        except TRANSIENT_ERRORS as exc:
            await self._back_off(batch[0][0], exc)
            raise
        except Exception:
            log.exception(
                "batch use case failed, applying its records one by one",
                extra={"topic": batch[0][0].topic, "records": len(batch)},
            )
        else:
            self._transient_failures = 0
            if duplicates:
                self._metrics.duplicates.labels(self._service, batch[0][0].topic).inc(duplicates)
            self._after_commit()
            return

        async def apply_one(event: Any, conn: DbConnection) -> None:
            await use_case([event], conn)

        for origin, event in batch:
            # In the record's own trace, so the events it stages carry that trace on.
            with _tracer.start_as_current_span(
                f"{origin.topic} process",
                context=propagate.extract(origin.headers),
                kind=trace.SpanKind.CONSUMER,
                links=[trace.Link(batch_span.get_span_context())],
            ):
                await self._apply_with_retries(origin, event, apply_one)

    @contextlib.contextmanager
    def _poll_trace(
        self, first: ConsumedRecord, links: Sequence[trace.Link], batch_span: trace.Span
    ) -> Iterator[None]:
        """A poll whose records all belong to one trace (the quiet case: one mail, one
        command) is applied inside it, so what it stages continues that trace end to end;
        a poll of many traces stays in its own span, linked to each."""
        if len({link.context.trace_id for link in links}) != 1:
            yield
            return
        with _tracer.start_as_current_span(
            f"{first.topic} process",
            context=propagate.extract(first.headers),
            kind=trace.SpanKind.CONSUMER,
            links=[trace.Link(batch_span.get_span_context())],
        ):
            yield

    async def _decode(self, origin: ConsumedRecord) -> Any | None:
        """The record's event, or None once it has been dead-lettered."""
        try:
            return decode(origin.topic, origin.value)
        except ContractViolation as violation:
            await self._dead_letter(origin, violation.kind, violation.reason)
            return None

    async def _apply_with_retries(
        self, origin: ConsumedRecord, event: Any, use_case: UseCase
    ) -> None:
        for attempt in range(self._retry.attempts):
            try:
                await self._apply(origin, event, use_case)
                self._transient_failures = 0
                self._after_commit()
                return
            except TRANSIENT_ERRORS as exc:
                await self._back_off(origin, exc)
                raise
            except Refused as refusal:
                # Retrying cannot change the answer: set it aside with the reason, now.
                await self._dead_letter(origin, "refused", str(refusal))
                return
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

    async def _back_off(self, origin: ConsumedRecord, exc: BaseException) -> None:
        """Wait before `origin` is redelivered: what failed will fail for every record now."""
        delay = self._retry.backoff(self._transient_failures)
        self._transient_failures += 1
        log.warning(
            "transient failure, the record will be redelivered",
            extra={"topic": origin.topic, "offset": origin.offset, "error": repr(exc)},
        )
        await asyncio.sleep(delay)

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

    async def _apply_batch(
        self, batch: Sequence[tuple[ConsumedRecord, Any]], use_case: BatchUseCase
    ) -> int:
        """Apply the first-time events of `batch` in one transaction; returns how many of its
        events were duplicates (counted by the caller once the transaction committed)."""
        events = [event for _, event in batch]
        ids = list(dict.fromkeys(event.id for event in events))
        async with self._pool().acquire() as conn, conn.transaction():
            new_ids = await conn.fetch(_REMEMBER_EVENTS, ids, batch[0][0].topic)
            fresh = first_time_events(events, [row["event_id"] for row in new_ids])
            if fresh:
                await use_case(fresh, conn)
        return len(events) - len(fresh)

    async def _dead_letter(self, origin: ConsumedRecord, kind: str, reason: str) -> None:
        log.warning(
            "record dead-lettered",
            extra={"topic": origin.topic, "offset": origin.offset, "kind": kind, "reason": reason},
        )
        await self._dead_letters.record(origin, kind, reason)
        self._metrics.dead_letters.labels(self._service, origin.topic, kind).inc()
