"""Shared fixtures: one local stack per test session, started only when a test asks for it.

Scopes:

- ``local_stack`` (session): Tansu (or MAILSYNC_KAFKA_BOOTSTRAP), Postgres (embedded, or
  MAILSYNC_DATABASE_URL), Dovecot and SMTP submission, started on first use and stopped at
  the end of the session. Unit and contract tests never request it and never pay for it.
- ``kafka_bootstrap`` (session): the broker's bootstrap address; every contract topic exists.
- ``admin_database_url`` (session): DSN of the server's admin database (for tests that
  manage databases themselves).
- ``database_url`` (function): a fresh, empty database for each test, dropped afterwards
  (creating one takes ~25 ms).
- ``dovecot`` (session): the stack's ``Dovecot`` helper (add users, append, fetch, ...).
- ``mailbox_user`` (function): a new Dovecot user with a unique address for each test.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

if TYPE_CHECKING:
    # Imported inside the fixtures at run time: unit tests never load the stack's clients.
    from mailsync_devstack.dovecot import Dovecot, MailboxUser
    from mailsync_devstack.stack import LocalStack


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def local_stack() -> AsyncIterator[LocalStack]:
    """The session's local stack (started on first use, stopped at session end)."""
    from mailsync_devstack.stack import LocalStack

    async with LocalStack() as stack:
        yield stack


@pytest.fixture(scope="session")
def kafka_bootstrap(local_stack: LocalStack) -> str:
    """Bootstrap address of the session's Kafka-compatible broker."""
    return local_stack.kafka_bootstrap


@pytest.fixture(scope="session")
def admin_database_url(local_stack: LocalStack) -> str:
    """DSN of the session's Postgres admin database."""
    return local_stack.admin_database_url


@pytest_asyncio.fixture(loop_scope="session")
async def database_url(admin_database_url: str) -> AsyncIterator[str]:
    """A fresh database for this test only, dropped when the test ends."""
    from mailsync_devstack.postgres import create_database, drop_database

    name = f"test_{secrets.token_hex(6)}"
    url = await create_database(admin_database_url, name)
    try:
        yield url
    finally:
        await drop_database(admin_database_url, name)


@pytest.fixture(scope="session")
def dovecot(local_stack: LocalStack) -> Dovecot:
    """The session's private Dovecot with its helpers."""
    assert local_stack.dovecot is not None
    return local_stack.dovecot


@pytest.fixture
def mailbox_user(dovecot: Dovecot) -> MailboxUser:
    """A Dovecot user no other test uses (``user-<hex>@example.test``, random password)."""
    return dovecot.add_user(f"user-{secrets.token_hex(5)}@example.test")
