"""``make run``: the whole system on one machine, fed a demo CRM and a demo mailbox, showing
live how the mail is synced and filed against the CRM (ARCHITECTURE §5).

``python -m mailsync_devstack.demo`` starts the local stack (broker, Postgres, Dovecot, SMTP)
and the four services as real processes, publishes the demo CRM on ``crm.entities.v1``,
appends the demo mailbox to Dovecot, connects it with ``mail.account.connect``, and prints
every account, ingest, thread and dead-letter event as it happens, then a summary counted per
folder. It keeps running (append more mail: INBOX is pushed via IDLE, the other synced folders
are polled every second; read ``/metrics``) until Ctrl-C or SIGTERM, then stops everything.
With ``--once`` it exits as soon as the initial sync is done (``mail.account.synced``) and the
synced folders have come out as threads: 0 when every synced message was filed, 1 with the
reason otherwise (timeout, dead letters, rejected account).

Invariants:

- Repeatable: the demo database is dropped and created again on every run; the broker is
  memory-only and Dovecot lives in the stack's per-run folder, so every run starts empty.
  Only the credentials key (``<state>/demo/credentials.key``) and the raw store persist.
- Honest: the demo expects exactly what ingest's default sync scope ("all": every selectable
  folder but Trash, Junk and Drafts, decided by ingest's own ``folders_to_sync``) covers of the
  demo mailbox, each message once however many synced folders hold it, and says so; mail in
  folders outside the scope is not waited for.
- It reads the topics the way a CRM consumer would, without a consumer group, starting at
  the end of each partition before it publishes anything, so it sees only this run's events
  and never disturbs the services' own groups.
- Every port it prints belongs to a server it started, and it checks after stopping that
  none of them still accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any, cast

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from cryptography.fernet import Fernet
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mailsync_contracts import (
    AccountConnected,
    AccountReauthRequired,
    AccountRejected,
    AccountSynced,
    AccountSyncProgressed,
    ConnectAccount,
    ConnectAccountData,
    ContractViolation,
    DeadLetterRecorded,
    EmailAddress,
    EntityLink,
    MailServer,
    MessageExpunged,
    MessageIngested,
    MessageScreened,
    SyncScope,
    ThreadLinkChoiceNeeded,
    ThreadUpdated,
    ThreadUpdatedData,
    decode,
)
from mailsync_contracts.topics import (
    ACCOUNT_COMMANDS,
    ACCOUNTS,
    CRM_ENTITIES,
    DEADLETTER,
    INGESTED,
    THREADS,
)
from mailsync_devstack.children import StartupError
from mailsync_devstack.demo_data import (
    DEMO_COMPANY_ID,
    DEMO_OWNER_EMAIL,
    DEMO_OWNER_USER_ID,
    DemoMessage,
    demo_crm_entities,
    demo_mailbox,
    record_key,
)
from mailsync_devstack.dovecot import SPECIAL_USE_MAILBOXES, crlf
from mailsync_devstack.ports import LOOPBACK
from mailsync_devstack.postgres import create_database
from mailsync_devstack.services import ServiceFleet
from mailsync_devstack.stack import LocalStack
from mailsync_ingest.folders import INBOX, Folder, folder_role, folders_to_sync

DEMO_DATABASE = "mailsync_demo"
DEMO_ACCOUNT_ID = "account-demo-dana"
# A fixed password so a mail client can log in to the demo mailbox (loopback only).
DEMO_PASSWORD = "demo"
ONCE_TIMEOUT_SECONDS = 120.0
CRM_TIMEOUT_SECONDS = 30.0
WATCHED_TOPICS = (ACCOUNTS, INGESTED, THREADS, DEADLETTER)
_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

# The services poll often so the demo shows mail "within seconds"; production uses defaults.
SERVICE_TUNING = {
    "MAILSYNC_POLL_SECONDS": "1",
    "MAILSYNC_LEASE_RENEW_SECONDS": "0.5",
    "MAILSYNC_OUTBOX_POLL_SECONDS": "0.5",
    "MAILSYNC_LOG_LEVEL": "INFO",
}


class DemoFailed(Exception):
    """The demo could not show what it promised; the message says why, for the user."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    once: bool
    timeout: float
    database: str


