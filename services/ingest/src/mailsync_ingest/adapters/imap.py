"""A small, typed face over aioimaplib for what the sync needs: login (implicit TLS, STARTTLS
or loopback plaintext), folder listing, SELECT with CONDSTORE/QRESYNC (RFC 7162), STATUS, UID
SEARCH, two-phase UID FETCH (summaries, then bodies), and IDLE (RFC 2177).

Every server answer that is not OK becomes an `ImapError` carrying the server's words, and an
authentication refusal becomes `ImapAuthenticationFailed` so the sync can stop that account
(R5) instead of retrying a wrong password forever. TLS always verifies the certificate and the
host name against the system trust store.

Timeouts are `asyncio.timeout` blocks, never `asyncio.wait_for`: on Python 3.11 `wait_for`
returns the inner result when the command completes just as the caller is cancelled, which
swallows the cancellation (CPython gh-86296) and leaves a sync running after its replica
stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Self

import aioimaplib

Security = Literal["tls", "starttls", "plain"]

# RFC 3501 §9: keywords are case-insensitive; aioimaplib strips the leading "* ".
_FETCH_HEAD = re.compile(rb"^\d+ FETCH \(", re.IGNORECASE)
_UID = re.compile(rb"\bUID (\d+)", re.IGNORECASE)
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)", re.IGNORECASE)
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)", re.IGNORECASE)
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)", re.IGNORECASE)
_UIDNEXT = re.compile(rb"UIDNEXT (\d+)", re.IGNORECASE)
_HIGHESTMODSEQ = re.compile(rb"HIGHESTMODSEQ (\d+)", re.IGNORECASE)
_MESSAGES = re.compile(rb"MESSAGES (\d+)", re.IGNORECASE)
_EXISTS = re.compile(rb"^(\d+) EXISTS", re.IGNORECASE)
_VANISHED = re.compile(rb"^VANISHED (?:\(EARLIER\) )?([\d:,]+)", re.IGNORECASE)
# Untagged responses during IDLE that mean the mailbox changed (RFC 2177, RFC 7162 §3.2.10);
# "OK Still here" keep-alives do not.
_CHANGE = re.compile(rb"^(?:\d+ (?:EXISTS|EXPUNGE|FETCH)|VANISHED)", re.IGNORECASE)
_MESSAGE_ID = re.compile(rb"<([^<>\s]+)>")
_FOLD = re.compile(rb"\r?\n[ \t]+")

# How long a FETCH may stay silent per megabyte it asked for, on top of the base timeout.
_SECONDS_PER_MB = 2.0


class ImapError(RuntimeError):
    """The server refused a command or the connection broke."""


class ImapAuthenticationFailed(ImapError):
    """The server rejected the credentials."""


@dataclass(frozen=True, slots=True)
class FolderStatus:
    """What SELECT (or STATUS) said about a folder. `vanished` is only filled by a QRESYNC
    SELECT: the UIDs expunged since the modseq the client gave (RFC 7162 §3.2.5.1)."""

    uidvalidity: int
    uidnext: int | None
    exists: int
    highestmodseq: int | None = None
    vanished: tuple[int, ...] = ()

    @property
    def fingerprint(self) -> tuple[int, int | None, int, int | None]:
        """Equal fingerprints: nothing was added, removed or changed in between."""
        return (self.uidvalidity, self.uidnext, self.exists, self.highestmodseq)


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """Phase one of a fetch: enough to decide whether the body is needed at all."""

    uid: int
    flags: tuple[str, ...]
    size: int
    message_id: str | None


@dataclass(frozen=True, slots=True)
class FetchedMessage:
    uid: int
    flags: tuple[str, ...]
    raw: bytes


@dataclass(frozen=True, slots=True)
class ImapEndpoint:
    host: str
    port: int
    security: Security


class ImapSession:
    """One logged-in IMAP connection; use as `async with await ImapSession.open(...) as s:`."""

    def __init__(self, client: aioimaplib.IMAP4, timeout_seconds: float) -> None:
        self._client = client
        self._timeout = timeout_seconds
        self.selected: str | None = None
        self.qresync = False
        self.condstore = False

    @classmethod
    async def open(
        cls,
        endpoint: ImapEndpoint,
        username: str,
        password: str,
        timeout_seconds: float,
        tls: ssl.SSLContext | None = None,
    ) -> Self:
        """Connect, secure (per `endpoint.security`) and log in. `tls` defaults to the system
        trust store with certificate and host-name checks (see `tls_context`)."""
        context = tls or tls_context()
        client = _Client(
            endpoint.host,
            endpoint.port,
            timeout=timeout_seconds,
            ssl_context=context if endpoint.security == "tls" else None,
        )
        try:
            await client.wait_hello_from_server()
            if endpoint.security == "starttls":
                await _starttls(client, endpoint.host, context, timeout_seconds)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            await _close_quietly(client)
            raise ImapError(f"cannot reach {endpoint.host}:{endpoint.port}: {exc}") from exc
        response = await client.login(username, password)
        if response.result != "OK":
            await _close_quietly(client)
            raise ImapAuthenticationFailed(_text(response.lines) or "login refused")
        session = cls(client, timeout_seconds)
        client.protocol.conn_lost_cb = functools.partial(_fail_pending, client)
        await session._enable_extensions()
        return session

    async def _enable_extensions(self) -> None:
        # Servers may announce more after login (RFC 3501 §6.2.3): ask again.
        protocol = self._client.protocol
        await protocol.capability()
        protocol.capabilities = _shared_capabilities(frozenset(protocol.capabilities))
        if self.has("QRESYNC") and self.has("ENABLE"):
            response = await self._client.enable("QRESYNC")
            self.qresync = self.condstore = response.result == "OK"
        elif self.has("CONDSTORE") and self.has("ENABLE"):
            response = await self._client.enable("CONDSTORE")
            self.condstore = response.result == "OK"

    def has(self, capability: str) -> bool:
        return bool(self._client.has_capability(capability))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await _close_quietly(self._client)
        else:
            # Cancelled (shutdown, lease lost) or broken: no goodbye that could wait on a
            # pending IDLE or a dead peer; the server notices the closed socket.
            _drop(self._client)

    async def list_folders(self) -> list[bytes]:
        """The raw lines of `LIST "" "*"` (folders.parse_list_response reads them)."""
        response = await self._client.list('""', '"*"')
        _check(response, "LIST")
        return _byte_lines(response.lines)

    async def select(
        self, folder: str, known: tuple[int, int] | None = None, *, readonly: bool = True
    ) -> FolderStatus:
        """SELECT (EXAMINE when `readonly`: ingest never changes the mailbox, not even the
        \\Seen flag). With QRESYNC and `known` = (uidvalidity, modseq) from the last sync, the
        answer includes the UIDs expunged since then."""
        argument = _quote(folder)
        if self.qresync and known is not None:
            argument += f" (QRESYNC ({known[0]} {known[1]}))"
        elif self.condstore:
            argument += " (CONDSTORE)"
        command = "EXAMINE" if readonly else "SELECT"
        async with asyncio.timeout(self._timeout):
            response = await self._client.protocol.execute(
                aioimaplib.Command(command, self._client.protocol.new_tag(), argument)
            )
        _check(response, f"{command} {folder}")
        if command == "EXAMINE":
            # aioimaplib only tracks the state for its own select(); EXAMINE selects too.
            self._client.protocol.state = aioimaplib.SELECTED
        self.selected = folder
        lines = _byte_lines(response.lines)
        status = _folder_status(lines)
        if status is None:
            raise ImapError(f"{command} {folder}: the server sent no UIDVALIDITY")
        vanished: list[int] = []
        for line in lines:
            if m := _VANISHED.match(line):
                vanished.extend(expand_uid_set(m.group(1).decode()))
        return FolderStatus(
            status.uidvalidity,
            status.uidnext,
            status.exists,
            status.highestmodseq,
            tuple(sorted(set(vanished))),
        )

    async def status(self, folder: str) -> FolderStatus:
        """STATUS of a folder without selecting it: cheap check whether it changed."""
        items = "(MESSAGES UIDNEXT UIDVALIDITY" + (" HIGHESTMODSEQ)" if self.condstore else ")")
        response = await self._client.status(_quote(folder), items)
        _check(response, f"STATUS {folder}")
        status = _folder_status(_byte_lines(response.lines), messages=True)
        if status is None:
            raise ImapError(f"STATUS {folder}: the server sent no UIDVALIDITY")
        return status

    async def search(self, criteria: str) -> list[int]:
        """UIDs matching `criteria` (UID SEARCH), ascending."""
        response = await self._client.uid_search(criteria, charset=None)
        _check(response, "UID SEARCH")
        found: list[int] = []
        # aioimaplib strips "* SEARCH " (only "* " from some servers' answers); the last line
        # is the tagged completion text.
        for line in _byte_lines(response.lines[:-1]):
            found.extend(int(tok) for tok in line.split() if tok.isdigit())
        return sorted(set(found))

    async def uids_from(self, first_uid: int) -> list[int]:
        # RFC 3501 §6.4.8: "n:*" always includes the highest UID, even below n; filter it.
        return [uid for uid in await self.search(f"UID {first_uid}:*") if uid >= first_uid]

    async def summaries(self, uids: Sequence[int]) -> list[MessageSummary]:
        """Flags, size and Message-ID of the given messages, by ascending UID."""
        if not uids:
            return []
        response = await self._uid_fetch(
            uids, "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])", self._timeout
        )
        wanted = set(uids)
        summaries = []
        for uid, attributes, literal in _fetch_items(response.lines):
            size = _SIZE.search(attributes)
            if uid in wanted and size is not None:
                summaries.append(
                    MessageSummary(
                        uid, _flags(attributes), int(size.group(1)), _message_id(literal)
                    )
                )
        return sorted(summaries, key=lambda s: s.uid)

    async def fetch(
        self, uids: Sequence[int], *, header_only: bool = False, expected_bytes: int = 0
    ) -> list[FetchedMessage]:
        """The given messages with their flags and full raw bytes (or only their header
        section), by ascending UID."""
        if not uids:
            return []
        section = "BODY.PEEK[HEADER]" if header_only else "BODY.PEEK[]"
        response = await self._uid_fetch(
            uids,
            f"(UID FLAGS {section})",
            self._timeout + _SECONDS_PER_MB * expected_bytes / 1_000_000,
        )
        wanted = set(uids)
        return sorted(
            (
                FetchedMessage(uid, _flags(attributes), literal)
                for uid, attributes, literal in _fetch_items(response.lines)
                if uid in wanted
            ),
            key=lambda m: m.uid,
        )

    async def _uid_fetch(
        self, uids: Sequence[int], items: str, deadline_seconds: float
    ) -> aioimaplib.Response:
        """UID FETCH through `_Fetch`; silent for `self._timeout` or running past
        `deadline_seconds` in all is an error."""
        protocol = self._client.protocol
        command = _Fetch(
            protocol.new_tag(),
            compress_uid_set(uids),
            items,
            prefix="UID",
            loop=protocol.loop,
            timeout=self._timeout,
        )
        async with asyncio.timeout(deadline_seconds):
            response: aioimaplib.Response = await protocol.execute(command)
        _check(response, "UID FETCH")
        return response

    async def idle(self, seconds: float) -> bool:
        """Wait in IDLE for up to `seconds`; True when the server reported a change. The
        caller re-issues it well before the server's inactivity timeout (RFC 2177: 29 min)."""
        client = self._client
        idle = await client.idle_start(timeout=seconds)
        changed = False
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + seconds
            while not changed:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    # The queue itself, not `wait_server_push`: its `wait_for` would keep one
                    # more task per idle account alive for the whole IDLE.
                    async with asyncio.timeout(remaining):
                        pushed = await client.protocol.idle_queue.get()
                except TimeoutError:
                    break
                if pushed == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    break
                if pushed == _CONNECTION_LOST:
                    raise ImapError("the server closed the connection during IDLE")
                changed = any(_CHANGE.match(bytes(line)) for line in pushed)
        except BaseException:
            _drop(client)
            raise
        if client.has_pending_idle():
            client.idle_done()
        async with asyncio.timeout(self._timeout):
            await idle
        return changed


