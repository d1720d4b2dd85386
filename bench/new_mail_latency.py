"""Many idle accounts in one ingest process: memory per account, and how soon new mail shows.

Steps, each timed and printed:

1. ``MAILSYNC_BENCH_IDLE_ACCOUNTS`` Dovecot users (default 1,000), each with one message
   already in its INBOX (written into the maildirs, ``bench/maildir.py``);
2. one ingest process (``BenchIngest``, its own process so its RSS is its own); its VmRSS is
   read before any account is connected;
3. every user connected as an account (distinct CRM users, plan ultimate); done when each
   account's first message came out on ``mail.ingested.v1``; then
   ``MAILSYNC_BENCH_SETTLE_SECONDS`` (default 10) of quiet, over which ingest's CPU use is
   measured; VmRSS again, and the difference per idle account. That average carries what
   the initial-sync burst of a thousand accounts left in the allocator (freed, not given
   back to the system), so a second batch of ``MAILSYNC_BENCH_MARGINAL_ACCOUNTS`` (default
   200) is connected after it and, after the same settle, its VmRSS growth per account is
   printed too: the marginal cost of one more idle account;
4. ``MAILSYNC_BENCH_APPENDS`` new messages (default 200) delivered over LMTP, as an MTA
   would, to random accounts of the first batch at ``MAILSYNC_BENCH_APPEND_RATE`` per second
   (default 10), each with a Message-ID of its own; latency is from the end of the delivery
   to the arrival of its ``mail.message.ingested`` here (records correlated by Message-ID);
   p50/p95/p99/max; and ingest's VmRSS once more at the end.

Dovecot (2.3, ``src/lib-storage/mailbox-watch.c``) tells IDLE clients about a change
``NOTIFY_DELAY_MSECS`` (500, compiled in, no setting) after its inotify watch fires, so the
end-to-end figures cannot go below 0.5 s. To show ingest's own part, each recipient also has
a ``PushProbe``: a plain aioimaplib client in IDLE on its INBOX that stamps every EXISTS.
``dovecot_push_*`` is delivery → push, ``ingest_after_push_*`` is push → event here (IDLE
DONE, fetch, store, outbox, Kafka, this consumer).

The run raises its RLIMIT_NOFILE soft limit to the hard limit first: the stack's Dovecot and
ingest inherit it, and a thousand IMAP connections need more than 1,024 descriptors. As
root it also raises ``fs.inotify.max_user_instances`` for the run (see
``inotify_instances_for``).
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import aioimaplib

from bench.ingest_service import (
    BenchIngest,
    IngestedTail,
    connect_command,
    cpu_seconds,
    proc_status_kib,
    raise_open_files_limit,
)
from bench.mailbox_corpus import generate
from bench.maildir import write_inbox
from mailsync_devstack.dovecot import Dovecot, MailboxUser
from mailsync_devstack.stack import LocalStack

ACCOUNTS = int(os.environ.get("MAILSYNC_BENCH_IDLE_ACCOUNTS", "1000"))
APPENDS = int(os.environ.get("MAILSYNC_BENCH_APPENDS", "200"))
APPEND_RATE = float(os.environ.get("MAILSYNC_BENCH_APPEND_RATE", "10"))
SETTLE_SECONDS = float(os.environ.get("MAILSYNC_BENCH_SETTLE_SECONDS", "10"))
MARGINAL_ACCOUNTS = int(os.environ.get("MAILSYNC_BENCH_MARGINAL_ACCOUNTS", "200"))
SEED = 7
# Give up on initial syncs that made no progress for this long, and on new mail this long
# after the last delivery.
STALL_SECONDS = 180.0
DRAIN_SECONDS = 120.0
INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")
_EXISTS = re.compile(rb"^\d+ EXISTS", re.IGNORECASE)


def note(text: str) -> None:
    print(f"new_mail_latency note: {text}", flush=True)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile of ``values`` (0 < share ≤ 1)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * share // 1))
    return ordered[int(rank) - 1]


def dovecot_imap_processes(dovecot: Dovecot) -> tuple[int, int]:
    """How many ``imap`` processes (one per logged-in connection) the Dovecot runs, and
    their summed VmRSS in KiB."""
    count = rss = 0
    if dovecot.pid is None:
        return 0, 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        group = stat[stat.rindex(")") + 2 :].split()[2]
        if name == "imap" and group == str(dovecot.pid):
            count += 1
            rss += proc_status_kib(int(entry.name), "VmRSS")
    return count, rss


@contextmanager
def inotify_instances_for(connections: int) -> Iterator[None]:
    """Let Dovecot push new mail to ``connections`` IDLE clients at once, for the duration.

    Each imap process watches its selected mailbox with an inotify instance, and all of them
    run as one user (vmail). Past ``fs.inotify.max_user_instances`` (128 by default) Dovecot
    falls back to looking every ``mailbox_idle_check_interval`` (30 s), and that wait would
    be measured as ingest's latency. The limit is raised when we may (root) and put back
    after; otherwise a note says the figures include the fallback.
    """
    needed = connections + 128  # other Dovecot processes and other local Dovecots
    try:
        before = int(INOTIFY_INSTANCES.read_text())
    except (OSError, ValueError):
        yield
        return
    if before >= needed:
        yield
        return
    try:
        INOTIFY_INSTANCES.write_text(str(needed))
    except OSError as error:
        note(
            f"fs.inotify.max_user_instances is {before} and cannot be raised ({error}): "
            "Dovecot pushes to that many IDLE connections only, the rest see new mail "
            "within 30 s"
        )
        yield
        return
    note(f"fs.inotify.max_user_instances raised from {before} to {needed} for this run")
    try:
        yield
    finally:
        INOTIFY_INSTANCES.write_text(str(before))


class PushProbe:
    """A plain IMAP client in IDLE on one user's INBOX, stamping (``time.perf_counter()``)
    every EXISTS Dovecot pushes: the earliest moment any client can know of new mail."""

    def __init__(self, client: aioimaplib.IMAP4) -> None:
        self._client = client
        self.pushes: list[float] = []
        self._watching: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, host: str, port: int, user: MailboxUser) -> PushProbe:
        client = aioimaplib.IMAP4(host, port, timeout=30)
        await client.wait_hello_from_server()
        for response in (await client.login(user.email, user.password), await client.select()):
            if response.result != "OK":
                raise RuntimeError(f"probe for {user.email}: {response.lines}")
        probe = cls(client)
        await client.idle_start(timeout=3600)
        probe._watching = asyncio.create_task(probe._watch())
        return probe

    async def _watch(self) -> None:
        while True:
            pushed = await self._client.wait_server_push(timeout=3600)
            now = time.perf_counter()
            if pushed == aioimaplib.STOP_WAIT_SERVER_PUSH:
                return
            if any(_EXISTS.match(bytes(line)) for line in pushed):
                self.pushes.append(now)

    def push_after(self, moment: float) -> float | None:
        """The first push at or after ``moment`` (two deliveries within Dovecot's delay share
        one push)."""
        return next((at for at in self.pushes if at >= moment), None)

    async def close(self) -> None:
        if self._watching is not None:
            self._watching.cancel()
        with suppress(Exception):
            self._client.idle_done()
            await asyncio.wait_for(self._client.logout(), 5)


def new_mail(index: int, recipient: str) -> tuple[str, bytes]:
    """A small new message with a Message-ID of its own; returns (Message-ID, raw)."""
    message_id = f"latency-{index}-{secrets.token_hex(6)}@bench.test"
    message = EmailMessage()
    message["Message-ID"] = f"<{message_id}>"
    message["From"] = "Ole Hansen <ole@customer.test>"
    message["To"] = recipient
    message["Subject"] = f"New order {index}"
    message["Date"] = format_datetime(datetime.now(UTC))
    message.set_content(f"Hello,\n\nplease find order {index} below.\n\nOle\n")
    return message_id, message.as_bytes()


async def run() -> dict[str, float]:
    figures: dict[str, float] = {"open_files_limit": raise_open_files_limit()}
    # The probes watch with inotify too, one per distinct recipient at most.
    with inotify_instances_for(ACCOUNTS + MARGINAL_ACCOUNTS + APPENDS):
        return await _run(figures)


async def _run(figures: dict[str, float]) -> dict[str, float]:
    async with LocalStack() as stack:
        assert stack.dovecot is not None
        dovecot = stack.dovecot
        started = time.perf_counter()
        users = [
            dovecot.add_user(f"idle-{n:05d}@bench.test")
            for n in range(ACCOUNTS + MARGINAL_ACCOUNTS)
        ]
        figures["accounts"] = ACCOUNTS
        figures["add_users_seconds"] = time.perf_counter() - started
        started = time.perf_counter()
        for user, message in zip(users, generate(len(users), seed=SEED), strict=True):
            write_inbox(dovecot, user.email, [message])
        figures["seed_mailboxes_seconds"] = time.perf_counter() - started
        async with BenchIngest(stack) as ingest, IngestedTail(stack.kafka_bootstrap) as tail:
            if ingest.tuned:
                note(f"ingest settings from the environment: {ingest.describe_tuning()}")
            await asyncio.sleep(2)  # let the fresh process finish its start-up allocations
            rss_before = proc_status_kib(ingest.pid, "VmRSS")
            figures["ingest_rss_before_mib"] = rss_before / 1024
            accounts = {
                f"idle-{n:05d}-{secrets.token_hex(3)}": user for n, user in enumerate(users)
            }
            first = dict(list(accounts.items())[:ACCOUNTS])
            second = dict(list(accounts.items())[ACCOUNTS:])
            figures.update(await _connect_all(stack, ingest, tail, first))
            cpu_before = cpu_seconds(ingest.pid)
            await _settle(tail)
            figures["idle_ingest_cpu_percent"] = (
                100 * (cpu_seconds(ingest.pid) - cpu_before) / SETTLE_SECONDS
            )
            rss_after = proc_status_kib(ingest.pid, "VmRSS")
            figures["ingest_rss_idle_mib"] = rss_after / 1024
            figures["ingest_kib_per_idle_account"] = (rss_after - rss_before) / max(len(first), 1)
            if second:
                synced = await _connect_all(stack, ingest, tail, second)
                figures["marginal_accounts_synced"] = synced["accounts_synced"]
                await _settle(tail)
                rss_marginal = proc_status_kib(ingest.pid, "VmRSS")
                figures["ingest_rss_idle_marginal_mib"] = rss_marginal / 1024
                figures["ingest_kib_per_idle_account_marginal"] = (rss_marginal - rss_after) / len(
                    second
                )
            imap_processes, imap_rss = dovecot_imap_processes(dovecot)
            figures["dovecot_imap_connections"] = imap_processes
            figures["dovecot_rss_kib_per_imap_process"] = imap_rss / max(imap_processes, 1)
            figures.update(await _new_mail(stack, dovecot, ingest, tail, first))
            # Later still: what the sync burst left behind takes a while to be given back.
            figures["ingest_rss_end_mib"] = proc_status_kib(ingest.pid, "VmRSS") / 1024
    return figures


async def _settle(tail: IngestedTail) -> None:
    settle_until = time.perf_counter() + SETTLE_SECONDS
    while time.perf_counter() < settle_until:
        await tail.read(timeout_ms=200)


async def _connect_all(
    stack: LocalStack,
    ingest: BenchIngest,
    tail: IngestedTail,
    accounts: dict[str, MailboxUser],
) -> dict[str, float]:
    pending = set(accounts)
    started = time.perf_counter()
    await ingest.connect([connect_command(stack, user, aid) for aid, user in accounts.items()])
    sent = time.perf_counter()
    progress = sent
    while pending and ingest.running and time.perf_counter() - progress < STALL_SECONDS:
        for record in await tail.read():
            if record.type == "mail.message.ingested" and record.account_id in pending:
                pending.discard(record.account_id)
                progress = record.arrived
    if pending:
        note(f"{len(pending)} accounts never synced; ingest's log ends:\n{ingest.log_tail()}")
    return {
        "connect_commands_send_seconds": sent - started,
        "accounts_synced": len(accounts) - len(pending),
        "seconds_until_all_synced": progress - started,
    }


async def _new_mail(
    stack: LocalStack,
    dovecot: Dovecot,
    ingest: BenchIngest,
    tail: IngestedTail,
    accounts: dict[str, MailboxUser],
) -> dict[str, float]:
    rng = random.Random(SEED)
    chosen = [rng.choice(list(accounts.values())) for _ in range(APPENDS)]
    recipients = [user.email for user in chosen]
    probes: dict[str, PushProbe] = {}
    try:
        for user in chosen:
            if user.email not in probes:
                probes[user.email] = await PushProbe.open(stack.imap_host, stack.imap_port, user)
        return await _deliver_and_wait(dovecot, ingest, tail, recipients, probes)
    finally:
        await asyncio.gather(*(probe.close() for probe in probes.values()))


async def _deliver_and_wait(
    dovecot: Dovecot,
    ingest: BenchIngest,
    tail: IngestedTail,
    recipients: list[str],
    probes: dict[str, PushProbe],
) -> dict[str, float]:
    delivered: dict[str, float] = {}
    recipient_of: dict[str, str] = {}
    arrived: dict[str, float] = {}

    async def deliver() -> None:
        started = time.perf_counter()
        for index, recipient in enumerate(recipients):
            await asyncio.sleep(max(0.0, started + index / APPEND_RATE - time.perf_counter()))
            message_id, raw = new_mail(index, recipient)
            await asyncio.to_thread(dovecot.deliver_lmtp, recipient, raw)
            delivered[message_id] = time.perf_counter()
            recipient_of[message_id] = recipient

    delivery = asyncio.create_task(deliver())
    try:
        last_delivery = time.perf_counter()
        while ingest.running:
            for record in await tail.read(timeout_ms=100):
                if record.message_id is not None and record.type == "mail.message.ingested":
                    arrived.setdefault(record.message_id, record.arrived)
            if not delivery.done():
                last_delivery = time.perf_counter()
                continue
            if set(delivered) <= set(arrived):
                break
            if time.perf_counter() - last_delivery > DRAIN_SECONDS:
                break
        await delivery
    finally:
        delivery.cancel()
    latencies = [arrived[mid] - at for mid, at in delivered.items() if mid in arrived]
    missing = len(delivered) - len(latencies)
    if missing:
        note(f"{missing} of {len(delivered)} new messages never came out of ingest")
    push_delays: list[float] = []
    after_push: list[float] = []
    for mid, at in delivered.items():
        pushed = probes[recipient_of[mid]].push_after(at)
        if pushed is None:
            continue
        push_delays.append(pushed - at)
        if mid in arrived:
            after_push.append(arrived[mid] - pushed)
    if len(push_delays) < len(delivered):
        note(f"{len(delivered) - len(push_delays)} deliveries were never pushed to a probe")
    return {
        "new_messages": len(delivered),
        "new_messages_missing": missing,
        **_spread("latency", latencies),
        **_spread("dovecot_push", push_delays),
        **_spread("ingest_after_push", after_push),
    }


def _spread(name: str, seconds: list[float]) -> dict[str, float]:
    """p50/p95/p99/max of ``seconds``, in milliseconds."""
    return {
        f"{name}_p50_ms": 1000 * percentile(seconds, 0.50),
        f"{name}_p95_ms": 1000 * percentile(seconds, 0.95),
        f"{name}_p99_ms": 1000 * percentile(seconds, 0.99),
        f"{name}_max_ms": 1000 * max(seconds, default=float("nan")),
    }


if __name__ == "__main__":
    for key, value in asyncio.run(run()).items():
        print(f"new_mail_latency {key:38s} {value:12.1f}")