def _database_name(text: str) -> str:
    if not _DATABASE_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(f"not a plain lowercase identifier: {text!r}")
    return text


def parse_arguments(argv: Sequence[str] | None = None) -> DemoOptions:
    parser = argparse.ArgumentParser(
        prog="python -m mailsync_devstack.demo",
        description="Run mailsync locally with a demo mailbox and demo CRM data.",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="exit once the synced folders have come out as threads (0) or after --timeout (1)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=ONCE_TIMEOUT_SECONDS,
        help="seconds --once waits for the initial sync after connecting (default %(default).0f)",
    )
    parser.add_argument(
        "--database",
        type=_database_name,
        default=DEMO_DATABASE,
        help="database the services use, dropped and created afresh (default %(default)s)",
    )
    arguments = parser.parse_args(argv)
    return DemoOptions(
        once=bool(arguments.once), timeout=float(arguments.timeout), database=arguments.database
    )


class CrmDirectory:
    """Names of the demo CRM's records, so a link reads "Sarah O'Connor", not "person-1"."""

    def __init__(self, envelopes: Iterable[Mapping[str, Any]]) -> None:
        self._names: dict[tuple[str, str], str] = {}
        for envelope in envelopes:
            entity = envelope["data"]["entity"]
            name = entity.get("name") or entity.get("title") or entity["id"]
            self._names[(entity["kind"], entity["id"])] = str(name)

    def name(self, kind: str, entity_id: str) -> str:
        return self._names.get((kind, entity_id), f"{kind} {entity_id}")

    def describe(self, links: Iterable[EntityLink]) -> str:
        """ "Sarah O'Connor (person), Northwind Freight Ltd (organization)"; "" for none."""
        return ", ".join(f"{self.name(link.kind, link.entity_id)} ({link.kind})" for link in links)


def _message_key(event: MessageIngested) -> str:
    # The linker files a message once per account by Message-ID, or by content without one;
    # counting the same way tells how many messages the threads must add up to.
    data = event.data
    return f"mid:{data.message_id.lower()}" if data.message_id else f"sha256:{data.raw.sha256}"


def demo_folders(mailbox: Iterable[DemoMessage]) -> list[Folder]:
    """The demo user's folders as ingest reads them from Dovecot's LIST: INBOX, the SPECIAL-USE
    mailboxes Dovecot gives every user, and any other folder the demo mailbox fills."""
    special_use = {name: use.lower() for use, name in SPECIAL_USE_MAILBOXES.items()}
    names = dict.fromkeys([INBOX, *SPECIAL_USE_MAILBOXES.values(), *(m.folder for m in mailbox)])
    folders = []
    for name in names:
        attributes = frozenset({special_use[name]} if name in special_use else ())
        role = folder_role(name, attributes, delimiter="/")
        folders.append(Folder(name, name, "/", attributes, role))
    return folders


@dataclass(frozen=True, slots=True)
class SyncExpectation:
    """What ingest's default sync scope makes of the demo mailbox."""

    synced_folders: tuple[str, ...]  # in the order ingest syncs them
    unsynced_folders: tuple[str, ...]
    appended: dict[str, int]  # demo messages per synced folder, as appended
    messages: int  # distinct messages among them: what ingest publishes

    @classmethod
    def of(cls, mailbox: Sequence[DemoMessage]) -> SyncExpectation:
        folders = demo_folders(mailbox)
        synced = tuple(folder.name for folder in folders_to_sync(folders, SyncScope()))
        unsynced = tuple(folder.name for folder in folders if folder.name not in synced)
        in_scope = [message for message in mailbox if message.folder in synced]
        appended = {name: sum(1 for m in in_scope if m.folder == name) for name in synced}
        distinct = {_identity(message.raw) for message in in_scope}
        return cls(synced, unsynced, appended, len(distinct))


