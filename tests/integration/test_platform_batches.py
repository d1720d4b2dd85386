"""The platform consumer's batch mode against the real broker and real Postgres: a poll of
records is applied in one transaction with the single-record guarantees (ARCHITECTURE §1: every
consumer is idempotent, every record key gives the ordering; §2: bad input never stops a
consumer).

Every test runs a small service on `crm.entities.v1` under a consumer group of its own, which
reads the topic from its start: records other tests wrote are there too, and the probe only
looks at its own company's events. Records written before the service starts reach it together,
in a few polls. The probe's effects go to a table in the same transaction, so what it shows is
what was committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from mailsync_contracts import (
    CrmEntityDeleted,
    CrmEntityDeletedData,
    CrmEntityUpserted,
    CrmEntityUpsertedData,
    CrmPerson,
)
from mailsync_contracts.envelope import Envelope
from mailsync_contracts.topics import CRM_ENTITIES, DEADLETTER, TOPIC_SPECS
from mailsync_platform.database import DbConnection
from mailsync_platform.service import Runtime, ServiceSpec, build_app
from mailsync_platform.settings import ServiceSettings
from tests.support.topics import TopicWatcher

pytestmark = pytest.mark.integration

SERVICE = "batchprobe"


@dataclass
class BatchProbe:
    """A batch use case: stores its company's people in `applied`, fails on request."""

    company_id: str
    calls: list[list[str]] = field(default_factory=list)
    types_seen: set[str] = field(default_factory=set)
    attempts: Counter[str] = field(default_factory=Counter)
    transient_failures: int = 0

    async def __call__(self, events: Sequence[Any], conn: DbConnection) -> None:
        self.types_seen.update(event.type for event in events)
        ours = [e.data.entity.id for e in events if e.company_id == self.company_id]
        if not ours:
            return
        self.calls.append(ours)
        self.attempts.update(ours)
        # Written before any failure below: a rolled-back call must leave no row behind.
        await conn.executemany("INSERT INTO applied (entity_id) VALUES ($1)", [(i,) for i in ours])
        if self.transient_failures:
            self.transient_failures -= 1
            raise ConnectionResetError("the database went away")
        if any(entity_id.startswith("explodes") for entity_id in ours):
            raise RuntimeError("this person cannot be handled")


@pytest.fixture
async def probe_database(database_url: str) -> str:
    """The test's database with the probe's `applied` table in the service's schema."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            f"CREATE SCHEMA {SERVICE};"
            f" CREATE TABLE {SERVICE}.applied (seq bigserial PRIMARY KEY, entity_id text NOT NULL)"
        )
    finally:
        await conn.close()
    return database_url


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    """Writes records as any producer could, headers included."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    yield producer
    await producer.stop()


@pytest.fixture
async def dead_letters(kafka_bootstrap: str) -> AsyncIterator[TopicWatcher]:
    watcher = TopicWatcher(kafka_bootstrap, [DEADLETTER])
    await watcher.start()
    yield watcher
    await watcher.stop()


@contextlib.asynccontextmanager
async def running(
    kafka_bootstrap: str,
    database_url: str,
    probe: BatchProbe,
    group: str | None = None,
    *,
    batch: bool = True,
) -> AsyncIterator[Runtime]:
    """The probe service; `batch=False` runs the probe on the single-record path instead."""

    async def one_by_one(event: Any, conn: DbConnection) -> None:
        await probe([event], conn)

    def subscribe(runtime: Runtime) -> None:
        if batch:
            runtime.consumer.subscribe_batch(CRM_ENTITIES, probe, types={"crm.entity.upserted"})
        else:
            runtime.consumer.subscribe(CRM_ENTITIES, {"crm.entity.upserted": one_by_one})

    spec = ServiceSpec(
        name=SERVICE, migrations_package="mailsync_tracking.migrations", subscribe=subscribe
    )
    settings = ServiceSettings(
        kafka_bootstrap=kafka_bootstrap,
        database_url=database_url,
        consumer_group=group or f"{SERVICE}-{secrets.token_hex(4)}",
        outbox_poll_seconds=0.2,
        kafka_session_timeout_ms=2000,
        kafka_heartbeat_interval_ms=400,
    )
    app = build_app(spec, settings)
    async with app.router.lifespan_context(app):
        yield app.state.runtime


def new_probe() -> BatchProbe:
    return BatchProbe(company_id=f"company-{secrets.token_hex(4)}")


def person(probe: BatchProbe, person_id: str) -> CrmEntityUpserted:
    return CrmEntityUpserted.build(
        company_id=probe.company_id,
        source="crm",
        data=CrmEntityUpsertedData(entity=CrmPerson(id=person_id, name="Probe")),
    )


async def send(
    producer: AIOKafkaProducer,
    key: str,
    value: Envelope[Any] | bytes,
    headers: Sequence[tuple[str, bytes]] = (),
) -> None:
    payload = value if isinstance(value, bytes) else value.to_bytes()
    await producer.send_and_wait(CRM_ENTITIES, payload, key=key.encode(), headers=list(headers))


