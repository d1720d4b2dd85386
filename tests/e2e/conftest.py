"""The whole system for end-to-end tests: the local stack plus the four services, each in
its own process exactly as production starts it (`python -m mailsync_<service>`, configured
only by environment variables). One fleet serves the e2e package and is stopped when it is
done (package scope), so its consumers do not answer commands that later tests publish;
tests isolate themselves by using their own company, account and mailbox.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from cryptography.fernet import Fernet

from mailsync_contracts.topics import ALL_TOPICS
from mailsync_devstack.postgres import create_database, drop_database
from mailsync_devstack.services import ServiceFleet
from mailsync_devstack.stack import LocalStack
from tests.support.topics import TopicWatcher, TopicWriter


@pytest.fixture(scope="package")
async def e2e_database(local_stack: LocalStack) -> AsyncIterator[str]:
    name = f"mailsync_e2e_{secrets.token_hex(4)}"
    dsn = await create_database(local_stack.admin_database_url, name)
    yield dsn
    await drop_database(local_stack.admin_database_url, name)


@pytest.fixture(scope="package")
def fleet_env(
    local_stack: LocalStack, e2e_database: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    raw_store = tmp_path_factory.mktemp("rawstore")
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **local_stack.env(),
        "MAILSYNC_DATABASE_URL": e2e_database,
        "MAILSYNC_RAW_STORE_URL": raw_store.as_uri(),
        "MAILSYNC_CREDENTIALS_KEY": Fernet.generate_key().decode(),
        "MAILSYNC_POLL_SECONDS": "0.5",
        "MAILSYNC_LEASE_RENEW_SECONDS": "0.5",
        "MAILSYNC_OUTBOX_POLL_SECONDS": "0.5",
        "MAILSYNC_LOG_LEVEL": "INFO",
    }


@pytest.fixture(scope="package")
async def fleet(
    fleet_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ServiceFleet]:
    fleet = ServiceFleet(fleet_env, tmp_path_factory.mktemp("service-logs"))
    await fleet.start()
    try:
        yield fleet
    finally:
        fleet.stop()


@pytest.fixture
async def watcher(local_stack: LocalStack, fleet: ServiceFleet) -> AsyncIterator[TopicWatcher]:
    watcher = TopicWatcher(local_stack.kafka_bootstrap, ALL_TOPICS)
    await watcher.start()
    yield watcher
    await watcher.stop()


@pytest.fixture
async def writer(local_stack: LocalStack) -> AsyncIterator[TopicWriter]:
    writer = TopicWriter(local_stack.kafka_bootstrap)
    await writer.start()
    yield writer
    await writer.stop()


@pytest.fixture
async def e2e_db(e2e_database: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the services' database, for asserting what they stored."""
    conn = await asyncpg.connect(e2e_database)
    yield conn
    await conn.close()


@pytest.fixture(scope="package")
def raw_store_dir(fleet_env: dict[str, str]) -> Path:
    return Path(fleet_env["MAILSYNC_RAW_STORE_URL"].removeprefix("file://"))