def _identity(raw: bytes) -> tuple[str, int] | bytes:
    """How ingest tells a copy in another folder from a new message: (Message-ID, size), or the
    content without a Message-ID. Dovecot stores (and reports the size of) the CRLF form."""
    stored = crlf(raw)
    found = BytesHeaderParser().parsebytes(stored).get("Message-ID")
    return (str(found).strip(), len(stored)) if found else stored


@dataclass
class DemoProgress:
    """What came out of the system for the demo account so far."""

    account_id: str
    expected_messages: int
    synced_folders: tuple[str, ...]
    connected: bool = False
    initial_sync_done: bool = False
    ingested: set[tuple[str, int, int]] = field(default_factory=set)
    message_keys: set[str] = field(default_factory=set)
    threads: dict[str, ThreadUpdatedData] = field(default_factory=dict)
    dead_letters: list[DeadLetterRecorded] = field(default_factory=list)

    def record_ingested(self, event: MessageIngested) -> None:
        data = event.data
        self.ingested.add((data.folder, data.uidvalidity, data.uid))
        self.message_keys.add(_message_key(event))

    def ingested_by_folder(self) -> dict[str, int]:
        """Messages ingested per folder: the synced ones in sync order (0 included), then any
        other folder a message came from."""
        counts = dict.fromkeys(self.synced_folders, 0)
        for folder, _, _ in self.ingested:
            counts[folder] = counts.get(folder, 0) + 1
        return counts

    def describe_ingested(self) -> str:
        """ "38 messages ingested (INBOX 26, Sent 10, Archive 2)"."""
        folders = ", ".join(f"{name} {n}" for name, n in self.ingested_by_folder().items())
        return f"{len(self.ingested)} messages ingested ({folders})"

    @property
    def filed_messages(self) -> int:
        return sum(thread.message_count for thread in self.threads.values())

    @property
    def dead_lettered_messages(self) -> int:
        return sum(1 for letter in self.dead_letters if letter.data.original_topic == INGESTED)

    @property
    def linked_to_person(self) -> int:
        return sum(
            1
            for thread in self.threads.values()
            if any(link.kind == "person" for link in thread.links)
        )

    @property
    def settled(self) -> bool:
        """The initial sync announced done, every expected message ingested, and each one filed
        into a thread or dead-lettered."""
        return (
            self.initial_sync_done
            and len(self.ingested) >= self.expected_messages
            and self.filed_messages + self.dead_lettered_messages >= len(self.message_keys)
        )

    def summary(self, settled_after: float | None, service_errors: int = 0) -> Text:
        errors = (f" · {service_errors} errors in the service logs", "bold red")
        return Text.assemble(
            ("Summary: ", "bold"),
            (self.describe_ingested(), "bold"),
            (
                f" (of {self.expected_messages} expected)"
                if len(self.ingested) < self.expected_messages
                else ""
            ),
            f" · {len(self.threads)} threads",
            (f" · {self.linked_to_person} threads linked to a person", "bold green"),
            (
                f" · {len(self.dead_letters)} dead letters",
                "bold red" if self.dead_letters else "",
            ),
            errors if service_errors else "",
            (
                f" · all in {settled_after:.1f} s after connecting"
                if settled_after is not None
                else (" · still incomplete", "bold yellow")
            ),
        )


class TopicReader:
    """Reads topics without a consumer group: every partition assigned, from its end."""

    def __init__(self, bootstrap: str, topics: Sequence[str]) -> None:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self._topics = topics

    async def start(self) -> None:
        await self._consumer.start()
        await self._consumer.topics()  # a fresh metadata fetch, so every partition is known
        partitions = [
            TopicPartition(topic, number)
            for topic in self._topics
            for number in sorted(self._consumer.partitions_for_topic(topic) or ())
        ]
        self._consumer.assign(partitions)
        await self._consumer.seek_to_end(*partitions)
        # Resolve the end offsets now: whatever is published after start() is read.
        for partition in partitions:
            await self._consumer.position(partition)

    async def stop(self) -> None:
        await self._consumer.stop()

    async def read(self, timeout: float) -> list[tuple[str, bytes]]:
        """(topic, value) of the records that arrive within ``timeout`` seconds, in order."""
        batches = cast(
            "dict[Any, list[Any]]", await self._consumer.getmany(timeout_ms=int(timeout * 1000))
        )
        return [
            (str(record.topic), bytes(record.value or b""))
            for batch in batches.values()
            for record in batch
        ]


