"""A private Dovecot (IMAP + LMTP) for tests and the demo, plus helpers to look into it.

``Dovecot.start`` installs Dovecot if it is missing (``mailsync_devstack.install``), writes a
self-contained ``dovecot.conf`` under its own folder and runs ``dovecot -F -c <conf>`` as a
child of this process. Invariants:

- Private: its own base_dir, state_dir, logs, users file and maildirs; nothing of the
  distribution's ``/etc/dovecot`` is read and the system service is never touched.
- Loopback only: IMAP (plaintext with STARTTLS offered, cleartext auth allowed), IMAPS and
  LMTP each on a port chosen free at start; POP3 and submission are off. The TLS
  certificate (``localhost``/127.0.0.1) comes from a private CA made at start
  (``mailsync_devstack.tls``): clients verify it only when given ``tls.ca_file``.
- Users are added on demand, each in a passwd-file of its own (``users/<email>``,
  ``{SSHA256}`` hash), so ``add_user`` takes effect at once. User names are lowercased
  (``auth_username_format = %Lu``).
- Mail is stored as maildir under ``<folder>/mail/<user>/Maildir`` owned by a non-root
  user (``vmail``, created when missing): Dovecot refuses to store mail as root.
- Every user has INBOX plus the RFC 6154 SPECIAL-USE mailboxes Archive, Sent, Trash, Drafts
  and Junk, created and subscribed on first login; the hierarchy separator is ``/``.
- CAPABILITY after login includes IDLE, CONDSTORE, QRESYNC (RFC 7162), SPECIAL-USE, MOVE
  (RFC 6851) and UIDPLUS (RFC 4315); Dovecot 2.3 offers them without plugins.

The helpers (``append``, ``deliver_lmtp``, ``fetch_all`` ...) use the standard library's
blocking imaplib/smtplib: they are for tests to arrange and inspect mailboxes, not for
services, which bring their own IMAP client.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import imaplib
import os
import pwd
import re
import secrets
import shutil
import smtplib
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from mailsync_devstack.children import ChildProcess, RunFolder, StartupError
from mailsync_devstack.install import ensure_dovecot_installed
from mailsync_devstack.ports import LOOPBACK, free_port
from mailsync_devstack.state import make_world_traversable
from mailsync_devstack.tls import ServerCertificate, issue_loopback_certificate

MAIL_USER = "vmail"

# RFC 6154 special-use attribute -> mailbox name every user gets.
SPECIAL_USE_MAILBOXES: dict[str, str] = {
    "\\Archive": "Archive",
    "\\Sent": "Sent",
    "\\Trash": "Trash",
    "\\Drafts": "Drafts",
    "\\Junk": "Junk",
}

REQUIRED_CAPABILITIES = frozenset(
    {"IDLE", "CONDSTORE", "QRESYNC", "SPECIAL-USE", "MOVE", "UIDPLUS"}
)

_START_ATTEMPTS = 3
# How long `add_user` waits for Dovecot to accept a changed password.
PASSWORD_CHANGE_SECONDS = 5.0
# sun_path holds 108 bytes; Dovecot's longest socket name below base_dir is ~30.
_MAX_BASE_DIR = 70
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")
_FETCH_UID = re.compile(rb"UID (\d+)")
_BARE_LF = re.compile(rb"(?<!\r)\n")
# Lowercase local@domain without path separators; it names the user's passwd-file and home.
_USER_NAME = re.compile(r"[a-z0-9!#$%&'*+=?^_`{|}~-][a-z0-9!#$%&'*+=?^_`{|}~.-]*@[a-z0-9.-]+")


@dataclass(frozen=True, slots=True)
class MailboxUser:
    """A Dovecot user: log in to IMAP (and SMTP submission) with ``email`` and ``password``."""

    email: str
    password: str


def _ssha256(password: str, salt: bytes | None = None) -> str:
    """Dovecot's ``{SSHA256}`` scheme: base64(sha256(password + salt) + salt)."""
    salt = secrets.token_bytes(8) if salt is None else salt
    digest = hashlib.sha256(password.encode() + salt).digest()
    return "{SSHA256}" + base64.b64encode(digest + salt).decode()