async def applied(database_url: str) -> list[str]:
    """The people the probe applied, in commit order."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(f"SELECT entity_id FROM {SERVICE}.applied ORDER BY seq")
    finally:
        await conn.close()
    return [row["entity_id"] for row in rows]


async def until_applied(
    database_url: str, done: Callable[[list[str]], bool], timeout: float = 30.0
) -> list[str]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        rows = await applied(database_url)
        if done(rows):
            return rows
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not applied in time; applied so far: {rows}")
        await asyncio.sleep(0.1)


def keys_on_distinct_partitions(count: int) -> list[str]:
    """Record keys that the default partitioner puts on `count` different partitions."""
    partitions = TOPIC_SPECS[CRM_ENTITIES].partitions
    keys: dict[int, str] = {}
    for n in range(1000):
        key = f"person:{n}"
        keys.setdefault((murmur2(key.encode()) & 0x7FFFFFFF) % partitions, key)
        if len(keys) == count:
            return list(keys.values())
    raise AssertionError("not enough partitions")


def in_key_order(rows: list[str], key: str) -> list[str]:
    return [row for row in rows if row.startswith(f"{key}/")]


def duplicates_counted(runtime: Runtime) -> float:
    counted = runtime.registry.get_sample_value(
        "mailsync_duplicate_records_total", {"service": SERVICE, "topic": CRM_ENTITIES}
    )
    return counted or 0.0


async def test_a_poll_of_valid_records_is_applied_once_each_in_record_order_in_few_transactions(
    kafka_bootstrap: str, probe_database: str, producer: AIOKafkaProducer
) -> None:
    probe = new_probe()
    keys = keys_on_distinct_partitions(4)
    written = {key: [f"{key}/{n:02d}" for n in range(50)] for key in keys}
    await send(
        producer,
        keys[0],
        CrmEntityDeleted.build(
            company_id=probe.company_id,
            source="crm",
            data=CrmEntityDeletedData(kind="person", entity_id="gone"),
        ),
    )
    for n in range(50):
        for key in keys:
            await send(producer, key, person(probe, written[key][n]))

    async with running(kafka_bootstrap, probe_database, probe):
        rows = await until_applied(probe_database, lambda rows: len(rows) >= 200)

    assert sorted(rows) == sorted(chain.from_iterable(written.values())), (
        "each record applied exactly once"
    )
    for key in keys:
        assert in_key_order(rows, key) == written[key]
    assert probe.types_seen == {"crm.entity.upserted"}, "types outside `types` are skipped"
    assert max(len(call) for call in probe.calls) > 1
    assert len(probe.calls) <= 20, f"200 records in {len(probe.calls)} transactions"


@pytest.mark.parametrize("batch", [True, False], ids=["batch", "single"])
async def test_garbage_in_a_poll_is_dead_lettered_with_its_reason_and_the_records_around_it_apply(
    kafka_bootstrap: str,
    probe_database: str,
    producer: AIOKafkaProducer,
    dead_letters: TopicWatcher,
    batch: bool,
) -> None:
    probe = new_probe()
    tag = probe.company_id.encode()
    await send(producer, "g", person(probe, "g/1"))
    await send(producer, "g", b"not json " + tag)
    await send(producer, "g", b'{"type": "crm.entity.exploded", "company_id": "' + tag + b'"}')
    await send(producer, "g", person(probe, "g/2"))
    await send(
        producer,
        "g",
        b'{"type": "crm.entity.upserted", "company_id": "' + tag + b'", "data": 1}',
    )
    # Labelled JSON but not JSON: faststream's own decoder would raise on it before the
    # consumer could dead-letter it, and the record (or its poll) would come back forever.
    await send(
        producer,
        "g",
        b"labelled json " + tag,
        headers=[("content-type", b"application/json")],
    )
    await send(producer, "g", person(probe, "g/3"))

    async with running(kafka_bootstrap, probe_database, probe, batch=batch):
        reasons: dict[str, str] = {}
        for kind, marker in (
            ("not_json", "not json"),
            ("unknown_type", "crm.entity.exploded"),
            ("invalid", '"data": 1'),
            ("not_json", "labelled json"),
        ):

            def is_letter(e: Any, kind: str = kind, marker: str = marker) -> bool:
                text = e.data.value_text or ""
                return bool(
                    e.data.service == SERVICE
                    and e.data.error_kind == kind
                    and probe.company_id in text
                    and marker in text
                )

            letter = await dead_letters.wait_for(DEADLETTER, is_letter)
            reasons[marker] = letter.data.error_message
        rows = await until_applied(probe_database, lambda rows: "g/3" in rows)

    assert rows == ["g/1", "g/2", "g/3"]
    assert "crm.entity.exploded" in reasons["crm.entity.exploded"]


async def test_a_poison_record_is_dead_lettered_after_retries_and_the_rest_of_its_poll_applies_once(
    kafka_bootstrap: str,
    probe_database: str,
    producer: AIOKafkaProducer,
    dead_letters: TopicWatcher,
) -> None:
    probe = new_probe()
    written = [f"p/{n:02d}" for n in range(20)]
    written[10] = "explodes/10"
    for entity_id in written:
        await send(producer, "p", person(probe, entity_id))

    async with running(kafka_bootstrap, probe_database, probe):
        letter = await dead_letters.wait_for(
            DEADLETTER,
            lambda e: bool(
                e.data.service == SERVICE
                and e.data.error_kind == "handler_failed"
                and probe.company_id in (e.data.value_text or "")
            ),
        )
        rows = await until_applied(probe_database, lambda rows: "p/19" in rows)

    assert "this person cannot be handled" in letter.data.error_message
    assert "explodes/10" in (letter.data.value_text or "")
    assert rows == [entity_id for entity_id in written if entity_id != "explodes/10"]
    assert next(c for c in probe.calls if "explodes/10" in c) == written, "one poll, rolled back"
    assert probe.attempts["explodes/10"] == 1 + 3, "the batch, then the single-record retries"
    assert probe.attempts["p/19"] == 2, "the batch, then once on its own"


async def test_a_redelivered_poll_changes_nothing_and_an_id_twice_in_one_poll_applies_once(
    kafka_bootstrap: str, probe_database: str, producer: AIOKafkaProducer
) -> None:
    probe = new_probe()
    first, second, third = (person(probe, f"r/{n}") for n in range(3))
    for event in (first, second, first, third):
        await send(producer, "r", event)

    async with running(kafka_bootstrap, probe_database, probe):
        rows = await until_applied(probe_database, lambda rows: "r/2" in rows)
        # Sent again while running: recognised in the database, not in the poll.
        await send(producer, "r", second)
        await send(producer, "r", person(probe, "r/3"))
        rows = await until_applied(probe_database, lambda rows: "r/3" in rows)
    assert rows == ["r/0", "r/1", "r/2", "r/3"]
    assert ["r/0", "r/1", "r/2"] in probe.calls, "the repeated id was dropped inside its poll"

    # Offsets lost (a new group): the whole topic comes again, and only the new record applies.
    again = BatchProbe(company_id=probe.company_id)
    await send(producer, "r", person(probe, "r/4"))
    async with running(kafka_bootstrap, probe_database, again) as runtime:
        rows = await until_applied(probe_database, lambda rows: "r/4" in rows)
        redelivered = duplicates_counted(runtime)
    assert rows == ["r/0", "r/1", "r/2", "r/3", "r/4"]
    assert again.calls == [["r/4"]]
    assert redelivered >= 6, "r/0, r/1, r/0, r/2, r/1, r/3 were recognised as duplicates"


async def test_records_of_one_key_are_applied_in_the_order_they_were_written(
    kafka_bootstrap: str, probe_database: str, producer: AIOKafkaProducer
) -> None:
    probe = new_probe()
    keys = [*keys_on_distinct_partitions(4), "shared:a", "shared:b"]
    written = {key: [f"{key}/{n:02d}" for n in range(30)] for key in keys}

    async def write(key: str) -> None:
        for entity_id in written[key]:
            await send(producer, key, person(probe, entity_id))

    async with running(kafka_bootstrap, probe_database, probe):
        # Written while the service runs, all keys at once: many small polls.
        await asyncio.gather(*(write(key) for key in keys))
        rows = await until_applied(probe_database, lambda rows: len(rows) >= 180)

    assert len(rows) == len(set(rows)) == 180
    for key in keys:
        assert in_key_order(rows, key) == written[key]


async def test_a_transient_failure_redelivers_the_whole_poll_from_every_partition_once_applied(
    kafka_bootstrap: str, probe_database: str, producer: AIOKafkaProducer
) -> None:
    probe = new_probe()
    probe.transient_failures = 1
    keys = keys_on_distinct_partitions(4)
    written = {key: [f"{key}/{n}" for n in range(10)] for key in keys}
    for n in range(10):
        for key in keys:
            await send(producer, key, person(probe, written[key][n]))

    async with running(kafka_bootstrap, probe_database, probe) as runtime:
        rows = await until_applied(probe_database, lambda rows: len(rows) >= 40)
        await asyncio.sleep(0.5)  # time enough for a stray redelivery to show
        rows = await applied(probe_database)
        failed = runtime.registry.get_sample_value(
            "mailsync_dead_letters_total",
            {"service": SERVICE, "topic": CRM_ENTITIES, "kind": "handler_failed"},
        )

    failed_poll = probe.calls[0]
    assert len({entity_id.split("/")[0] for entity_id in failed_poll}) > 1, (
        "the failed poll spanned partitions"
    )
    assert sorted(rows) == sorted(chain.from_iterable(written.values()))
    for key in keys:
        assert in_key_order(rows, key) == written[key]
    assert all(probe.attempts[entity_id] == 2 for entity_id in failed_poll)
    assert failed is None, "a transient failure is retried, never dead-lettered"