class ServiceErrors:
    """Error records the services log, each distinct one shown once.

    A sync that keeps failing shows up nowhere on the topics (nothing is published), so the
    demo reads the services' JSON logs to say why nothing arrives instead of going quiet.
    """

    def __init__(self, fleet: ServiceFleet) -> None:
        self._logs = {name: service.log_path for name, service in fleet.services.items()}
        self._offsets = dict.fromkeys(self._logs, 0)
        self._seen: set[tuple[str, str, str]] = set()
        self.count = 0

    def new(self) -> list[tuple[str, str, str]]:
        """(service, message, cause) of error records not shown before."""
        found = []
        for name, path in self._logs.items():
            for record in self._read_records(name, path):
                if record.get("level") not in ("error", "critical"):
                    continue
                self.count += 1
                cause = str(record.get("exception") or "").strip().splitlines()[-1:]
                entry = (name, str(record.get("message", "")), "".join(cause))
                if entry not in self._seen:
                    self._seen.add(entry)
                    found.append(entry)
        return found

    def _read_records(self, name: str, path: Path) -> list[dict[str, Any]]:
        try:
            with path.open("rb") as log:
                log.seek(self._offsets[name])
                chunk = log.read()
        except OSError:
            return []
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offsets[name] += len(complete)
        records = []
        for line in complete.splitlines():
            with contextlib.suppress(ValueError):
                parsed = json.loads(line)
                if isinstance(parsed, dict):
                    records.append(parsed)
        return records


class DemoView:
    """Turns events into terminal lines; the only place that knows how the demo looks."""

    def __init__(self, console: Console, crm: CrmDirectory) -> None:
        self.console = console
        self.crm = crm
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def line(self, label: str, style: str, *parts: str | tuple[str, str]) -> None:
        prefix = Text.assemble((f"{self.elapsed():6.1f}s ", "dim"), (f"{label:<12}", style))
        self.console.print(Text.assemble(prefix, *parts), soft_wrap=True)

    def connected(self, event: AccountConnected) -> None:
        data = event.data
        imap = f" · IMAP {data.imap.host}:{data.imap.port}" if data.imap else ""
        default = " (default account)" if data.is_default else ""
        self.line("connected", "bold green", f"{data.email}{default}{imap}")

    def ingested(self, event: MessageIngested) -> None:
        data = event.data
        problem: tuple[str, str] = (f"  [stored raw: {data.parse_error}]", "yellow")
        self.line(
            "ingested",
            "cyan",
            (f"{data.folder:<7} ", "dim"),
            (f"{_sender(data.from_):<48} ", ""),
            (data.subject or "(no subject)", "bold"),
            problem if data.parse_error else "",
        )

    def thread(self, event: ThreadUpdated) -> None:
        data = event.data
        linked = self.crm.describe(data.links)
        count = f"{data.message_count} message{'s' if data.message_count != 1 else ''}"
        self.line(
            "thread",
            "magenta",
            (data.subject or "(no subject)", "bold"),
            f" · {count} · ",
            (f"linked: {linked}", "green") if linked else ("not linked to the CRM", "dim"),
        )

    def link_choice(self, event: ThreadLinkChoiceNeeded) -> None:
        candidates = ", ".join(
            f"{candidate.title or self.crm.name(candidate.kind, candidate.entity_id)}"
            f" ({candidate.kind})"
            for candidate in event.data.candidates
        )
        self.line(
            "link choice", "yellow", f"thread {event.data.thread_id}: pick one of ", candidates
        )

    def dead_letter(self, event: DeadLetterRecorded) -> None:
        data = event.data
        self.line(
            "DEAD LETTER",
            "bold red",
            f"{data.service} set aside a record of {data.original_topic} ",
            (f"({data.error_kind}): {data.error_message}", "red"),
        )

    def service_error(self, service: str, message: str, cause: str) -> None:
        self.line(
            "SERVICE ERR",
            "bold red",
            f"mailsync-{service}: {message}",
            (f" ({cause})" if cause else "", "red"),
            (" (shown once; see its log)", "dim"),
        )

    def note(self, label: str, style: str, text: str) -> None:
        self.line(label, style, text)


