"""Filling a local Dovecot user's INBOX quickly, for benchmarks that need big or many mailboxes.

The local Dovecot (``mailsync_devstack.dovecot``) stores mail as maildir under
``<Dovecot.mail_dir>/<user>/Maildir``, owned by the mail user. ``write_inbox`` drops message
files straight into ``Maildir/cur``; Dovecot's maildir sync at the next SELECT gives them
UIDs in the order of the time stamps that lead their file names (Maildir++), so UIDs follow
the messages' dates like in a mailbox that filled up over the years. Invariants:

- Meant for a user who has not logged in yet: Dovecot notices files added later too, but
  the benchmarks do not rely on that.
- File names carry ``S=`` (size) and ``W=`` (RFC 822 size, equal because the files are CRLF)
  so Dovecot needs no stat or read to answer RFC822.SIZE; the mtime is the received date,
  which Dovecot reports as INTERNALDATE; ``:2,S`` marks messages already read.
- Files and folders belong to the owner of ``Dovecot.mail_dir`` (``vmail`` when run as root)
  with modes 0600/0700, as Dovecot creates them.

Measured on the 2-core development machine with 2,000 corpus messages (63 MiB): 0.3 s
written this way, 2.6 s by IMAP APPEND over one connection (``append_inbox``, kept for
comparison and as ``MAILSYNC_BENCH_SYNC_LOAD=append``), which pays for a round trip, a
parse and the index update per message.
"""

from __future__ import annotations

import imaplib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from bench.mailbox_corpus import CorpusMessage
from mailsync_devstack.dovecot import Dovecot


def inbox_path(dovecot: Dovecot, email: str) -> Path:
    """The maildir holding ``email``'s INBOX."""
    return dovecot.mail_dir / email.strip().lower() / "Maildir"


def write_inbox(dovecot: Dovecot, email: str, messages: Iterable[CorpusMessage]) -> int:
    """Write ``messages`` into the user's INBOX maildir; return how many bytes were written."""
    owner = dovecot.mail_dir.stat()
    maildir = inbox_path(dovecot, email)
    for folder in (maildir.parent, maildir, maildir / "cur", maildir / "new", maildir / "tmp"):
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chown(folder, owner.st_uid, owner.st_gid)
    cur = maildir / "cur"
    written = 0
    pid = os.getpid()
    for sequence, message in enumerate(messages):
        stamp = int(message.received_at.timestamp())
        size = len(message.raw)
        flags = "S" if message.seen else ""
        path = cur / f"{stamp}.M{sequence}P{pid}.mailsync-bench,S={size},W={size}:2,{flags}"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(descriptor, message.raw)
            os.fchown(descriptor, owner.st_uid, owner.st_gid)
        finally:
            os.close(descriptor)
        os.utime(path, (stamp, stamp))
        written += size
    return written


def append_inbox(dovecot: Dovecot, email: str, messages: Iterable[CorpusMessage]) -> int:
    """APPEND ``messages`` to the user's INBOX over one IMAP connection; return the bytes."""
    written = 0
    with dovecot.imap(email) as connection:
        for message in messages:
            flags = "(\\Seen)" if message.seen else ""
            # typeshed declares append() -> str; imaplib returns (status, data).
            status, data = cast(
                "tuple[str, list[Any]]",
                connection.append(
                    "INBOX", flags, imaplib.Time2Internaldate(message.received_at), message.raw
                ),
            )
            if status != "OK":
                raise RuntimeError(f"APPEND failed: {data!r}")
            written += len(message.raw)
    return written