def _ssha256_matches(password: str, stored: str) -> bool:
    if not stored.startswith("{SSHA256}"):
        return False
    try:
        raw = base64.b64decode(stored.removeprefix("{SSHA256}"), validate=True)
    except ValueError:
        return False
    return hmac.compare_digest(_ssha256(password, raw[32:]), stored)


def crlf(raw: bytes) -> bytes:
    """``raw`` with bare LF line ends turned into CRLF, as IMAP and LMTP expect (RFC 5322 §2.3)."""
    return _BARE_LF.sub(b"\r\n", raw)


def _quoted(mailbox: str) -> str:
    escaped = mailbox.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _uid_set(uids: Iterable[int]) -> str:
    return ",".join(str(uid) for uid in uids)


def _ensure_mail_user() -> tuple[int, int]:
    """uid/gid that owns the maildirs: ``vmail`` as root (created if missing), else ourselves."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    try:
        account = pwd.getpwnam(MAIL_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", MAIL_USER],
            check=True,
            capture_output=True,
        )
        account = pwd.getpwnam(MAIL_USER)
    return account.pw_uid, account.pw_gid


class Dovecot:
    """A private Dovecot instance rooted at ``root`` (normally ``<run folder>/dovecot``)."""

    def __init__(self, root: Path) -> None:
        """Describe the instance; nothing runs until ``start``."""
        self.root = root
        self.config_path = root / "dovecot.conf"
        self.log_path = root / "dovecot.log"
        self.users_dir = root / "users"
        self.mail_dir = root / "mail"
        self.imap_host = LOOPBACK
        self.imap_port = 0
        self.imaps_port = 0
        self.lmtp_port = 0
        # Issued at start by a private CA: `ca_file` is what a client must trust (TLS tests).
        self.tls: ServerCertificate | None = None
        self._child: ChildProcess | None = None
        self._base_dir: Path | None = None
        self._temporary_base_dir = False
        self._passwords: dict[str, str] = {}

    @property
    def running(self) -> bool:
        """Whether the Dovecot master process is up."""
        return self._child is not None and self._child.running()

    @property
    def pid(self) -> int | None:
        """Pid (and process group) of the Dovecot master, while it runs."""
        return self._child.pid if self._child is not None else None

    async def start(self, run_folder: RunFolder | None = None, timeout: float = 20.0) -> None:
        """Install Dovecot if needed, write the config and start it; return once it listens."""
        binary = await asyncio.to_thread(ensure_dovecot_installed)
        uid, gid = _ensure_mail_user()
        self.root.mkdir(parents=True, exist_ok=True)
        self.mail_dir.mkdir(exist_ok=True)
        (self.root / "state").mkdir(exist_ok=True)
        os.chown(self.mail_dir, uid, gid)
        make_world_traversable(self.mail_dir)
        self.users_dir.mkdir(exist_ok=True)
        self._base_dir = self._choose_base_dir()
        last_error: StartupError | None = None
        for _ in range(_START_ATTEMPTS):
            self.imap_port, self.imaps_port, self.lmtp_port = free_port(), free_port(), free_port()
            self.tls = issue_loopback_certificate(self.root / "tls")
            self.config_path.write_text(self._config(uid, gid))
            child = ChildProcess(
                "dovecot", [binary, "-F", "-c", str(self.config_path)], self.log_path
            )
            if run_folder is not None:
                run_folder.record(child)
            try:
                await child.wait_until_listening(self.imap_port, timeout)
                await child.wait_until_listening(self.lmtp_port, timeout)
                await child.wait_until_listening(self.imaps_port, timeout)
            except StartupError as error:
                child.stop()
                last_error = error
                continue
            self._child = child
            return
        self._remove_base_dir()
        assert last_error is not None
        raise last_error

    def stop(self) -> None:
        """Stop the Dovecot master and its process group; idempotent."""
        if self._child is not None:
            self._child.stop()
            self._child = None
        self._remove_base_dir()

    def _choose_base_dir(self) -> Path:
        candidate = self.root / "run"
        if len(str(candidate)) <= _MAX_BASE_DIR:
            self._temporary_base_dir = False
            return candidate
        self._temporary_base_dir = True
        folder = Path(tempfile.mkdtemp(prefix="mailsync-dovecot-"))
        folder.chmod(0o755)
        return folder

    def _remove_base_dir(self) -> None:
        if self._base_dir is not None and self._temporary_base_dir:
            shutil.rmtree(self._base_dir, ignore_errors=True)
        self._base_dir = None

    def _config(self, uid: int, gid: int) -> str:
        assert self._base_dir is not None
        tls = self.tls
        assert tls is not None
        mailboxes = "\n".join(
            f"  mailbox {name} {{\n    special_use = {use}\n    auto = subscribe\n  }}"
            for use, name in SPECIAL_USE_MAILBOXES.items()
        )
        if os.geteuid() == 0:
            process_users = login_chroot = ""
        else:
            # Unprivileged, every Dovecot process runs as us and login cannot chroot.
            me = pwd.getpwuid(os.getuid()).pw_name
            process_users = f"default_login_user = {me}\ndefault_internal_user = {me}\n"
            login_chroot = "  chroot =\n"
        return f"""# Generated by mailsync_devstack.dovecot; private instance, do not edit.
