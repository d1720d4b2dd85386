"""The walking skeleton's throughput: N messages appended to a Dovecot INBOX, one account
connected, every service in its own process; prints the time from connect to the last
`mail.message.ingested` and to the last `mail.thread.updated`."""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from cryptography.fernet import Fernet
from pydantic import SecretStr

from mailsync_contracts import ConnectAccount, ConnectAccountData, MailServer, decode
from mailsync_contracts.topics import ACCOUNT_COMMANDS, INGESTED, THREADS
from mailsync_devstack.demo_data import demo_mailbox
from mailsync_devstack.postgres import create_database, drop_database
from mailsync_devstack.services import ServiceFleet
from mailsync_devstack.stack import LocalStack

MESSAGES = int(os.environ.get("MAILSYNC_BENCH_MESSAGES", "500"))


async def _end_positions(consumer: AIOKafkaConsumer, topics: list[str]) -> None:
    partitions = []
    for topic in topics:
        await consumer._client.force_metadata_update()
        partitions += [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for partition in partitions:
        await consumer.position(partition)


def _without_message_id(raw: bytes) -> bytes:
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"message-id:")]
    return b"\r\n".join(lines) + sep + body


async def run() -> dict[str, float]:
    async with LocalStack() as stack:
        assert stack.dovecot is not None
        name = f"bench_{secrets.token_hex(4)}"
        database = await create_database(stack.admin_database_url, name)
        logs = Path(tempfile.mkdtemp(prefix="mailsync-bench-"))
        env = {
            "PATH": os.environ.get("PATH", ""),
            **stack.env(),
            "MAILSYNC_DATABASE_URL": database,
            "MAILSYNC_RAW_STORE_URL": (logs / "raw").as_uri(),
            "MAILSYNC_CREDENTIALS_KEY": Fernet.generate_key().decode(),
            "MAILSYNC_POLL_SECONDS": "0.5",
            "MAILSYNC_LEASE_RENEW_SECONDS": "0.5",
            "MAILSYNC_LOG_LEVEL": "WARNING",
        }
        fleet = ServiceFleet(env, logs)
        await fleet.start()
        try:
            user = stack.dovecot.add_user(f"bench-{secrets.token_hex(3)}@example.test")
            demo = [m.raw for m in demo_mailbox(user.email, datetime.now(UTC))]
            for n in range(MESSAGES):
                # A distinct Message-ID per copy, else the linker rightly files copies as one.
                raw = f"Message-ID: <bench-{n}@bench.test>\r\n".encode() + _without_message_id(
                    demo[n % len(demo)]
                )
                stack.dovecot.append(user.email, "INBOX", raw)
            consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap)
            producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
            await consumer.start()
            await producer.start()
            await _end_positions(consumer, [INGESTED, THREADS])
            account_id = f"bench-{secrets.token_hex(4)}"
            command = ConnectAccount.build(
                company_id="bench",
                source="bench",
                data=ConnectAccountData(
                    account_id=account_id,
                    user_id="bench-user",
                    email=user.email,
                    imap=MailServer(host=stack.imap_host, port=stack.imap_port, security="plain"),
                    username=user.email,
                    password=SecretStr(user.password),
                    account_type="personal",
                    plan="ultimate",
                ),
            )
            started = time.perf_counter()
            await producer.send_and_wait(
                ACCOUNT_COMMANDS, command.to_bytes(), key=account_id.encode()
            )
            ingested = 0
            filed = 0
            last_ingested = last_filed = started
            deadline = started + 600
            while (ingested < MESSAGES or filed < MESSAGES) and time.perf_counter() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                for batch in batches.values():
                    for record in batch:
                        event = decode(record.topic, record.value or b"")
                        if getattr(event.data, "account_id", None) != account_id:
                            continue
                        if event.type == "mail.message.ingested":
                            ingested += 1
                            last_ingested = time.perf_counter()
                        elif (
                            event.type == "mail.thread.updated"
                            and event.data.reason == "new_message"
                        ):
                            filed += 1
                            last_filed = time.perf_counter()
            await consumer.stop()
            await producer.stop()
        finally:
            fleet.stop()
            await drop_database(stack.admin_database_url, name)
    return {
        "messages": MESSAGES,
        "ingested": ingested,
        "filed_into_threads": filed,
        "seconds_to_last_ingested": last_ingested - started,
        "seconds_to_last_thread_update": last_filed - started,
        "ingested_per_second": ingested / max(last_ingested - started, 1e-9),
        "filed_per_second": filed / max(last_filed - started, 1e-9),
    }


if __name__ == "__main__":
    for key, value in asyncio.run(run()).items():
        print(f"pipeline {key:38s} {value:12.1f}")
