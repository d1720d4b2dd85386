"""Transactional outbox: publish what was committed, never what was not.

Handlers call `stage()` (or `stage_many()`) inside the transaction that changes state;
`OutboxRelay` publishes the staged rows in commit order and deletes them once the broker has
acknowledged them. A crash after commit and before publish only delays the events (the relay
picks them up at start); a crash after publish and before delete republishes them, which
consumers absorb because they are idempotent. One relay per schema publishes at a time
(advisory lock), which keeps per-key order across replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

import asyncpg
from opentelemetry import context, propagate, trace

from mailsync_platform.database import DbConnection

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

Publish = Callable[[str, str, bytes, Mapping[str, str]], Awaitable[Awaitable[object] | None]]
"""Send one record: returns once the record is queued for sending, with the broker's
acknowledgement still to come as an awaitable (or None when it already came)."""


class Publishable(Protocol):
    def to_bytes(self) -> bytes: ...


_INSERT = "INSERT INTO outbox (topic, record_key, payload, headers) VALUES ($1, $2, $3, $4::jsonb)"


def _trace_headers() -> str:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return json.dumps(carrier)


async def stage(conn: DbConnection, topic: str, key: str, event: Publishable) -> None:
    """Queue `event` for `topic` in the caller's transaction, with the current trace context."""
    await conn.execute(_INSERT, topic, key, event.to_bytes(), _trace_headers())


async def stage_many(
    conn: DbConnection, topic: str, events: Sequence[tuple[str, Publishable]]
) -> None:
    """`stage` each (key, event) of `events` in that order, in one round trip: rows are
    inserted one after the other, so their seqs (and the publishing order) follow `events`."""
    if not events:
        return
    headers = _trace_headers()
    await conn.executemany(
        _INSERT, [(topic, key, event.to_bytes(), headers) for key, event in events]
    )


class OutboxRelay:
    """Moves committed outbox rows to Kafka, in order, until stopped."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        publish: Publish,
        poll_seconds: float,
        batch: int = 200,
    ) -> None:
        self._pool = pool
        self._publish = publish
        self._poll_seconds = poll_seconds
        self._batch = batch
        self._wake = asyncio.Event()
        self._stopping = False
        self._lock_key = int.from_bytes(
            hashlib.sha256(f"outbox:{schema}".encode()).digest()[:8], "big", signed=True
        )

    def wake(self) -> None:
        """Ask for a flush now (after a handler committed new rows)."""
        self._wake.set()

    async def flush(self) -> int:
        """Publish every committed row; returns how many were published."""
        published = 0
        while True:
            sent = await self._flush_batch()
            published += sent
            if sent < self._batch:
                return published

    async def _flush_batch(self) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            got_lock = await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", self._lock_key)
            if not got_lock:
                return 0
            rows = await conn.fetch(
                "SELECT seq, topic, record_key, payload, headers FROM outbox ORDER BY seq LIMIT $1",
                self._batch,
            )
            # The whole batch is queued first and acknowledged together: the producer packs
            # it into a few requests, where awaiting each record would cost a round trip
            # apiece. It keeps each partition's records in order (one batch in flight per
            # partition), so per-key order still follows seq.
            acknowledgements: list[Awaitable[object]] = []
            for row in rows:
                headers = json.loads(row["headers"])
                headers["content-type"] = "application/json"
                # A producer span inside the trace that staged the event (a new trace when
                # it was staged outside any, e.g. by a mailbox sync), whose traceparent the
                # record carries to its consumers.
                token = context.attach(propagate.extract(headers))
                try:
                    with _tracer.start_as_current_span(
                        f"{row['topic']} publish",
                        kind=trace.SpanKind.PRODUCER,
                        attributes={
                            "messaging.system": "kafka",
                            "messaging.destination.name": row["topic"],
                        },
                    ):
                        propagate.inject(headers)
                        acknowledged = await self._publish(
                            row["topic"], row["record_key"], bytes(row["payload"]), headers
                        )
                finally:
                    context.detach(token)
                if acknowledged is not None:
                    acknowledgements.append(acknowledged)
            outcomes = await asyncio.gather(*acknowledgements, return_exceptions=True)
            failures = [o for o in outcomes if isinstance(o, BaseException)]
            if failures:
                # Nothing is deleted: the batch is published again, acknowledged rows too.
                raise failures[0]
            if rows:
                # Exactly the rows published: a transaction that took a lower seq but
                # committed after our SELECT must not be deleted unpublished.
                await conn.execute(
                    "DELETE FROM outbox WHERE seq = ANY($1::bigint[])", [r["seq"] for r in rows]
                )
            return len(rows)

    async def run(self) -> None:
        """Flush on every wake-up and at least every `poll_seconds`, until `stop()`; errors
        are logged and retried."""
        while True:
            stopping = self._stopping
            try:
                await self.flush()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("outbox flush failed, will retry", extra={"error": str(exc)})
            except Exception:
                log.exception("outbox flush failed, will retry")
            if stopping:
                return
            self._wake.clear()
            if self._stopping:
                continue  # asked to stop during that flush: the last one, at once
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_seconds):
                    await self._wake.wait()

    def stop(self) -> None:
        """Finish the batch in hand, flush once more, and return from `run`.

        A shutdown stops the relay this way rather than by cancelling it: a cancel between
        publishing a batch and deleting its rows would publish the batch again at the next
        start (harmless to idempotent consumers, but a replay all the same)."""
        self._stopping = True
        self._wake.set()