def _listed(names: Sequence[str]) -> str:
    """ "INBOX, Sent and Archive"."""
    if len(names) <= 1:
        return "".join(names) or "no folder"
    return f"{', '.join(names[:-1])} and {names[-1]}"


def _sender(address: EmailAddress | None) -> str:
    if address is None:
        return "(no sender)"
    return f"{address.name} <{address.email}>" if address.name else address.email


def _credentials_key(folder: Path) -> str:
    """The demo's Fernet key, kept so a restarted service can still open stored passwords."""
    path = folder / "credentials.key"
    if path.exists():
        return path.read_text().strip()
    key = Fernet.generate_key().decode()
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


def _fresh_log_dir(folder: Path) -> Path:
    """``<folder>/logs`` holding this run's logs only (services append to their log file)."""
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.glob("*.log"):
        old.unlink()
    return logs


def _accepting(ports: Iterable[int]) -> list[int]:
    """The ports on loopback that still accept a TCP connection."""
    still_open = []
    for port in ports:
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=1):
            still_open.append(port)
    return still_open


def _append_mailbox(stack: LocalStack, messages: Sequence[DemoMessage]) -> None:
    assert stack.dovecot is not None
    stack.dovecot.add_user(DEMO_OWNER_EMAIL, DEMO_PASSWORD)
    for message in messages:
        stack.dovecot.append(DEMO_OWNER_EMAIL, message.folder, message.raw, message.flags)


def _connect_command(stack: LocalStack) -> ConnectAccount:
    return ConnectAccount.build(
        company_id=DEMO_COMPANY_ID,
        source="crm",
        data=ConnectAccountData(
            account_id=DEMO_ACCOUNT_ID,
            user_id=DEMO_OWNER_USER_ID,
            email=DEMO_OWNER_EMAIL,
            display_name="Dana Whitfield",
            imap=MailServer(host=stack.imap_host, port=stack.imap_port, security="plain"),
            smtp=MailServer(host=stack.smtp_host, port=stack.smtp_port, security="plain"),
            username=DEMO_OWNER_EMAIL,
            password=SecretStr(DEMO_PASSWORD),
            account_type="personal",
            plan="ultimate",
        ),
    )


async def _wait_for_crm(database_url: str, expected: int) -> None:
    """Wait until the linker holds the whole demo CRM, so the first mail already links.

    CRM records and mail travel on different topics with no order between them; the demo
    looks at the linker's table (as the e2e tests do) instead of hoping the CRM wins the race.
    """
    deadline = time.monotonic() + CRM_TIMEOUT_SECONDS
    held = 0
    while time.monotonic() < deadline:
        connection = await asyncpg.connect(database_url)
        try:
            held = int(
                await connection.fetchval(
                    "SELECT count(*) FROM linker.crm_entities WHERE company_id = $1",
                    DEMO_COMPANY_ID,
                )
                or 0
            )
        except asyncpg.UndefinedTableError:
            held = 0
        finally:
            await connection.close()
        if held >= expected:
            return
        await asyncio.sleep(0.2)
    raise DemoFailed(
        f"the linker stored {held} of the {expected} demo CRM records within "
        f"{CRM_TIMEOUT_SECONDS:.0f}s; see its log"
    )


