"""The shared service runtime against the real broker and real Postgres: migrations, the
dead-letter aware idempotent consumer, and the transactional outbox."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from starlette.applications import Starlette

from mailsync_contracts import (
    CrmEntityUpserted,
    CrmEntityUpsertedData,
    CrmPerson,
    decode,
)
from mailsync_contracts.topics import ALL_TOPICS, CRM_ENTITIES, DEADLETTER
from mailsync_devstack.postgres import create_database, drop_database
from mailsync_platform.consumer import Refused
from mailsync_platform.database import (
    DbConnection,
    Migration,
    MigrationError,
    migrate,
)
from mailsync_platform.outbox import OutboxRelay, stage
from mailsync_platform.service import Runtime, ServiceSpec, build_app
from mailsync_platform.settings import ServiceSettings
from tests.support.topics import TopicWatcher, TopicWriter

pytestmark = pytest.mark.integration

PG15_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SERVICE_MIGRATIONS = {
    "ingest": "mailsync_ingest.migrations",
    "linker": "mailsync_linker.migrations",
    "outbound": "mailsync_outbound.migrations",
    "tracking": "mailsync_tracking.migrations",
}


async def _pg15_reachable() -> bool:
    try:
        conn = await asyncpg.connect(PG15_ADMIN_URL, timeout=2)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


@pytest.fixture(params=["embedded-18", "system-15"])
async def any_supported_postgres(
    request: pytest.FixtureRequest, admin_database_url: str
) -> AsyncIterator[str]:
    """A fresh database on each supported Postgres version."""
    if request.param == "system-15":
        if not await _pg15_reachable():
            pytest.skip("no PostgreSQL 15 answers on 127.0.0.1:5432 on this machine")
        admin = PG15_ADMIN_URL
    else:
        admin = admin_database_url
    name = f"test_{secrets.token_hex(6)}"
    url = await create_database(admin, name)
    try:
        conn = await asyncpg.connect(url)
        version = await conn.fetchval("SHOW server_version_num")
        await conn.close()
        assert int(version) // 10000 == (15 if request.param == "system-15" else 18)
        yield url
    finally:
        await drop_database(admin, name)


async def test_every_services_migrations_apply_once_and_then_are_a_no_op(
    any_supported_postgres: str,
) -> None:
    for name, package in SERVICE_MIGRATIONS.items():
        spec = ServiceSpec(name=name, migrations_package=package, subscribe=lambda _: None)
        first = await migrate(any_supported_postgres, name, spec.migrations())
        assert first[0] == "platform:0001"
        assert await migrate(any_supported_postgres, name, spec.migrations()) == []
    conn = await asyncpg.connect(any_supported_postgres)
    schemas = {r["nspname"] for r in await conn.fetch("SELECT nspname FROM pg_namespace")}
    await conn.close()
    assert set(SERVICE_MIGRATIONS) <= schemas, "each service keeps its tables in its own schema"


async def test_a_migration_edited_after_it_was_applied_is_refused(database_url: str) -> None:
    original = [Migration("demo", 1, "0001_t.sql", "CREATE TABLE t (id int);")]
    await migrate(database_url, "demo", original)
    edited = [Migration("demo", 1, "0001_t.sql", "CREATE TABLE t (id bigint);")]
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate(database_url, "demo", edited)


async def test_two_replicas_migrating_at_once_apply_each_migration_exactly_once(
    database_url: str,
) -> None:
    migrations = [
        Migration("demo", 1, "0001_a.sql", "CREATE TABLE a (id int);"),
        Migration("demo", 2, "0002_b.sql", "CREATE TABLE b (id int);"),
    ]
    results = await asyncio.gather(
        migrate(database_url, "demo", migrations), migrate(database_url, "demo", migrations)
    )
    assert sorted(len(r) for r in results) == [0, 2]


@dataclass
class Probe:
    """A test use case on crm.entities.v1: records what it saw, fails on request."""

    company_id: str
    applied: list[str] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)

    async def __call__(self, event: CrmEntityUpserted, conn: DbConnection) -> None:
        if event.company_id != self.company_id:
            return
        entity = event.data.entity
        self.attempts[entity.id] = self.attempts.get(entity.id, 0) + 1
        if entity.id.startswith("explodes"):
            raise RuntimeError("this person cannot be handled")
        if entity.id.startswith("refused"):
            raise Refused(f"{entity.id} can never apply")
        self.applied.append(entity.id)
        # Staged back onto its own topic: the relay publishes it, and the consumer then meets the
        # same event id again and must skip it.
        await stage(conn, CRM_ENTITIES, f"outbox:{entity.id}", event)
        if entity.id.startswith("rolls-back"):
            raise ValueError("rolled back after staging")


@pytest.fixture
async def probe_service(
    kafka_bootstrap: str, database_url: str
) -> AsyncIterator[tuple[Runtime, Probe]]:
    probe = Probe(company_id=f"company-{secrets.token_hex(4)}")

    def subscribe(runtime: Runtime) -> None:
        runtime.consumer.subscribe(CRM_ENTITIES, {"crm.entity.upserted": probe})

    spec = ServiceSpec(
        name="probe", migrations_package="mailsync_tracking.migrations", subscribe=subscribe
    )
    settings = ServiceSettings(
        kafka_bootstrap=kafka_bootstrap,
        database_url=database_url,
        consumer_group=f"probe-{secrets.token_hex(4)}",
        outbox_poll_seconds=0.2,
        kafka_session_timeout_ms=2000,
        kafka_heartbeat_interval_ms=400,
    )
    app: Starlette = build_app(spec, settings)
    async with app.router.lifespan_context(app):
        yield app.state.runtime, probe


def _person(company_id: str, person_id: str) -> CrmEntityUpserted:
    return CrmEntityUpserted.build(
        company_id=company_id,
        source="crm",
        data=CrmEntityUpsertedData(entity=CrmPerson(id=person_id, name="Probe")),
    )


async def test_poison_records_are_dead_lettered_with_their_reason_and_the_consumer_moves_on(
    probe_service: tuple[Runtime, Probe], kafka_bootstrap: str
) -> None:
    _, probe = probe_service
    watcher = TopicWatcher(kafka_bootstrap, ALL_TOPICS)
    writer = TopicWriter(kafka_bootstrap)
    await watcher.start()
    await writer.start()
    try:
        tag = probe.company_id
        await writer.send_raw(CRM_ENTITIES, "x", f"not json {tag}".encode())
        await writer.send_raw(
            CRM_ENTITIES,
            "x",
            b'{"type": "crm.entity.exploded", "company_id": "' + tag.encode() + b'"}',
        )
        await writer.send_raw(
            CRM_ENTITIES,
            "x",
            b'{"type": "crm.entity.upserted", "company_id": "' + tag.encode() + b'", "data": 1}',
        )
        await writer.send(CRM_ENTITIES, "x", _person(tag, "explodes-1"))
        await writer.send(CRM_ENTITIES, "x", _person(tag, "refused-1"))
        await writer.send(CRM_ENTITIES, "x", _person(tag, "fine-1"))

        kinds: dict[str, str] = {}
        for expected in ("not_json", "unknown_type", "invalid", "handler_failed", "refused"):

            def is_letter(e: Any, kind: str = expected) -> bool:
                return bool(
                    e.type == "mail.deadletter.recorded"
                    and e.data.service == "probe"
                    and e.data.error_kind == kind
                    and tag in (e.data.value_text or "")
                )

            letter = await watcher.wait_for(DEADLETTER, is_letter)
            kinds[expected] = letter.data.error_message
        assert "crm.entity.exploded" in kinds["unknown_type"]
        assert "this person cannot be handled" in kinds["handler_failed"]
        await _until(lambda: "fine-1" in probe.applied)
        assert probe.attempts["explodes-1"] == 3, "retried a few times before dead-lettering"
        assert kinds["refused"] == "refused-1 can never apply"
        assert probe.attempts["refused-1"] == 1, "a refusal is not retried"
    finally:
        await writer.stop()
        await watcher.stop()


async def test_a_redelivered_event_is_applied_once_and_its_outbox_event_published_once(
    probe_service: tuple[Runtime, Probe], kafka_bootstrap: str
) -> None:
    runtime, probe = probe_service
    watcher = TopicWatcher(kafka_bootstrap, [CRM_ENTITIES])
    writer = TopicWriter(kafka_bootstrap)
    await watcher.start()
    await writer.start()
    try:
        event = _person(probe.company_id, "twice-1")
        await writer.send(CRM_ENTITIES, "k", event)
        await writer.send(CRM_ENTITIES, "k", event)  # the same event id again
        rolled_back = _person(probe.company_id, "rolls-back-1")
        await writer.send(CRM_ENTITIES, "k", rolled_back)
        await writer.send(CRM_ENTITIES, "k", _person(probe.company_id, "after-1"))
        await _until(lambda: "after-1" in probe.applied)
        # The outbox publishes in commit order: once "after-1" is out, so is everything before.
        await watcher.wait_for(
            CRM_ENTITIES,
            lambda e: e.data.entity.id == "after-1" and _outbox_copy(watcher, "after-1"),
        )
        await watcher.collect(1.0)
        published = [
            decode(CRM_ENTITIES, r.value).id for r in watcher.records if r.key == b"outbox:twice-1"
        ]
        assert published == [event.id], "applied once, published once"
        assert not [r for r in watcher.records if r.key == b"outbox:rolls-back-1"]
        assert probe.applied.count("twice-1") == 1
        remaining = await runtime.pool.fetchval("SELECT count(*) FROM outbox")
        assert remaining == 0
    finally:
        await writer.stop()
        await watcher.stop()


async def _until(condition: object, timeout: float = 60.0) -> None:
    assert callable(condition)
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


def _outbox_copy(watcher: TopicWatcher, entity_id: str) -> bool:
    return any(r.key == f"outbox:{entity_id}".encode() for r in watcher.records)


class SlowEvent:
    def __init__(self, name: str) -> None:
        self.name = name

    def to_bytes(self) -> bytes:
        return self.name.encode()


async def test_an_outbox_row_committed_while_the_relay_publishes_is_published_later_not_lost(
    database_url: str,
) -> None:
    await migrate(
        database_url,
        "relaytest",
        ServiceSpec(
            name="relaytest", migrations_package="mailsync_tracking.migrations", subscribe=print
        ).migrations(),
    )
    pool = await asyncpg.create_pool(
        database_url, min_size=1, max_size=4, server_settings={"search_path": "relaytest"}
    )
    assert pool is not None
    early = await pool.acquire()
    published: list[bytes] = []
    try:
        # `early` takes the lower seq but commits only while the relay is publishing a row
        # staged after it — the interleaving of two concurrent use cases.
        early_tx = early.transaction()
        await early_tx.start()
        await stage(early, DEADLETTER, "k", SlowEvent("early"))
        async with pool.acquire() as late, late.transaction():
            await stage(late, DEADLETTER, "k", SlowEvent("late"))

        async def publish(topic: str, key: str, payload: bytes, headers: object) -> None:
            published.append(payload)
            if early.is_in_transaction():
                await early_tx.commit()

        relay = OutboxRelay(pool, "relaytest", publish, poll_seconds=1.0)
        await relay.flush()
        await relay.flush()
        assert published == [b"late", b"early"]
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    finally:
        await pool.release(early)
        await pool.close()


async def test_a_stopped_relay_finishes_its_batch_and_publishes_what_is_left_exactly_once(
    database_url: str,
) -> None:
    await migrate(
        database_url,
        "relaystop",
        ServiceSpec(
            name="relaystop", migrations_package="mailsync_tracking.migrations", subscribe=print
        ).migrations(),
    )
    pool = await asyncpg.create_pool(
        database_url, min_size=1, max_size=4, server_settings={"search_path": "relaystop"}
    )
    assert pool is not None
    published: list[bytes] = []
    in_publish = asyncio.Event()
    release = asyncio.Event()
    try:
        async with pool.acquire() as conn, conn.transaction():
            await stage(conn, DEADLETTER, "k", SlowEvent("first"))

        async def publish(topic: str, key: str, payload: bytes, headers: object) -> None:
            published.append(payload)
            in_publish.set()
            await release.wait()

        relay = OutboxRelay(pool, "relaystop", publish, poll_seconds=30.0)
        relaying = asyncio.create_task(relay.run())
        await in_publish.wait()
        # Staged while the relay is mid-batch, then the service stops: a cancel here would
        # publish "first" again at the next start.
        async with pool.acquire() as conn, conn.transaction():
            await stage(conn, DEADLETTER, "k", SlowEvent("second"))
        relay.stop()
        release.set()
        async with asyncio.timeout(10):
            await relaying
        assert published == [b"first", b"second"]
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    finally:
        await pool.close()
