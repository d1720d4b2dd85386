"""The first end-to-end path: a mail appended to a real Dovecot mailbox comes out of the
system as a thread linked to the CRM person who sent it — every service in its own process,
talking only over Kafka (ARCHITECTURE §6)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pydantic import SecretStr

from mailsync_contracts import (
    ConnectAccount,
    ConnectAccountData,
    CrmEntityUpserted,
    CrmEntityUpsertedData,
    CrmOrganization,
    CrmPerson,
    MailServer,
    MessageIngested,
)
from mailsync_contracts.topics import (
    ACCOUNT_COMMANDS,
    ACCOUNTS,
    CRM_ENTITIES,
    DEADLETTER,
    INGESTED,
    THREADS,
)
from mailsync_devstack.services import ServiceFleet
from mailsync_devstack.stack import LocalStack
from tests.support.topics import TopicWatcher, TopicWriter

pytestmark = pytest.mark.e2e


class Scenario:
    """One company with one salesperson, one customer person and a connected Dovecot box."""

    def __init__(self, stack: LocalStack) -> None:
        token = secrets.token_hex(4)
        self.company_id = f"company-{token}"
        self.user_id = f"user-{token}"
        self.account_id = f"account-{token}"
        self.person_id = f"person-{token}"
        self.org_id = f"org-{token}"
        self.customer = f"Anna.Berg@Customer-{token}.test"
        self.mailbox = f"dana-{token}@sales.test"
        self.stack = stack
        assert stack.dovecot is not None
        self.password = stack.dovecot.add_user(self.mailbox).password

    def crm_records(self) -> list[tuple[str, CrmEntityUpserted]]:
        org = CrmOrganization(
            id=self.org_id, name="Customer AB", domains=(f"customer-{self.company_id}.test",)
        )
        person = CrmPerson(
            id=self.person_id,
            name="Anna Berg",
            emails=(self.customer.lower(),),
            organization_id=self.org_id,
        )
        return [
            (f"organization:{self.org_id}", self._upsert(org)),
            (f"person:{self.person_id}", self._upsert(person)),
        ]

    def _upsert(self, entity: CrmPerson | CrmOrganization) -> CrmEntityUpserted:
        return CrmEntityUpserted.build(
            company_id=self.company_id, source="crm", data=CrmEntityUpsertedData(entity=entity)
        )

    def connect(self) -> ConnectAccount:
        return ConnectAccount.build(
            company_id=self.company_id,
            source="crm",
            data=ConnectAccountData(
                account_id=self.account_id,
                user_id=self.user_id,
                email=self.mailbox,
                imap=MailServer(
                    host=self.stack.imap_host, port=self.stack.imap_port, security="plain"
                ),
                smtp=MailServer(
                    host=self.stack.smtp_host, port=self.stack.smtp_port, security="plain"
                ),
                username=self.mailbox,
                password=SecretStr(self.password),
                account_type="personal",
                plan="premium",
            ),
        )

    def mail_from_customer(self, subject: str, reply_to: str | None = None) -> tuple[str, bytes]:
        message = EmailMessage()
        message_id = make_msgid(domain="customer.test")
        message["Message-ID"] = message_id
        message["From"] = f"Anna Berg <{self.customer}>"
        message["To"] = f"Dana <{self.mailbox}>"
        message["Subject"] = subject
        message["Date"] = format_datetime(datetime.now(UTC))
        if reply_to:
            message["In-Reply-To"] = reply_to
            message["References"] = reply_to
        # Longer than a snippet, so the tail can only be found in the raw store.
        filler = "We compared the offers in detail. " * 10
        message.set_content(f"Hello Dana, about {subject}. {filler}Regards, Anna")
        return message_id, message.as_bytes()

    def append(self, raw: bytes) -> int:
        assert self.stack.dovecot is not None
        return self.stack.dovecot.append(self.mailbox, "INBOX", raw)


async def _wait_for_person(db: asyncpg.Connection, company_id: str, person_id: str) -> None:
    """The CRM record and the mail travel on different topics; make the order deterministic."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if await db.fetchval(
            "SELECT true FROM linker.crm_entities WHERE company_id = $1 AND entity_id = $2",
            company_id,
            person_id,
        ):
            return
        await asyncio.sleep(0.2)
    raise AssertionError("the linker never stored the CRM person")


async def _connect_and_seed(
    s: Scenario, writer: TopicWriter, watcher: TopicWatcher, db: asyncpg.Connection
) -> None:
    for key, record in s.crm_records():
        await writer.send(CRM_ENTITIES, key, record)
    await writer.send(ACCOUNT_COMMANDS, s.account_id, s.connect())
    connected = await watcher.wait_for(
        ACCOUNTS, lambda e: e.type == "mail.account.connected" and e.data.account_id == s.account_id
    )
    assert connected.data.is_default, "R3: the first connected account becomes the default"
    await _wait_for_person(db, s.company_id, s.person_id)


def _thread_for(s: Scenario, count: int = 1) -> Any:
    return lambda e: (
        e.type == "mail.thread.updated"
        and e.data.account_id == s.account_id
        and e.data.message_count == count
    )


