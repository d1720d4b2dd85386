"""ingest as the benchmarks run it: its own process on the local stack, driven through Kafka.

``BenchIngest`` starts ``python -m mailsync_ingest`` (``ServiceProcess``) against a database
and a raw store of its own, with every ``MAILSYNC_*`` variable of the caller's environment
passed through, so a benchmark measures the service's defaults unless someone tunes a knob
(``MAILSYNC_POLL_SECONDS=1 python -m bench ...``). ``IngestedTail`` reads
``mail.ingested.v1`` from its end, stamping every record with the time it arrived here.
Nothing in this module asserts anything.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from cryptography.fernet import Fernet
from pydantic import SecretStr

from mailsync_contracts import ConnectAccount, ConnectAccountData, MailServer
from mailsync_contracts.topics import ACCOUNT_COMMANDS, INGESTED
from mailsync_devstack.dovecot import MailboxUser
from mailsync_devstack.postgres import create_database, drop_database
from mailsync_devstack.services import ServiceProcess
from mailsync_devstack.stack import LocalStack
from mailsync_devstack.state import (
    DATABASE_URL_VAR,
    KAFKA_BOOTSTRAP_VAR,
    RAW_STORE_URL_VAR,
    STATE_DIR_VAR,
)

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Set by the stack for every run, not tuning.
_STACK_VARIABLES = frozenset(
    {STATE_DIR_VAR, KAFKA_BOOTSTRAP_VAR, DATABASE_URL_VAR, RAW_STORE_URL_VAR}
)
_SECRET_WORDS = ("KEY", "SECRET", "PASSWORD", "TOKEN")


def raise_open_files_limit() -> int:
    """Raise RLIMIT_NOFILE's soft limit to the hard one (children inherit it); return it.

    A thousand IMAP connections take a thousand descriptors in ingest and more in Dovecot,
    beyond the common soft limit of 1024.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


def proc_status_kib(pid: int, field: str) -> int:
    """A ``kB`` field of /proc/<pid>/status (``VmRSS``, ``VmHWM``), 0 when gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far (fields 14 and 15 of /proc/<pid>/stat)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def connect_command(stack: LocalStack, user: MailboxUser, account_id: str) -> ConnectAccount:
    """Connect ``user``'s mailbox on the local Dovecot as a personal account of a user of its
    own (plan limits count per user, R1)."""
    return ConnectAccount.build(
        company_id="bench",
        source="bench",
        data=ConnectAccountData(
            account_id=account_id,
            user_id=f"user-{account_id}",
            email=user.email,
            imap=MailServer(host=stack.imap_host, port=stack.imap_port, security="plain"),
            username=user.email,
            password=SecretStr(user.password),
            account_type="personal",
            plan="ultimate",
        ),
    )


class BenchIngest:
    """One ingest process with its own database and raw store; ``async with`` it."""

    def __init__(self, stack: LocalStack) -> None:
        self._stack = stack
        self._database = f"bench_{secrets.token_hex(4)}"
        self._folder = Path(tempfile.mkdtemp(prefix="mailsync-bench-"))
        self._service: ServiceProcess | None = None
        self._producer: AIOKafkaProducer | None = None

    @property
    def tuned(self) -> dict[str, str]:
        """The MAILSYNC_* settings taken from the environment instead of the defaults (the
        stack's own variables and the benchmarks' sizes aside)."""
        return {
            key: value
            for key, value in os.environ.items()
            if key.startswith("MAILSYNC_")
            and not key.startswith("MAILSYNC_BENCH_")
            and key not in _STACK_VARIABLES
        }

    def describe_tuning(self) -> str:
        """``tuned`` for printing, secrets masked; empty when nothing is tuned."""
        return ", ".join(
            f"{key}={'***' if any(word in key for word in _SECRET_WORDS) else value}"
            for key, value in sorted(self.tuned.items())
        )

    @property
    def pid(self) -> int:
        if self._service is None or self._service.pid is None:
            raise RuntimeError("ingest is not running")
        return self._service.pid

    @property
    def running(self) -> bool:
        return self._service is not None and self._service.running

    def log_tail(self, lines: int = 15) -> str:
        """The end of the service's log, to show why a run fell short."""
        try:
            text = (self._folder / "ingest.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def __aenter__(self) -> BenchIngest:
        url = await create_database(self._stack.admin_database_url, self._database)
        env: Mapping[str, str] = {
            "PATH": os.environ.get("PATH", ""),
            "MAILSYNC_LOG_LEVEL": "WARNING",
            **self.tuned,
            **self._stack.env(),
            "MAILSYNC_DATABASE_URL": url,
            "MAILSYNC_RAW_STORE_URL": (self._folder / "raw").as_uri(),
            "MAILSYNC_CREDENTIALS_KEY": Fernet.generate_key().decode(),
            "MAILSYNC_CONSUMER_GROUP": f"bench-ingest-{secrets.token_hex(4)}",
        }
        self._service = ServiceProcess("ingest", env, self._folder)
        self._service.start()
        try:
            await self._service.wait_ready()
            self._producer = AIOKafkaProducer(bootstrap_servers=self._stack.kafka_bootstrap)
            await self._producer.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self, commands: list[ConnectAccount]) -> None:
        """Send the connect commands and wait until the broker has them all."""
        assert self._producer is not None
        sent = [
            await self._producer.send(
                ACCOUNT_COMMANDS, c.to_bytes(), key=c.data.account_id.encode()
            )
            for c in commands
        ]
        for delivery in sent:
            await delivery

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        if self._service is not None:
            self._service.stop()
            self._service = None
        try:
            await drop_database(self._stack.admin_database_url, self._database)
        finally:
            shutil.rmtree(self._folder, ignore_errors=True)


@dataclass(frozen=True, slots=True)
class IngestedRecord:
    """One record of mail.ingested.v1 as the benchmark sees it."""

    account_id: str
    type: str
    message_id: str | None
    arrived: float  # time.perf_counter() when the consumer handed it over


class IngestedTail:
    """mail.ingested.v1 read from the end as of ``open``; ``async with`` it."""

    def __init__(self, bootstrap: str) -> None:
        # A short fetch wait: the arrival stamp is part of what the latency benchmark measures.
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50
        )

    async def __aenter__(self) -> IngestedTail:
        await self._consumer.start()
        try:
            await self._consumer.topics()  # loads the cluster metadata
            partitions = [
                TopicPartition(INGESTED, p)
                for p in sorted(self._consumer.partitions_for_topic(INGESTED) or ())
            ]
            self._consumer.assign(partitions)
            await self._consumer.seek_to_end(*partitions)
            for partition in partitions:
                await self._consumer.position(partition)
        except BaseException:
            await self._consumer.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._consumer.stop()

    async def read(self, timeout_ms: int = 200) -> list[IngestedRecord]:
        """The records that arrived since the last call (waits up to ``timeout_ms`` for one)."""
        batches = await self._consumer.getmany(timeout_ms=timeout_ms)
        arrived = time.perf_counter()
        found = []
        for batch in batches.values():
            for record in batch:
                event = json.loads(record.value or b"{}")
                data = event.get("data") or {}
                found.append(
                    IngestedRecord(
                        account_id=(record.key or b"").decode(),
                        type=str(event.get("type")),
                        message_id=data.get("message_id"),
                        arrived=arrived,
                    )
                )
        return found