class _Protocol(aioimaplib.IMAP4ClientProtocol):  # type: ignore[misc]
    """aioimaplib's protocol with two changes.

    - Nothing is formatted for debug log lines that are off: aioimaplib formats every chunk
      it sends and receives, which took a third of the event loop's time while fetching
      bodies.
    - A command sent after the connection died fails at once. `_fail_pending` ends the
      commands already waiting for an answer, but a command still queued behind them (the
      next FETCH of a pipelined batch) would otherwise be written to a closed socket and
      wait out its whole timeout before the sync reconnects.
    """

    incomplete_line: bytes
    current_command: aioimaplib.Command | None
    lost = False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        super().connection_lost(exc)

    def send(self, line: str, scrub: str | None = None) -> None:
        if self.lost or self.transport is None or self.transport.is_closing():
            raise ImapError("the connection is lost")
        self.transport.write(f"{line}\r\n".encode())

    def data_received(self, d: bytes) -> None:
        try:
            self._handle_responses(
                self.incomplete_line + d, self._handle_line, self.current_command
            )
            self.incomplete_line = b""
            self.current_command = None
        except aioimaplib.IncompleteRead as incomplete_read:
            self.current_command = incomplete_read.cmd
            self.incomplete_line = incomplete_read.data


class _Fetch(aioimaplib.FetchCommand):  # type: ignore[misc]
    """A FETCH whose "is this item complete?" check looks at the current item only.

    aioimaplib's scans every line received so far for the last `n FETCH (` line on each
    line it reads, which is quadratic in the number of messages a FETCH returns."""

    def wait_data(self) -> bool:
        lines = self._resp_lines
        start = len(lines) - 1
        while start > 0:
            line = lines[start]
            if isinstance(line, bytes) and self.FETCH_MESSAGE_DATA_RE.match(line):
                break
            start -= 1
        current = b"".join(line for line in lines[max(start, 0) :] if isinstance(line, bytes))
        return current.count(b"(") != current.count(b")")


