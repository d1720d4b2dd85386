"""Reading and writing Kafka topics from a test, the way a CRM consumer would.

`TopicWatcher` reads without a consumer group: it is assigned every partition and starts at
the end, so it sees exactly what is published after it started, without waiting for a group
rebalance and without disturbing the services' own consumer groups.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from mailsync_contracts import decode
from mailsync_contracts.envelope import Envelope


@dataclass(frozen=True, slots=True)
class SeenRecord:
    topic: str
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


class TopicWatcher:
    def __init__(self, bootstrap: str, topics: Sequence[str]) -> None:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self._topics = topics
        self.records: list[SeenRecord] = []

    async def start(self) -> None:
        await self._consumer.start()
        partitions = []
        for topic in self._topics:
            for _ in range(50):
                found = self._consumer.partitions_for_topic(topic)
                if found:
                    break
                await self._consumer._client.force_metadata_update()
                await asyncio.sleep(0.1)
            partitions += [TopicPartition(topic, p) for p in sorted(found or ())]
        self._consumer.assign(partitions)
        await self._consumer.seek_to_end(*partitions)
        for partition in partitions:  # resolve the end offsets now, before anything is published
            await self._consumer.position(partition)

    async def stop(self) -> None:
        await self._consumer.stop()

    async def _poll(self) -> None:
        batches = await self._consumer.getmany(timeout_ms=200)
        for batch in batches.values():
            for record in batch:
                self.records.append(
                    SeenRecord(
                        topic=record.topic,
                        key=record.key,
                        value=record.value or b"",
                        headers={k: bytes(v) for k, v in record.headers},
                    )
                )

    def events(self, topic: str) -> list[Any]:
        return [decode(topic, r.value) for r in self.records if r.topic == topic]

    async def wait_for(
        self, topic: str, predicate: Callable[[Any], bool], timeout: float = 60.0
    ) -> Any:
        """The first event on `topic` that satisfies `predicate`, waiting up to `timeout` s."""
        deadline = time.monotonic() + timeout
        checked = 0
        while True:
            matching = [r for r in self.records if r.topic == topic]
            for record in matching[checked:]:
                event = decode(topic, record.value)
                if predicate(event):
                    return event
            checked = len(matching)
            if time.monotonic() > deadline:
                seen = [(r.key, r.value[:80]) for r in matching]
                raise AssertionError(
                    f"no matching event on {topic} within {timeout:.0f}s; seen there: {seen}"
                )
            await self._poll()

    async def collect(self, seconds: float) -> None:
        """Keep reading for `seconds`, e.g. to show that something did NOT arrive."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await self._poll()


class TopicWriter:
    def __init__(self, bootstrap: str) -> None:
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap)

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(self, topic: str, key: str, event: Envelope[Any]) -> None:
        await self.send_raw(topic, key, event.to_bytes())

    async def send_raw(self, topic: str, key: str, value: bytes) -> None:
        await self._producer.send_and_wait(topic, value, key=key.encode())
