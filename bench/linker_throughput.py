"""The linker at CRM scale: filing throughput against a big read model, and the inbox read
API's latency under load.

Steps, each timed and printed:

1. a read model of ``MAILSYNC_BENCH_PERSONS`` persons (default 1,000,000, one address each,
   ten to an organization) and ``MAILSYNC_BENCH_DEALS`` deals (default 200,000, 80 % open,
   one or two persons each), plus 40 users, written straight into the linker's tables with
   COPY (the CRM topic would take longer than the benchmark itself) and ANALYZEd;
2. ``MAILSYNC_BENCH_LINKER_MESSAGES`` ``mail.message.ingested`` records (default 50,000):
   conversations of one to four messages between the users' 40 personal accounts and random
   customers (so most messages link a person and an organization, some a deal, a few ask for
   a choice), replies referring to what they answer, sent copies in Sent; all produced to
   ``mail.ingested.v1`` before the linker starts, so the run measures the linker alone;
3. the linker (``python -m mailsync_linker``, its own process) files them: messages per second
   from its first to its last ``mail.thread.updated`` on ``mail.threads.v1``, and its CPU time;
4. the read API: ``GET /v1/inbox`` pages for random users, from each number of concurrent
   clients in ``MAILSYNC_BENCH_API_CLIENTS`` (default "1,8") for ``MAILSYNC_BENCH_API_SECONDS``
   (default 10) each — first at rest, then while the linker files another half batch of mail
   — p50/p99 in ms.

Nothing here asserts anything; the targets (issue 4: ≥ 5,000 msg/s, inbox p99 ≤ 50 ms) are
for reading the figures against.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.ingest_service import cpu_seconds
from mailsync_contracts import MessageIngested, MessageIngestedData
from mailsync_contracts.topics import INGESTED, THREADS
from mailsync_devstack.postgres import create_database, drop_database
from mailsync_devstack.services import ServiceProcess
from mailsync_devstack.stack import LocalStack
from mailsync_platform.database import migrate
from mailsync_platform.service import ServiceSpec

PERSONS = int(os.environ.get("MAILSYNC_BENCH_PERSONS", "1000000"))
DEALS = int(os.environ.get("MAILSYNC_BENCH_DEALS", "200000"))
MESSAGES = int(os.environ.get("MAILSYNC_BENCH_LINKER_MESSAGES", "50000"))
API_CLIENTS = [int(n) for n in os.environ.get("MAILSYNC_BENCH_API_CLIENTS", "1,8").split(",")]
API_SECONDS = float(os.environ.get("MAILSYNC_BENCH_API_SECONDS", "10"))
USERS = 40
COMPANY = "bench-company"
PERSONS_PER_ORGANIZATION = 10
SEED = 4
# Give up when the linker made no progress for this long.
STALL_SECONDS = 120.0


def note(text: str) -> None:
    print(f"linker_throughput note: {text}", flush=True)


def _user_email(n: int) -> str:
    return f"seller{n}@bench-sales.test"


def _person_email(n: int) -> str:
    return f"buyer{n}@customer{n // PERSONS_PER_ORGANIZATION}.test"


async def load_read_model(pool: asyncpg.Pool, rng: random.Random) -> None:
    """Users, organizations, persons and deals straight into the linker's tables."""
    since = datetime(2020, 1, 1, tzinfo=UTC)
    entities: list[tuple[Any, ...]] = []
    addresses: list[tuple[Any, ...]] = []
    for n in range(USERS):
        attributes: dict[str, Any] = {
            "kind": "user",
            "id": f"u-{n}",
            "name": f"Seller {n}",
            "email": _user_email(n),
            "linking_mode": "automatic",
        }
        entities.append((COMPANY, "user", f"u-{n}", json.dumps(attributes), False, since, since))
        addresses.append((COMPANY, _user_email(n), "user", f"u-{n}"))
    for n in range(PERSONS // PERSONS_PER_ORGANIZATION + 1):
        attributes = {"kind": "organization", "id": f"o-{n}", "name": f"Customer {n}"}
        entities.append(
            (COMPANY, "organization", f"o-{n}", json.dumps(attributes), False, since, since)
        )
    for n in range(PERSONS):
        organization = f"o-{n // PERSONS_PER_ORGANIZATION}"
        attributes = {
            "kind": "person",
            "id": f"p-{n}",
            "name": f"Buyer {n}",
            "emails": [_person_email(n)],
            "organization_id": organization,
        }
        entities.append((COMPANY, "person", f"p-{n}", json.dumps(attributes), False, since, since))
        addresses.append((COMPANY, _person_email(n), "person", f"p-{n}"))
    item_persons: list[tuple[Any, ...]] = []
    for n in range(DEALS):
        persons = sorted({f"p-{rng.randrange(PERSONS)}" for _ in range(rng.choice((1, 2)))})
        status = "open" if rng.random() < 0.8 else "won"
        attributes = {
            "kind": "deal",
            "id": f"d-{n}",
            "title": f"Deal {n}",
            "status": status,
            "person_ids": persons,
        }
        entities.append((COMPANY, "deal", f"d-{n}", json.dumps(attributes), False, since, since))
        item_persons += [(COMPANY, p, "deal", f"d-{n}", status == "open") for p in persons]
    async with pool.acquire() as conn:
        await conn.copy_records_to_table(
            "crm_entities",
            schema_name="linker",
            records=entities,
            columns=[
                "company_id",
                "kind",
                "entity_id",
                "attributes",
                "deleted",
                "version_time",
                "known_since",
            ],
        )
        await conn.copy_records_to_table(
            "crm_addresses",
            schema_name="linker",
            records=addresses,
            columns=["company_id", "email", "kind", "entity_id"],
        )
        await conn.copy_records_to_table(
            "crm_item_persons",
            schema_name="linker",
            records=list(dict.fromkeys(item_persons)),
            columns=["company_id", "person_id", "kind", "item_id", "open"],
        )
        await conn.execute("ANALYZE")


def mail(count: int, rng: random.Random, start: datetime, tag: str) -> list[MessageIngested]:
    """`count` messages in conversations between the users' accounts and random customers."""
    messages: list[MessageIngested] = []
    when = start
    conversation = 0
    while len(messages) < count:
        conversation += 1
        seller = rng.randrange(USERS)
        customers = [_person_email(rng.randrange(PERSONS)) for _ in range(rng.choice((1, 1, 2)))]
        previous: list[str] = []
        for turn in range(rng.randint(1, 4)):
            when += timedelta(seconds=7)
            outgoing = turn % 2 == 1
            message_id = f"{tag}-{conversation}-{turn}@bench.test"
            sender = _user_email(seller) if outgoing else customers[0]
            recipients = customers if outgoing else [_user_email(seller)]
            data = {
                "account_id": f"acct-{seller}",
                "owner_user_id": f"u-{seller}",
                "account_email": _user_email(seller),
                "folder": "Sent" if outgoing else "INBOX",
                "folder_role": "sent" if outgoing else "inbox",
                "uidvalidity": 1,
                "uid": len(messages) + 1,
                "message_id": message_id,
                "in_reply_to": previous[-1] if previous else None,
                "references": previous,
                "subject": f"{'Re: ' if turn else ''}Offer {conversation}",
                "sent_at": when,
                "from": {"email": sender},
                "to": [{"email": r} for r in recipients],
                "snippet": "Thanks for the offer, a few questions about the terms.",
                "flags": ["\\Seen"] if outgoing else [],
                "raw": {"sha256": secrets.token_hex(32), "size": 30_000},
                "account_type": "personal",
                "default_visibility": "shared",
            }
            messages.append(
                MessageIngested.build(
                    company_id=COMPANY,
                    source="ingest",
                    data=MessageIngestedData.model_validate(data),
                )
            )
            previous = [*previous, message_id]
            if len(messages) == count:
                break
    return messages


async def produce(bootstrap: str, messages: list[MessageIngested]) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    started = time.monotonic()
    try:
        pending = [
            await producer.send(INGESTED, m.to_bytes(), key=m.data.account_id.encode(), headers=[])
            for m in messages
        ]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.monotonic() - started


class ThreadTail:
    """Counts `mail.thread.updated` records from the topic's end, stamping first and last."""

    def __init__(self, bootstrap: str) -> None:
        self._consumer = AIOKafkaConsumer(
            THREADS, bootstrap_servers=bootstrap, auto_offset_reset="latest", group_id=None
        )
        self.first: float | None = None
        self.last: float | None = None
        self.records = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        await self._consumer.seek_to_end()
        self._task = asyncio.create_task(self._tail())

    async def _tail(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            for records in batch.values():
                now = time.monotonic()
                self.first = self.first or now
                self.last = now
                self.records += len(records)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self._consumer.stop()


async def wait_filed(pool: asyncpg.Pool, count: int) -> None:
    """Until the linker holds `count` filed messages and its outbox is empty."""
    progress, seen = time.monotonic(), -1
    while True:
        filed = await pool.fetchval("SELECT count(*) FROM linker.thread_messages")
        pending = await pool.fetchval("SELECT count(*) FROM linker.outbox")
        if filed >= count and pending == 0:
            return
        if filed != seen:
            progress, seen = time.monotonic(), filed
        elif time.monotonic() - progress > STALL_SECONDS:
            raise RuntimeError(f"the linker stalled at {filed} of {count} messages")
        await asyncio.sleep(0.2)


async def inbox_latencies(url: str, token: str, clients: int, seconds: float) -> list[float]:
    """Milliseconds per `GET /v1/inbox` from `clients` concurrent clients for `seconds`."""
    timings: list[float] = []
    deadline = time.monotonic() + seconds
    rng = random.Random(SEED)

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            while time.monotonic() < deadline:
                user = rng.randrange(USERS)
                started = time.perf_counter()
                response = await http.get(
                    "/v1/inbox",
                    params={"limit": 50},
                    headers={
                        "Authorization": f"Bearer {token}",
                        "X-Company-Id": COMPANY,
                        "X-User-Id": f"u-{user}",
                    },
                )
                elapsed = (time.perf_counter() - started) * 1000
                response.raise_for_status()
                timings.append(elapsed)

    await asyncio.gather(*(client() for _ in range(clients)))
    return timings


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def run() -> dict[str, float]:
    figures: dict[str, float] = {}
    rng = random.Random(SEED)
    async with LocalStack() as stack:
        name = f"bench_linker_{secrets.token_hex(4)}"
        database = await create_database(stack.admin_database_url, name)
        pool = await asyncpg.create_pool(database, min_size=1, max_size=4)
        assert pool is not None
        logs = Path(tempfile.mkdtemp(prefix="mailsync-bench-linker-"))
        token = secrets.token_urlsafe(24)
        linker = ServiceProcess(
            "linker",
            {
                "PATH": os.environ.get("PATH", ""),
                **stack.env(),
                "MAILSYNC_DATABASE_URL": database,
                "MAILSYNC_LOG_LEVEL": "WARNING",
                "MAILSYNC_SERVICE_TOKEN": token,
                "MAILSYNC_CONSUMER_GROUP": f"bench-linker-{secrets.token_hex(4)}",
            },
            logs,
        )
        try:
            spec = ServiceSpec(
                name="linker", migrations_package="mailsync_linker.migrations", subscribe=print
            )
            await migrate(database, "linker", spec.migrations())
            started = time.monotonic()
            await load_read_model(pool, rng)
            figures["read_model_persons"] = PERSONS
            figures["read_model_deals"] = DEALS
            figures["read_model_load_seconds"] = time.monotonic() - started

            batch = mail(MESSAGES, rng, datetime(2026, 11, 1, tzinfo=UTC), "a")
            figures["messages"] = len(batch)
            figures["produce_seconds"] = await produce(stack.kafka_bootstrap, batch)
            tail = ThreadTail(stack.kafka_bootstrap)
            await tail.start()
            linker.start()
            await linker.wait_ready()
            assert linker.pid is not None
            cpu_before = cpu_seconds(linker.pid)
            await wait_filed(pool, len(batch))
            await asyncio.sleep(1.0)  # the last records reach the tail
            cpu = cpu_seconds(linker.pid) - cpu_before
            await tail.stop()
            assert tail.first is not None
            assert tail.last is not None
            span = max(tail.last - tail.first, 1e-6)
            figures["linker_seconds_first_to_last_update"] = span
            figures["linker_messages_per_second"] = len(batch) / span
            figures["linker_thread_updates"] = tail.records
            figures["linker_cpu_seconds"] = cpu
            figures["threads"] = await pool.fetchval("SELECT count(*) FROM linker.threads")
            figures["threads_linked_to_a_deal"] = await pool.fetchval(
                "SELECT count(DISTINCT thread_id) FROM linker.thread_links WHERE kind = 'deal'"
            )

            api = linker.url
            async with httpx.AsyncClient(base_url=api) as http:
                document = await http.get(
                    "/v1/openapi.json", headers={"Authorization": f"Bearer {token}"}
                )
                served = document.status_code == 200
            if not served:
                note("the linker serves no read API; latency not measured")
                return figures
            for clients in API_CLIENTS:
                at_rest = await inbox_latencies(api, token, clients, API_SECONDS)
                figures[f"inbox_requests_at_rest_{clients}_clients"] = len(at_rest)
                figures[f"inbox_p50_ms_at_rest_{clients}_clients"] = statistics.median(at_rest)
                figures[f"inbox_p99_ms_at_rest_{clients}_clients"] = _percentile(at_rest, 0.99)

            more = mail(MESSAGES // 2, rng, datetime(2026, 11, 20, tzinfo=UTC), "b")
            await produce(stack.kafka_bootstrap, more)
            for clients in API_CLIENTS:
                busy = await inbox_latencies(api, token, clients, API_SECONDS)
                figures[f"inbox_requests_while_filing_{clients}_clients"] = len(busy)
                figures[f"inbox_p50_ms_while_filing_{clients}_clients"] = statistics.median(busy)
                figures[f"inbox_p99_ms_while_filing_{clients}_clients"] = _percentile(busy, 0.99)
            await wait_filed(pool, len(batch) + len(more))
        finally:
            linker.stop()
            await pool.close()
            await drop_database(stack.admin_database_url, name)
    return figures