def _stack_table(stack: LocalStack, fleet: ServiceFleet, database: str) -> Table:
    table = Table(title="mailsync local stack", title_justify="left", expand=False)
    table.add_column("component", style="bold")
    table.add_column("address")
    table.add_column("log / notes", overflow="fold")
    run_folder = stack.run_folder.path if stack.run_folder is not None else stack.state_dir
    if stack.broker_port is not None:
        table.add_row("Kafka (Tansu)", stack.kafka_bootstrap, str(run_folder / "tansu.log"))
    else:
        table.add_row("Kafka", "external", "MAILSYNC_KAFKA_BOOTSTRAP")
    if stack.postgres_port is not None:
        table.add_row(
            "Postgres (embedded)",
            f"{LOOPBACK}:{stack.postgres_port}",
            f"database {database}, cluster in {stack.state_dir / 'postgres'}",
        )
    else:
        table.add_row("Postgres", "external", f"MAILSYNC_DATABASE_URL, database {database}")
    assert stack.dovecot is not None
    table.add_row(
        "Dovecot IMAP",
        f"{stack.imap_host}:{stack.imap_port}",
        f"{stack.dovecot.log_path} (LMTP port {stack.lmtp_port})",
    )
    table.add_row("SMTP submission", f"{stack.smtp_host}:{stack.smtp_port}", "delivers to Dovecot")
    for name, service in fleet.services.items():
        table.add_row(f"mailsync-{name}", service.url, str(service.log_path))
    return table


async def _publish_crm(producer: AIOKafkaProducer, envelopes: Sequence[Mapping[str, Any]]) -> None:
    for envelope in envelopes:
        value = json.dumps(envelope, ensure_ascii=False).encode()
        await producer.send_and_wait(CRM_ENTITIES, value, key=record_key(envelope).encode())


