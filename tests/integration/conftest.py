"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from mailsync_contracts.topics import ACCOUNTS, INGESTED
from mailsync_devstack.stack import LocalStack
from tests.support.topics import TopicWatcher, TopicWriter


@pytest_asyncio.fixture(loop_scope="session")
async def io(local_stack: LocalStack) -> AsyncIterator[tuple[TopicWriter, TopicWatcher]]:
    """A writer for commands and a watcher of `mail.accounts.v1` and `mail.ingested.v1`
    (from the end of each topic: earlier tests' records are not seen)."""
    writer = TopicWriter(local_stack.kafka_bootstrap)
    watcher = TopicWatcher(local_stack.kafka_bootstrap, [ACCOUNTS, INGESTED])
    await writer.start()
    await watcher.start()
    yield writer, watcher
    await watcher.stop()
    await writer.stop()
