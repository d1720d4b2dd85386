"""Many idle accounts in one ingest process: memory per account, and how soon new mail shows.

Steps, each timed and printed:

1. ``MAILSYNC_BENCH_IDLE_ACCOUNTS`` Dovecot users (default 1,000), each with one message
   already in its INBOX (written into the maildirs, ``bench/maildir.py``);
2. one ingest process (``BenchIngest``, its own process so its RSS is its own); its VmRSS is
   read before any account is connected;
3. every user connected as an account (distinct CRM users, plan ultimate); done when each
   account's first message came out on ``mail.ingested.v1``; then
   ``MAILSYNC_BENCH_SETTLE_SECONDS`` (default 10) of quiet, over which ingest's CPU use is
   measured; VmRSS again, and the difference per idle account (memory of the sync burst is
   not all given back after 10 s: a longer settle shows the steady state);
4. ``MAILSYNC_BENCH_APPENDS`` new messages (default 200) delivered over LMTP, as an MTA
   would, to random accounts at ``MAILSYNC_BENCH_APPEND_RATE`` per second (default 10), each
   with a Message-ID of its own; latency is from the end of the delivery to the arrival of
   its ``mail.message.ingested`` here (records correlated by Message-ID); p50/p95/p99/max;
   and ingest's VmRSS once more at the end.

The run raises its RLIMIT_NOFILE soft limit to the hard limit first: the stack's Dovecot and
ingest inherit it, and a thousand IMAP connections need more than 1,024 descriptors. As
root it also raises ``fs.inotify.max_user_instances`` for the run (see
``inotify_instances_for``); Dovecot itself waits 0.5 s after a change before it tells IDLE
clients, so that is the floor of the latency measured here.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

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
SEED = 7
# Give up on initial syncs that made no progress for this long, and on new mail this long
# after the last delivery.
STALL_SECONDS = 180.0
DRAIN_SECONDS = 120.0
INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")


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
    with inotify_instances_for(ACCOUNTS):
        return await _run(figures)


async def _run(figures: dict[str, float]) -> dict[str, float]:
    async with LocalStack() as stack:
        assert stack.dovecot is not None
        dovecot = stack.dovecot
        started = time.perf_counter()
        users = [dovecot.add_user(f"idle-{n:05d}@bench.test") for n in range(ACCOUNTS)]
        figures["accounts"] = len(users)
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
            figures.update(await _connect_all(stack, ingest, tail, accounts))
            cpu_before = cpu_seconds(ingest.pid)
            settle_until = time.perf_counter() + SETTLE_SECONDS
            while time.perf_counter() < settle_until:
                await tail.read(timeout_ms=200)
            figures["idle_ingest_cpu_percent"] = (
                100 * (cpu_seconds(ingest.pid) - cpu_before) / SETTLE_SECONDS
            )
            rss_after = proc_status_kib(ingest.pid, "VmRSS")
            figures["ingest_rss_idle_mib"] = rss_after / 1024
            figures["ingest_kib_per_idle_account"] = (rss_after - rss_before) / max(len(users), 1)
            imap_processes, imap_rss = dovecot_imap_processes(dovecot)
            figures["dovecot_imap_connections"] = imap_processes
            figures["dovecot_rss_kib_per_imap_process"] = imap_rss / max(imap_processes, 1)
            figures.update(await _new_mail(dovecot, ingest, tail, accounts))
            # Later still: what the sync burst left behind takes a while to be given back.
            figures["ingest_rss_end_mib"] = proc_status_kib(ingest.pid, "VmRSS") / 1024
    return figures


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
    dovecot: Dovecot, ingest: BenchIngest, tail: IngestedTail, accounts: dict[str, MailboxUser]
) -> dict[str, float]:
    rng = random.Random(SEED)
    recipients = [rng.choice(list(accounts.values())).email for _ in range(APPENDS)]
    delivered: dict[str, float] = {}
    arrived: dict[str, float] = {}

    async def deliver() -> None:
        started = time.perf_counter()
        for index, recipient in enumerate(recipients):
            await asyncio.sleep(max(0.0, started + index / APPEND_RATE - time.perf_counter()))
            message_id, raw = new_mail(index, recipient)
            await asyncio.to_thread(dovecot.deliver_lmtp, recipient, raw)
            delivered[message_id] = time.perf_counter()

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
    return {
        "new_messages": len(delivered),
        "new_messages_missing": missing,
        "latency_p50_ms": 1000 * percentile(latencies, 0.50),
        "latency_p95_ms": 1000 * percentile(latencies, 0.95),
        "latency_p99_ms": 1000 * percentile(latencies, 0.99),
        "latency_max_ms": 1000 * max(latencies, default=float("nan")),
    }


if __name__ == "__main__":
    for key, value in asyncio.run(run()).items():
        print(f"new_mail_latency {key:38s} {value:12.1f}")