class DemoRun:
    """One run of the demo against a started stack and fleet."""

    def __init__(
        self,
        options: DemoOptions,
        console: Console,
        stack: LocalStack,
        fleet: ServiceFleet,
        database_url: str,
    ) -> None:
        self.options = options
        self.console = console
        self.stack = stack
        self.fleet = fleet
        self.database_url = database_url
        self.envelopes = demo_crm_entities(DEMO_COMPANY_ID)
        self.mailbox = demo_mailbox(DEMO_OWNER_EMAIL, datetime.now(UTC))
        self.expectation = SyncExpectation.of(self.mailbox)
        self.progress = DemoProgress(
            DEMO_ACCOUNT_ID, self.expectation.messages, self.expectation.synced_folders
        )
        self.view = DemoView(console, CrmDirectory(self.envelopes))
        self.errors = ServiceErrors(fleet)
        self.settled_after: float | None = None

    async def run(self) -> int:
        reader = TopicReader(self.stack.kafka_bootstrap, WATCHED_TOPICS)
        await reader.start()
        try:
            await self._seed()
            return await self._watch(reader)
        finally:
            await reader.stop()

    async def _seed(self) -> None:
        console = self.console
        producer = AIOKafkaProducer(bootstrap_servers=self.stack.kafka_bootstrap)
        await producer.start()
        try:
            await _publish_crm(producer, self.envelopes)
            console.print(
                f"Published {len(self.envelopes)} demo CRM records on {CRM_ENTITIES} "
                f"(company {DEMO_COMPANY_ID}); waiting for the linker to hold them…"
            )
            await _wait_for_crm(self.database_url, len(self.envelopes))
            await asyncio.to_thread(_append_mailbox, self.stack, self.mailbox)
            self._describe_mailbox()
            self.view.started = time.monotonic()
            command = _connect_command(self.stack)
            await producer.send_and_wait(
                ACCOUNT_COMMANDS, command.to_bytes(), key=DEMO_ACCOUNT_ID.encode()
            )
        finally:
            await producer.stop()
        console.print(
            f"Published mail.account.connect for {DEMO_OWNER_EMAIL}; events as they happen "
            "(seconds since connecting):",
            style="bold",
        )

    def _describe_mailbox(self) -> None:
        folders: dict[str, int] = {}
        for message in self.mailbox:
            folders[message.folder] = folders.get(message.folder, 0) + 1
        counts = ", ".join(f"{folder} {count}" for folder, count in folders.items())
        self.console.print(
            f"Appended the demo mailbox of {DEMO_OWNER_EMAIL} to Dovecot: "
            f"{len(self.mailbox)} messages ({counts})."
        )
        expectation = self.expectation
        appended = ", ".join(f"{name} {n}" for name, n in expectation.appended.items())
        self.console.print(
            f"Ingest syncs every folder but {_listed(expectation.unsynced_folders)} (sync scope "
            f'"all"): {_listed(expectation.synced_folders)}, in that order, newest first. Expect '
            f"{expectation.messages} messages ({appended}) to be ingested and filed as threads "
            "(a copy in another synced folder counts once), then mail.account.synced.",
            style="yellow",
        )

    async def _watch(self, reader: TopicReader) -> int:
        deadline = time.monotonic() + self.options.timeout
        reported = False
        try:
            while True:
                for topic, value in await reader.read(0.5):
                    self._show(topic, value)
                self._check_services()
                for service, message, cause in self.errors.new():
                    self.view.service_error(service, message, cause)
                if not reported and self.progress.settled:
                    reported = True
                    self.settled_after = self.view.elapsed()
                    self._report()
                    if self.options.once:
                        return self._verdict()
                    self._explain_running()
                if self.options.once and not reported and time.monotonic() > deadline:
                    progress = self.progress
                    raise DemoFailed(
                        f"after {self.options.timeout:.0f}s: {progress.describe_ingested()} of "
                        f"{progress.expected_messages} expected, {progress.filed_messages} filed "
                        "into threads"
                        + ("" if progress.initial_sync_done else ", no mail.account.synced yet")
                    )
        finally:
            if not (self.options.once and reported):
                self.console.print(
                    self.progress.summary(self.settled_after, self.errors.count), soft_wrap=True
                )

    def _show(self, topic: str, value: bytes) -> None:
        try:
            event = decode(topic, value)
        except ContractViolation as error:
            self.view.note("unreadable", "yellow", f"a record on {topic}: {error}")
            return
        account_id = getattr(event.data, "account_id", DEMO_ACCOUNT_ID)
        if account_id != DEMO_ACCOUNT_ID:
            return
        match event:
            case AccountConnected():
                self.progress.connected = True
                self.view.connected(event)
            case AccountRejected():
                self.view.note("rejected", "bold red", event.data.reason)
                if self.options.once:
                    raise DemoFailed(f"the demo account was rejected: {event.data.reason}")
            case AccountReauthRequired():
                self.view.note("reauth", "bold red", event.data.reason)
                if self.options.once:
                    raise DemoFailed(f"Dovecot refused the demo login: {event.data.reason}")
            case AccountSyncProgressed():
                data = event.data
                self.view.note("sync", "dim", f"{data.folder}: {data.done} of {data.total}")
            case AccountSynced():
                self.progress.initial_sync_done = True
                self.view.note(
                    "synced",
                    "green",
                    f"initial sync of {_listed(self.progress.synced_folders)} finished",
                )
            case MessageIngested():
                self.progress.record_ingested(event)
                self.view.ingested(event)
            case MessageScreened():
                self.view.note("screened", "yellow", f"{event.data.sender}: {event.data.reason}")
            case MessageExpunged():
                self.view.note("expunged", "yellow", f"{event.data.folder} uid {event.data.uid}")
            case ThreadUpdated():
                self.progress.threads[event.data.thread_id] = event.data
                self.view.thread(event)
            case ThreadLinkChoiceNeeded():
                self.view.link_choice(event)
            case DeadLetterRecorded():
                self.progress.dead_letters.append(event)
                self.view.dead_letter(event)
            case _:
                self.view.note("event", "dim", event.type)

    def _check_services(self) -> None:
        for name, service in self.fleet.services.items():
            if not service.running:
                raise DemoFailed(f"mailsync-{name} stopped unexpectedly; see {service.log_path}")

    def _report(self) -> None:
        progress = self.progress
        table = Table(title="threads", title_justify="left")
        table.add_column("subject", overflow="fold")
        table.add_column("messages", justify="right")
        table.add_column("linked to", overflow="fold")
        ordered = sorted(
            progress.threads.values(),
            key=lambda t: t.last_message_at or datetime.min.replace(tzinfo=UTC),
            reverse=True,
        )
        for thread in ordered:
            linked = self.view.crm.describe(thread.links)
            table.add_row(
                Text(thread.subject or "(no subject)"),
                str(thread.message_count),
                Text(linked) if linked else Text("-", style="dim"),
            )
        self.console.print(table)
        self.console.print(progress.summary(self.settled_after, self.errors.count), soft_wrap=True)

    def _verdict(self) -> int:
        lost = self.progress.dead_lettered_messages
        if lost:
            self.console.print(
                f"{lost} message(s) were dead-lettered instead of filed (see above).",
                style="bold red",
            )
            return 1
        return 0

    def _explain_running(self) -> None:
        console = self.console
        synced = self.progress.synced_folders
        poll = SERVICE_TUNING["MAILSYNC_POLL_SECONDS"]
        others = f"; {_listed(synced[1:])} polled every {poll} s" if synced[1:] else ""
        console.print(
            f"Running. Append more mail to {DEMO_OWNER_EMAIL} (password {DEMO_PASSWORD!r}) at "
            f"IMAP {self.stack.imap_host}:{self.stack.imap_port} ({synced[0]} pushed via IDLE"
            f"{others}); metrics at {self.fleet['linker'].url}/metrics and the other services' "
            "/metrics. Ctrl-C stops everything.",
            style="bold",
        )