async def test_r12_a_mail_appended_in_dovecot_comes_out_as_a_thread_linked_to_its_sender(
    local_stack: LocalStack,
    fleet: ServiceFleet,
    writer: TopicWriter,
    watcher: TopicWatcher,
    e2e_db: asyncpg.Connection,
    raw_store_dir: Path,
) -> None:
    s = Scenario(local_stack)
    await _connect_and_seed(s, writer, watcher, e2e_db)
    message_id, raw = s.mail_from_customer("Pricing for 40 seats")
    s.append(raw)

    ingested: MessageIngested = await watcher.wait_for(
        INGESTED, lambda e: e.type == "mail.message.ingested" and e.data.account_id == s.account_id
    )
    assert ingested.data.message_id == message_id.strip("<>")
    assert ingested.data.from_ is not None
    assert ingested.data.from_.match_key == s.customer.lower()
    # Claim-check: the record carries the raw message's address, the store holds its bytes.
    record = next(r for r in watcher.records if r.topic == INGESTED and b"Pricing" in r.value)
    assert b"Regards, Anna" not in record.value
    sha = ingested.data.raw.sha256
    stored = (raw_store_dir / sha[:2] / sha[2:4] / sha).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == sha
    assert stored.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")

    thread = await watcher.wait_for(THREADS, _thread_for(s))
    assert thread.company_id == s.company_id
    assert thread.data.subject == "Pricing for 40 seats"
    assert {(link.kind, link.entity_id) for link in thread.data.links} == {
        ("person", s.person_id),
        ("organization", s.org_id),
    }
    participants = {p.match_key for p in thread.data.participants}
    assert participants == {s.customer.lower()}, (
        "R12: the mailbox's own address is not a participant"
    )
    # One trace from ingest through the linker: the W3C traceparent in the Kafka headers.
    thread_record = next(
        r for r in watcher.records if r.topic == THREADS and s.account_id.encode() in r.value
    )
    trace_of_thread = thread_record.headers["traceparent"].split(b"-")[1]
    assert trace_of_thread == record.headers["traceparent"].split(b"-")[1]


async def test_garbage_on_the_ingested_topic_is_dead_lettered_and_the_next_record_still_processed(
    local_stack: LocalStack,
    fleet: ServiceFleet,
    writer: TopicWriter,
    watcher: TopicWatcher,
    e2e_db: asyncpg.Connection,
) -> None:
    s = Scenario(local_stack)
    await _connect_and_seed(s, writer, watcher, e2e_db)
    await writer.send_raw(INGESTED, s.account_id, b"\x00not json at all " + s.account_id.encode())
    _, raw = s.mail_from_customer("After the garbage")
    s.append(raw)

    letter = await watcher.wait_for(
        DEADLETTER,
        lambda e: s.account_id in (e.data.value_text or "") and e.data.service == "linker",
    )
    assert letter.data.original_topic == INGESTED
    assert letter.data.error_kind == "not_json"
    assert letter.data.original_value() == b"\x00not json at all " + s.account_id.encode()
    thread = await watcher.wait_for(THREADS, _thread_for(s))
    assert thread.data.subject == "After the garbage"
    metrics = fleet["linker"].get_text("/metrics")
    assert (
        'mailsync_dead_letters_total{kind="not_json",service="linker",topic="mail.ingested.v1"}'
        in metrics
    )


async def test_killing_and_restarting_the_linker_between_two_messages_loses_and_duplicates_nothing(
    local_stack: LocalStack,
    fleet: ServiceFleet,
    writer: TopicWriter,
    watcher: TopicWatcher,
    e2e_db: asyncpg.Connection,
) -> None:
    s = Scenario(local_stack)
    await _connect_and_seed(s, writer, watcher, e2e_db)
    first_id, first = s.mail_from_customer("Contract draft")
    s.append(first)
    first_thread = await watcher.wait_for(THREADS, _thread_for(s, 1))

    linker = fleet["linker"]
    linker.kill()
    _, second = s.mail_from_customer("Re: Contract draft", reply_to=first_id)
    s.append(second)
    await watcher.wait_for(
        INGESTED, lambda e: e.data.account_id == s.account_id and e.data.subject.startswith("Re:")
    )
    await watcher.collect(2.0)
    assert not any(
        e.type == "mail.thread.updated"
        and e.data.account_id == s.account_id
        and e.data.message_count == 2
        for e in watcher.events(THREADS)
    ), "with the linker down nothing can file the reply"

    linker.start()
    await linker.wait_ready()
    second_thread = await watcher.wait_for(THREADS, _thread_for(s, 2), timeout=90)
    assert second_thread.data.thread_id == first_thread.data.thread_id, (
        "R11: the reply joins its thread"
    )

    stored = await e2e_db.fetch(
        "SELECT message_key FROM linker.thread_messages WHERE account_id = $1", s.account_id
    )
    assert len(stored) == 2
    threads = await e2e_db.fetchval(
        "SELECT count(*) FROM linker.threads WHERE account_id = $1", s.account_id
    )
    assert threads == 1


async def test_every_service_is_a_ready_process_with_health_and_metrics(
    fleet: ServiceFleet,
) -> None:
    for name, service in fleet.services.items():
        assert service.running, f"mailsync-{name} is not running"
        assert service.get_json("/healthz") == {"status": "ok", "service": name}
        ready = service.get_json("/readyz")
        assert ready == {"status": "ready", "checks": {"database": True, "broker": True}}
        metrics = service.get_text("/metrics")
        assert "process_cpu_seconds_total" in metrics
        assert "# TYPE mailsync_dead_letters_total counter" in metrics