base_dir = {self._base_dir}
state_dir = {self.root / "state"}
instance_name = mailsync-{self.root.parent.name}
protocols = imap lmtp
listen = {LOOPBACK}
log_path = {self.log_path}
info_log_path = {self.log_path}
{process_users}
ssl = yes
ssl_cert = <{tls.cert_file}
ssl_key = <{tls.key_file}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Lu
auth_verbose = yes
# No 2 s penalty after a failed login: tests of wrong credentials should not wait.
auth_failure_delay = 0

first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
last_valid_gid = {gid}
mail_location = maildir:~/Maildir
mail_fsync = never

passdb {{
  driver = passwd-file
  args = scheme=SSHA256 username_format=%Lu {self.users_dir}/%Lu
}}
userdb {{
  driver = passwd-file
  args = username_format=%Lu {self.users_dir}/%Lu
  default_fields = uid={uid} gid={gid} home={self.mail_dir}/%Lu
}}

namespace inbox {{
  inbox = yes
  separator = /
{mailboxes}
}}

# Sized for bench/new_mail_latency.py: one ingest process holds an IMAP connection per
# connected account, a thousand and more at once. Dovecot's defaults would queue or refuse
# them: imap-login's default_process_limit of 100 processes serving one connection each, and
# imap's process_limit of 1024. Login runs in high-performance mode instead (a few long-lived
# processes serving many connections each; fine on loopback without TLS) and every imap
# connection still gets a process of its own (client_limit 1), as in production. The file
# descriptors this takes come from the starting process's RLIMIT_NOFILE (the benchmark
# raises its soft limit to the hard one).
service imap-login {{
  service_count = 0
  process_min_avail = 1
  process_limit = 4
  client_limit = 4096
{login_chroot}  inet_listener imap {{
    address = {LOOPBACK}
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = {LOOPBACK}
    port = {self.imaps_port}
  }}
}}
service imap {{
  process_limit = 4096
}}
# "imap [user ip]" in each mail process's title: tests find the sessions of one user by it.
verbose_proctitle = yes
service lmtp {{
  inet_listener lmtp {{
    address = {LOOPBACK}
    port = {self.lmtp_port}
  }}
}}
protocol imap {{
  mail_max_userip_connections = 200
}}
protocol lmtp {{
  postmaster_address = postmaster@localhost
}}
"""

    def add_user(self, email: str, password: str | None = None) -> MailboxUser:
        """Create (or re-password) the user ``email``; a random password when none is given.

        Each user has a passwd-file of its own (``users/<email>``): Dovecot re-reads a
        passwd-file at most once per second, so one shared file would hide a user added
        within a second of the previous login. A new user is a new file, read at first use.

        A changed password is in force when this returns: Dovecot keeps a passwd-file it
        read in the same second, or whose mtime and size did not change (a re-password
        changes neither within a second), so the new file gets a later mtime and a login
        with the new password is tried until Dovecot accepts it.
        """
        email = email.strip().lower()
        if not _USER_NAME.fullmatch(email):
            raise ValueError(f"not a usable mailbox user name: {email!r}")
        password = password if password is not None else secrets.token_urlsafe(12)
        path = self.users_dir / email
        previous = path.stat().st_mtime if path.exists() else None
        staged = self.users_dir / f".{email}.{secrets.token_hex(4)}"
        staged.write_text(f"{email}:{_ssha256(password)}::::::\n")
        if previous is not None:
            stamp = max(time.time(), int(previous) + 1.0)
            os.utime(staged, (stamp, stamp))
        os.replace(staged, path)
        self._passwords[email] = password
        if previous is not None:
            self._wait_for_password(email, password)
        return MailboxUser(email, password)

    def _wait_for_password(self, email: str, password: str) -> None:
        deadline = time.monotonic() + PASSWORD_CHANGE_SECONDS
        while True:
            try:
                with self.imap(email, password):
                    return
            except imaplib.IMAP4.error:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _stored_password(self, email: str) -> str | None:
        email = email.strip().lower()
        if not _USER_NAME.fullmatch(email):
            return None
        try:
            line = (self.users_dir / email).read_text()
        except OSError:
            return None
        name, _, rest = line.partition(":")
        return rest.split(":", 1)[0] if name == email else None

    def has_user(self, email: str) -> bool:
        """Whether ``email`` is a user of this Dovecot."""
        return self._stored_password(email) is not None

    def check_password(self, email: str, password: str) -> bool:
        """Whether ``password`` is the user's password in the users file."""
        stored = self._stored_password(email)
        return stored is not None and _ssha256_matches(password, stored)

    @contextmanager
    def imap(self, email: str, password: str | None = None) -> Iterator[imaplib.IMAP4]:
        """A logged-in imaplib connection as ``email`` (password remembered by ``add_user``)."""
        email = email.strip().lower()
        secret = password if password is not None else self._passwords[email]
        connection = imaplib.IMAP4(self.imap_host, self.imap_port, timeout=10)
        try:
            connection.login(email, secret)
            yield connection
        finally:
            try:
                connection.logout()
            except (imaplib.IMAP4.error, OSError):
                connection.shutdown()

    def capabilities(self, email: str) -> frozenset[str]:
        """The CAPABILITY list the server announces after login."""
        with self.imap(email) as connection:
            _, data = connection.capability()
        return frozenset(
            b" ".join(item for item in data if isinstance(item, bytes)).decode().split()
        )

    def mailboxes(self, email: str) -> dict[str, frozenset[str]]:
        """Mailbox name -> its LIST attributes (``\\Sent``, ``\\HasNoChildren``, ...)."""
        with self.imap(email) as connection:
            _, data = connection.list()
        found: dict[str, frozenset[str]] = {}
        for line in data:
            if not isinstance(line, bytes):
                continue
            match = re.match(rb'\((?P<attrs>[^)]*)\) (?:"[^"]*"|NIL) (?P<name>.+)', line)
            if match is None:
                continue
            name = match["name"].decode()
            if name.startswith('"') and name.endswith('"'):
                name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            found[name] = frozenset(match["attrs"].decode().split())
        return found

    def append(
        self,
        email: str,
        mailbox: str,
        raw: bytes,
        flags: Sequence[str] = (),
    ) -> int:
        """IMAP APPEND ``raw`` to the user's ``mailbox``; return the new message's UID (UIDPLUS)."""
        with self.imap(email) as connection:
            # typeshed declares append() -> str; imaplib returns (status, data) like any command.
            status, data = cast(
                "tuple[str, list[Any]]",
                connection.append(_quoted(mailbox), " ".join(flags), "", crlf(raw)),
            )
        if status != "OK":
            raise imaplib.IMAP4.error(f"APPEND to {mailbox} failed: {data!r}")
        match = _APPENDUID.search(b" ".join(item for item in data if isinstance(item, bytes)))
        if match is None:
            raise imaplib.IMAP4.error(f"APPEND to {mailbox} returned no APPENDUID: {data!r}")
        return int(match[2])

    def deliver_lmtp(self, recipients: str | Sequence[str], raw: bytes, sender: str = "") -> None:
        """Deliver ``raw`` to each recipient's INBOX over LMTP (one transaction per recipient).

        One recipient per transaction because smtplib reads a single reply after DATA while
        LMTP answers once per recipient (RFC 2033 §4.2).
        """
        targets = [recipients] if isinstance(recipients, str) else list(recipients)
        with smtplib.LMTP(self.imap_host, self.lmtp_port, timeout=10) as lmtp:
            for recipient in targets:
                lmtp.sendmail(sender or "<>", [recipient.strip().lower()], crlf(raw))

    def uids(self, email: str, mailbox: str) -> list[int]:
        """UIDs of the messages in ``mailbox``, ascending."""
        with self.imap(email) as connection:
            self._select(connection, mailbox, readonly=True)
            _, data = connection.uid("SEARCH", "ALL")
        return sorted(int(uid) for uid in (data[0] or b"").split()) if data else []

    def fetch_all(self, email: str, mailbox: str) -> list[bytes]:
        """The raw messages in ``mailbox`` in UID order (without setting \\Seen)."""
        return [raw for _, raw in self.fetch_with_uids(email, mailbox)]

    def fetch_with_uids(self, email: str, mailbox: str) -> list[tuple[int, bytes]]:
        """(UID, raw message) pairs in ``mailbox`` in UID order (without setting \\Seen)."""
        with self.imap(email) as connection:
            exists = self._select(connection, mailbox, readonly=True)
            if exists == 0:
                return []
            _, data = connection.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
        messages: list[tuple[int, bytes]] = []
        for item in data:
            if isinstance(item, tuple):
                match = _FETCH_UID.search(item[0])
                if match is not None:
                    messages.append((int(match[1]), item[1]))
        return sorted(messages)

    def flags(self, email: str, mailbox: str, uid: int) -> frozenset[str]:
        """The flags of message ``uid`` in ``mailbox``."""
        with self.imap(email) as connection:
            self._select(connection, mailbox, readonly=True)
            _, data = connection.uid("FETCH", str(uid), "(FLAGS)")
        text = b" ".join(item for item in data if isinstance(item, bytes)).decode()
        match = re.search(r"FLAGS \(([^)]*)\)", text)
        return frozenset(match[1].split()) if match else frozenset()

    def expunge(self, email: str, mailbox: str, uids: Iterable[int]) -> None:
        """Delete messages ``uids`` from ``mailbox`` for good (\\Deleted + UID EXPUNGE)."""
        uid_set = _uid_set(uids)
        with self.imap(email) as connection:
            self._select(connection, mailbox, readonly=False)
            connection.uid("STORE", uid_set, "+FLAGS.SILENT", "(\\Deleted)")
            self._ok(connection.uid("EXPUNGE", uid_set), "UID EXPUNGE")

    def move(self, email: str, mailbox: str, uids: Iterable[int], destination: str) -> None:
        """Move messages ``uids`` from ``mailbox`` to ``destination`` (RFC 6851 UID MOVE)."""
        with self.imap(email) as connection:
            self._select(connection, mailbox, readonly=False)
            self._ok(connection.uid("MOVE", _uid_set(uids), _quoted(destination)), "UID MOVE")

    @staticmethod
    def _select(connection: imaplib.IMAP4, mailbox: str, *, readonly: bool) -> int:
        status, data = connection.select(_quoted(mailbox), readonly=readonly)
        if status != "OK":
            raise imaplib.IMAP4.error(f"cannot select {mailbox}: {data!r}")
        first = data[0]
        return int(first) if isinstance(first, bytes) else 0

    @staticmethod
    def _ok(response: tuple[str, list[bytes | tuple[bytes, bytes] | None]], what: str) -> None:
        status, data = response
        if status != "OK":
            raise imaplib.IMAP4.error(f"{what} failed: {data!r}")
