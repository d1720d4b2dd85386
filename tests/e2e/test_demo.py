"""`make run` end to end: the demo starts the whole system, syncs every folder of the demo
mailbox in the default scope (all but Trash, Junk and Drafts), files it as threads linked to the
demo CRM's people, and leaves nothing listening when it exits (ARCHITECTURE §5).

The demo runs as `make run` runs it, a process of its own, with `--once` so it exits when the
initial sync is done and filed. It gets a private state folder, hence its own broker and
Dovecot; only its database lives on the session's Postgres, to save starting a second server.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailsync_devstack.demo_crm import AHMED, ALEXEI, KATRIN, SARAH, SATO_KEN, WANG_WEI
from mailsync_devstack.demo_data import DEMO_OWNER_EMAIL, demo_mailbox
from mailsync_devstack.postgres import drop_database

pytestmark = pytest.mark.e2e

DEMO_SECONDS = 60
ADDRESS = re.compile(r"127\.0\.0\.1:(\d+)")
LMTP = re.compile(r"LMTP port (\d+)")
SUMMARY = re.compile(r"Summary: (\d+) messages ingested \(([^)]*)\)")
# R6: the default sync scope leaves out the folders whose mail the user does not keep.
NOT_SYNCED = frozenset({"Trash", "Junk", "Drafts"})


async def _run_demo(state_dir: Path, admin_database_url: str, database: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "MAILSYNC_STATE_DIR": str(state_dir),
        "MAILSYNC_DATABASE_URL": admin_database_url,
        "PYTHONIOENCODING": "utf-8",
        # Wide enough that no line of the demo is wrapped in the middle of a name.
        "COLUMNS": "240",
    }
    env.pop("MAILSYNC_KAFKA_BOOTSTRAP", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mailsync_devstack.demo",
        "--once",
        "--timeout",
        str(DEMO_SECONDS),
        "--database",
        database,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    try:
        raw, _ = await asyncio.wait_for(process.communicate(), timeout=DEMO_SECONDS + 30)
    except TimeoutError:
        process.terminate()  # SIGTERM: the demo stops what it started before it exits
        raw, _ = await process.communicate()
        pytest.fail(f"the demo did not exit on its own:\n{raw.decode(errors='replace')}")
    assert process.returncode is not None
    return process.returncode, raw.decode("utf-8")


async def _accepts_connections(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def test_make_run_files_the_demo_mailbox_against_named_crm_persons_and_stops_cleanly(
    admin_database_url: str, tmp_path: Path
) -> None:
    database = f"demo_test_{secrets.token_hex(4)}"
    try:
        status, output = await _run_demo(tmp_path, admin_database_url, database)
    finally:
        await drop_database(admin_database_url, database)

    assert status == 0, output
    mailbox = demo_mailbox(DEMO_OWNER_EMAIL, datetime.now(UTC))
    expected = Counter(m.folder for m in mailbox if m.folder not in NOT_SYNCED)
    assert {"INBOX", "Sent"} <= expected.keys()  # more than the INBOX is really synced
    summary = SUMMARY.search(output)
    assert summary is not None, output
    by_folder = {
        folder: int(count)
        for folder, count in (part.rsplit(" ", 1) for part in summary[2].split(", "))
    }
    # Each demo message once (the mailbox holds no copies), in the folder it was appended to.
    assert (int(summary[1]), by_folder) == (expected.total(), dict(expected)), output
    assert "initial sync of INBOX" in output, output  # mail.account.synced was seen
    assert "· 0 dead letters" in output, output
    thread_lines = [line for line in output.splitlines() if re.match(r"\s*[\d.]+s thread ", line)]
    # R12, and R10 on the way: Latin, Chinese, Japanese, Cyrillic and Arabic names come out
    # of their charsets intact and resolved from the CRM; Katrin writes from an IDN domain.
    for person in (SARAH, WANG_WEI, SATO_KEN, ALEXEI, AHMED, KATRIN):
        assert any(
            "linked: " in line and f"{person.name} (person)" in line for line in thread_lines
        ), f"no thread line linked to {person.name}:\n{output}"

    ports = {int(port) for port in ADDRESS.findall(output) + LMTP.findall(output)}
    assert len(ports) >= 8, f"broker, IMAP, LMTP, SMTP and four services expected:\n{output}"
    still_open = [port for port in sorted(ports) if await _accepts_connections(port)]
    assert still_open == [], f"still listening after the demo exited: {still_open}\n{output}"
