"""Initial sync of a big, realistic mailbox: ingest against mbsync, same Dovecot, same mail.

Steps, each timed and printed:

1. generate the mailbox (``bench/mailbox_corpus.py``: ``MAILSYNC_BENCH_SYNC_MESSAGES``
   messages, default 10,000, ≈35 KB on average, seed ``MAILSYNC_BENCH_SYNC_SEED``);
2. put it into a Dovecot user's INBOX: written straight into the maildir
   (``bench/maildir.py``), or with ``MAILSYNC_BENCH_SYNC_LOAD=append`` APPENDed over one
   IMAP connection (about eight times slower);
3. let Dovecot index it once (SELECT, FETCH FLAGS), so neither contender pays for that;
4. ingest, alone in its own process with the broker and Postgres (no other service): from
   sending ``mail.account.connect`` to the last ``mail.message.ingested`` of that account on
   ``mail.ingested.v1``; also its CPU time and peak RSS;
5. mbsync (Debian ``isync``, installed by ``python -m mailsync_devstack.install --bench``)
   pulling the same INBOX over IMAP from the same Dovecot into a fresh Maildir, with its
   default fsync per message (ingest's raw store fsyncs each message too).

Throughput is printed as messages and MiB of raw mail per second, and the ratio of the two
wall times. When mbsync cannot be had (no apt, not root), that is printed and step 5 skipped.
"""

from __future__ import annotations

import asyncio
import os
import resource
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.ingest_service import (
    BenchIngest,
    IngestedTail,
    connect_command,
    cpu_seconds,
    proc_status_kib,
    raise_open_files_limit,
)
from bench.mailbox_corpus import DEFAULT_SEED, generate
from bench.maildir import append_inbox, write_inbox
from mailsync_devstack.dovecot import Dovecot, MailboxUser
from mailsync_devstack.install import InstallError, ensure_mbsync_installed
from mailsync_devstack.stack import LocalStack

MESSAGES = int(os.environ.get("MAILSYNC_BENCH_SYNC_MESSAGES", "10000"))
SEED = int(os.environ.get("MAILSYNC_BENCH_SYNC_SEED", str(DEFAULT_SEED)))
LOAD = os.environ.get("MAILSYNC_BENCH_SYNC_LOAD", "maildir")
OWNER = "dana@bench.test"
# Give up on a contender that made no progress for this long.
STALL_SECONDS = 180.0
MBSYNC_TIMEOUT_SECONDS = 3600.0
MIB = 2**20


def note(text: str) -> None:
    print(f"initial_sync note: {text}", flush=True)


async def run() -> dict[str, float]:
    raise_open_files_limit()
    figures: dict[str, float] = {}
    started = time.perf_counter()
    corpus = list(generate(MESSAGES, seed=SEED, owner=OWNER))
    figures["generate_seconds"] = time.perf_counter() - started
    total = sum(len(message.raw) for message in corpus)
    figures["messages"] = len(corpus)
    figures["mailbox_mib"] = total / MIB
    figures["average_message_kib"] = total / max(len(corpus), 1) / 1024
    figures["html_percent"] = 100 * sum(m.html for m in corpus) / max(len(corpus), 1)
    figures["with_attachments_percent"] = (
        100 * sum(m.attachments > 0 for m in corpus) / max(len(corpus), 1)
    )
    async with LocalStack() as stack:
        assert stack.dovecot is not None
        dovecot = stack.dovecot
        user = dovecot.add_user(OWNER)
        started = time.perf_counter()
        load = append_inbox if LOAD == "append" else write_inbox
        await asyncio.to_thread(load, dovecot, user.email, corpus)
        figures[f"load_{LOAD}_seconds"] = time.perf_counter() - started
        del corpus
        started = time.perf_counter()
        exists = await asyncio.to_thread(_index, dovecot, user)
        figures["dovecot_index_seconds"] = time.perf_counter() - started
        if exists != figures["messages"]:
            note(f"Dovecot shows {exists} messages in INBOX, {figures['messages']:.0f} written")
        ingest = await _ingest(stack, user, exists, total)
        figures.update(ingest)
        mbsync = await asyncio.to_thread(_mbsync, dovecot, user, exists, total)
        figures.update(mbsync)
    if ingest.get("ingest_seconds") and mbsync.get("mbsync_seconds"):
        figures["ingest_seconds_per_mbsync_second"] = (
            ingest["ingest_seconds"] / mbsync["mbsync_seconds"]
        )
    return figures