class _Client(aioimaplib.IMAP4):  # type: ignore[misc]
    """`aioimaplib.IMAP4` (TLS when given an `ssl_context`) speaking through `_Protocol`."""

    def create_client(
        self,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop | None,
        conn_lost_cb: Callable[[Exception | None], None] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        local_loop = loop if loop is not None else asyncio.get_running_loop()
        self.protocol = _Protocol(local_loop, conn_lost_cb)
        self._client_task = local_loop.create_task(
            local_loop.create_connection(lambda: self.protocol, host, port, ssl=ssl_context)
        )


@functools.cache
def tls_context(extra_ca_file: str | None = None) -> ssl.SSLContext:
    """Certificates and host names verified against the system trust store, plus an extra
    CA (a company's private CA for its own IMAP server) when one is configured. One shared
    context: loading the trust store costs memory that a thousand sessions need not repeat."""
    context = ssl.create_default_context()
    if extra_ca_file:
        context.load_verify_locations(cafile=extra_ca_file)
    return context


@functools.lru_cache(maxsize=64)
def _shared_capabilities(capabilities: frozenset[str]) -> frozenset[str]:
    """One set per distinct CAPABILITY answer: a thousand sessions to one server would
    otherwise each keep their own ~40 names (about 4 KiB an account)."""
    return capabilities


def expand_uid_set(text: str) -> list[int]:
    """`1:3,7` → [1, 2, 3, 7] (RFC 3501 sequence-set of UIDs, as VANISHED reports them)."""
    uids: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition(":")
        if not low.isdigit() or (high and not high.isdigit()):
            continue
        first, last = int(low), int(high or low)
        uids.extend(range(min(first, last), max(first, last) + 1))
    return uids


def compress_uid_set(uids: Sequence[int]) -> str:
    """[1, 2, 3, 7] → `1:3,7`: short commands even for thousands of UIDs."""
    ordered = sorted(set(uids))
    ranges: list[str] = []
    start = previous = ordered[0]
    for uid in ordered[1:]:
        if uid != previous + 1:
            ranges.append(f"{start}:{previous}" if previous != start else str(start))
            start = uid
        previous = uid
    ranges.append(f"{start}:{previous}" if previous != start else str(start))
    return ",".join(ranges)


def _folder_status(lines: list[bytes], *, messages: bool = False) -> FolderStatus | None:
    """Read a SELECT answer (EXISTS) or, with `messages`, a STATUS answer (MESSAGES)."""
    uidvalidity = uidnext = highestmodseq = None
    exists = 0
    for line in lines:
        if m := _UIDVALIDITY.search(line):
            uidvalidity = int(m.group(1))
        if m := _UIDNEXT.search(line):
            uidnext = int(m.group(1))
        if m := _HIGHESTMODSEQ.search(line):
            highestmodseq = int(m.group(1))
        if m := (_MESSAGES.search(line) if messages else _EXISTS.match(line)):
            exists = int(m.group(1))
    if uidvalidity is None:
        return None
    return FolderStatus(uidvalidity, uidnext, exists, highestmodseq)


def _parse_fetch(lines: list[bytes | bytearray]) -> list[FetchedMessage]:
    return [
        FetchedMessage(uid, _flags(attrs), literal) for uid, attrs, literal in _fetch_items(lines)
    ]


def _fetch_items(lines: list[bytes | bytearray]) -> list[tuple[int, bytes, bytes]]:
    """(uid, attribute text, literal) per message in aioimaplib's split of a FETCH answer:
    for each message, the line up to the literal's `{size}`, the literal itself, then the rest
    of the line (`)` or ` UID 7)`: a server may send attributes after the literal).
    Unsolicited FETCH lines without a literal (flag updates) are skipped."""
    messages: list[tuple[int, bytes, bytes]] = []
    index = 0
    while index < len(lines):
        line = bytes(lines[index])
        if _FETCH_HEAD.match(line) and line.endswith(b"}") and index + 1 < len(lines):
            literal = bytes(lines[index + 1])
            tail = bytes(lines[index + 2]) if index + 2 < len(lines) else b""
            if _FETCH_HEAD.match(tail):
                tail = b""  # no rest-of-line: the next message starts here
                index += 2
            else:
                index += 3
            attributes = line + b" " + tail
            uid = _UID.search(attributes)
            if uid is not None:
                messages.append((int(uid.group(1)), attributes, literal))
            continue
        index += 1
    return messages


def _flags(attributes: bytes) -> tuple[str, ...]:
    found = _FLAGS.search(attributes)
    # Flags are atoms (ASCII); a server sending other bytes is not our crash.
    return tuple(found.group(1).decode("ascii", "replace").split()) if found else ()


def _message_id(header: bytes) -> str | None:
    """The Message-ID from a `HEADER.FIELDS (MESSAGE-ID)` literal, as the parser reads it."""
    unfolded = _FOLD.sub(b" ", header)
    for line in unfolded.splitlines():
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"message-id":
            found = _MESSAGE_ID.search(value)
            return found.group(1).decode("ascii", "replace") if found else None
    return None


async def _starttls(
    client: aioimaplib.IMAP4, host: str, context: ssl.SSLContext, timeout: float
) -> None:
    """RFC 3501 §6.2.1 / RFC 2595: upgrade the plaintext connection before anything secret is
    sent; a server that refuses STARTTLS is refused in turn (no silent plaintext fallback)."""
    protocol = client.protocol
    async with asyncio.timeout(timeout):
        response = await protocol.execute(aioimaplib.Command("STARTTLS", protocol.new_tag()))
    if response.result != "OK":
        raise ImapError(f"STARTTLS refused: {_text(response.lines)}")
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        transport = await loop.start_tls(
            protocol.transport, protocol, context, server_hostname=host
        )
    if transport is None:
        raise ImapError("STARTTLS: the TLS handshake did not complete")
    protocol.transport = transport
    # RFC 3501 §6.2.1: capabilities learnt before TLS must be discarded.
    await protocol.capability()


def _quote(folder: str) -> str:
    escaped = folder.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _byte_lines(lines: list[bytes | bytearray]) -> list[bytes]:
    return [bytes(line) for line in lines]


def _text(lines: list[bytes | bytearray]) -> str:
    return " ".join(bytes(line).decode(errors="replace") for line in lines).strip()


def _check(response: aioimaplib.Response, what: str) -> None:
    if response.result != "OK":
        raise ImapError(f"{what} failed: {_text(response.lines)}")


# Put in the IDLE queue when the socket dies: a dead connection sends no more pushes.
_CONNECTION_LOST = [b"mailsync: connection lost"]


def _fail_pending(client: aioimaplib.IMAP4, _exc: Exception | None) -> None:
    """The socket is gone: end every command still waiting for an answer now, rather than
    after its timeout, so the sync reconnects at once (a server restart, a network cut)."""
    protocol = client.protocol
    pending = [protocol.pending_sync_command, *protocol.pending_async_commands.values()]
    for command in pending:
        if command is not None and command.name != "IDLE":
            command.close(b"connection lost", result="BYE")
    protocol.idle_queue.put_nowait(_CONNECTION_LOST)


def _drop(client: aioimaplib.IMAP4) -> None:
    """Close the socket now and forget aioimaplib's pending work."""
    for task in list(client.tasks):
        task.cancel()
    transport = getattr(client.protocol, "transport", None)
    if transport is not None:
        transport.close()


async def _close_quietly(client: aioimaplib.IMAP4) -> None:
    # The connection is going away either way; a failed LOGOUT changes nothing.
    with contextlib.suppress(Exception):
        async with asyncio.timeout(5):
            await client.logout()
    transport = getattr(client.protocol, "transport", None)
    if transport is not None:
        transport.close()