async def _demo(options: DemoOptions, console: Console) -> int:
    console.rule("mailsync demo")
    console.print("Starting the local stack: Kafka broker, Postgres, Dovecot, SMTP…")
    ports: list[int] = []
    postgres_port: int | None = None
    try:
        async with LocalStack() as stack:
            ports += stack.listening_ports()
            postgres_port = stack.postgres_port
            database_url = await create_database(stack.admin_database_url, options.database)
            demo_dir = stack.state_dir / "demo"
            log_dir = _fresh_log_dir(demo_dir)
            env = {
                # The services need nothing from our environment but where programs are.
                "PATH": os.environ.get("PATH", os.defpath),
                **stack.env(),
                "MAILSYNC_DATABASE_URL": database_url,
                "MAILSYNC_CREDENTIALS_KEY": _credentials_key(demo_dir),
                **SERVICE_TUNING,
            }
            fleet = ServiceFleet(env, log_dir)
            ports += [service.port for service in fleet.services.values()]
            console.print("Starting ingest, linker, outbound and tracking…")
            try:
                await fleet.start()
                console.print(_stack_table(stack, fleet, options.database))
                console.print(f"State folder {stack.state_dir}; service logs in {log_dir}")
                return await DemoRun(options, console, stack, fleet, database_url).run()
            finally:
                console.print("Stopping the services…")
                fleet.stop()
                console.print("Stopping the local stack…")
    finally:
        _report_ports(console, ports, postgres_port)


def _report_ports(console: Console, ports: Sequence[int], postgres_port: int | None) -> None:
    """Say whether anything the demo started still listens (it should not)."""
    still_open = _accepting(ports)
    if not ports:
        return
    if not still_open:
        console.print(f"Stopped; nothing listens on ports {sorted(ports)} any more.")
        return
    if still_open == [postgres_port]:
        console.print(
            f"Stopped; only the embedded Postgres (port {postgres_port}) is still up: another "
            "process on the same state folder uses it too, and the last one stops it.",
            style="yellow",
        )
        return
    console.print(f"Still accepting connections on port(s) {still_open}.", style="bold red")


async def run_demo(options: DemoOptions, console: Console) -> int:
    """Run the demo; Ctrl-C or SIGTERM unwinds it (everything stopped) and ends it with 0."""
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    assert main_task is not None
    received: list[signal.Signals] = []

    def stop_on(signum: signal.Signals) -> None:
        if not received:
            console.print(f"{signum.name}: stopping…", style="bold")
            main_task.cancel()
        received.append(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop_on, signum)
    try:
        return await _demo(options, console)
    except asyncio.CancelledError:
        if not received:
            raise
        return 130 if options.once else 0
    except (DemoFailed, StartupError) as error:
        console.print(f"Demo failed: {error}", style="bold red")
        return 1
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``make run``; exits with the demo's status."""
    options = parse_arguments(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        # A terminal without UTF-8 still shows the demo, with "?" for what it cannot draw.
        sys.stdout.reconfigure(errors="replace")
    console = Console(highlight=False)
    raise SystemExit(asyncio.run(run_demo(options, console)))


if __name__ == "__main__":
    main()