def _index(dovecot: Dovecot, user: MailboxUser) -> int:
    """Have Dovecot sync and index the INBOX once; return its message count."""
    with dovecot.imap(user.email) as connection:
        status, data = connection.select("INBOX", readonly=True)
        if status != "OK" or not isinstance(data[0], bytes):
            raise RuntimeError(f"SELECT INBOX failed: {data!r}")
        connection.uid("FETCH", "1:*", "(FLAGS)")
        return int(data[0])


async def _ingest(
    stack: LocalStack, user: MailboxUser, expected: int, total_bytes: int
) -> dict[str, float]:
    async with BenchIngest(stack) as ingest, IngestedTail(stack.kafka_bootstrap) as tail:
        if ingest.tuned:
            note(f"ingest settings from the environment: {ingest.describe_tuning()}")
        account_id = f"sync-{secrets.token_hex(4)}"
        cpu_before = cpu_seconds(ingest.pid)
        started = time.perf_counter()
        await ingest.connect([connect_command(stack, user, account_id)])
        # Counted by Message-ID (unique in the corpus): a redelivered event counts once.
        seen: set[str] = set()
        first = last = progress = started
        while len(seen) < expected and ingest.running:
            if time.perf_counter() - progress > STALL_SECONDS:
                break
            for record in await tail.read():
                if record.account_id == account_id and record.type == "mail.message.ingested":
                    if not seen:
                        first = record.arrived
                    seen.add(record.message_id or f"without Message-ID {len(seen)}")
                    last = progress = record.arrived
        count = len(seen)
        cpu = cpu_seconds(ingest.pid) - cpu_before
        peak_kib = proc_status_kib(ingest.pid, "VmHWM")
        if count < expected:
            note(f"ingest published {count} of {expected}; its log ends:\n{ingest.log_tail()}")
    elapsed = max(last - started, 1e-9)
    return {
        "ingest_messages": count,
        "ingest_seconds_to_first_message": first - started,
        "ingest_seconds": elapsed,
        "ingest_messages_per_second": count / elapsed,
        # Without the wait for the first message (account pick-up, login, first fetch).
        "ingest_messages_per_second_after_first": (count - 1) / max(last - first, 1e-9),
        "ingest_mib_per_second": total_bytes * count / max(expected, 1) / elapsed / MIB,
        "ingest_cpu_seconds": cpu,
        "ingest_peak_rss_mib": peak_kib / 1024,
    }


def _mbsync(
    dovecot: Dovecot, user: MailboxUser, expected: int, total_bytes: int
) -> dict[str, float]:
    try:
        binary = ensure_mbsync_installed()
    except InstallError as error:
        note(f"mbsync skipped: {error}")
        return {}
    folder = Path(tempfile.mkdtemp(prefix="mailsync-mbsync-"))
    try:
        config = folder / "mbsyncrc"
        config.write_text(_mbsyncrc(dovecot, user, folder))
        config.chmod(0o600)
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        completed = subprocess.run(
            [binary, "-c", str(config), "-q", "bench"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=MBSYNC_TIMEOUT_SECONDS,
            check=False,
        )
        elapsed = time.perf_counter() - started
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        if completed.returncode != 0:
            note(f"mbsync exited with {completed.returncode}: {completed.stderr.decode()[-800:]}")
            return {}
        pulled = sum(len(os.listdir(folder / "INBOX" / sub)) for sub in ("cur", "new"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if pulled != expected:
        note(f"mbsync pulled {pulled} of {expected} messages")
    cpu = (children.ru_utime + children.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    return {
        "mbsync_messages": pulled,
        "mbsync_seconds": elapsed,
        "mbsync_messages_per_second": pulled / elapsed,
        "mbsync_mib_per_second": total_bytes * pulled / max(expected, 1) / elapsed / MIB,
        "mbsync_cpu_seconds": cpu,
    }


def _mbsyncrc(dovecot: Dovecot, user: MailboxUser, folder: Path) -> str:
    # isync 1.4 (Debian 12) spells TLS "SSLType"; 1.5 renamed it "TLSType". AuthMechs must
    # name LOGIN/PLAIN explicitly: its default "*" excludes cleartext mechanisms without TLS.
    return f"""# Generated by bench/initial_sync.py for one run.
IMAPAccount far
Host {dovecot.imap_host}
Port {dovecot.imap_port}
User "{user.email}"
Pass "{user.password}"
SSLType None
AuthMechs PLAIN LOGIN

IMAPStore far
Account far

MaildirStore near
Path {folder}/
Inbox {folder}/INBOX

Channel bench
Far :far:
Near :near:
Patterns INBOX
Sync Pull
Create Near
SyncState *
"""


if __name__ == "__main__":
    for key, value in asyncio.run(run()).items():
        print(f"initial_sync {key:38s} {value:12.1f}")
