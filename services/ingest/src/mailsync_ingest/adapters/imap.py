"""A small, typed face over aioimaplib for what the sync needs: login, select, fetch by UID.

Every server answer that is not OK becomes an `ImapError` carrying the server's words, and an
authentication refusal becomes `ImapAuthenticationFailed` so the sync can stop that account
(R5) instead of retrying a wrong password forever.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Self

import aioimaplib

Security = Literal["tls", "starttls", "plain"]

# RFC 3501 §9: keywords are case-insensitive; aioimaplib strips the leading "* ".
_FETCH_HEAD = re.compile(rb"^\d+ FETCH \(", re.IGNORECASE)
_UID = re.compile(rb"\bUID (\d+)", re.IGNORECASE)
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)", re.IGNORECASE)
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_UIDNEXT = re.compile(rb"UIDNEXT (\d+)")
_EXISTS = re.compile(rb"^(\d+) EXISTS")


class ImapError(RuntimeError):
    """The server refused a command or the connection broke."""


class ImapAuthenticationFailed(ImapError):
    """The server rejected the credentials."""


@dataclass(frozen=True, slots=True)
class FolderStatus:
    uidvalidity: int
    uidnext: int | None
    exists: int


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
    """One logged-in IMAP connection; use as `async with ImapSession.open(...) as s:`."""

    def __init__(self, client: aioimaplib.IMAP4) -> None:
        self._client = client

    @classmethod
    async def open(
        cls, endpoint: ImapEndpoint, username: str, password: str, timeout_seconds: float
    ) -> Self:
        if endpoint.security == "tls":
            # Default context: certificate and host name verified against the system store.
            client = aioimaplib.IMAP4_SSL(
                endpoint.host,
                endpoint.port,
                timeout=timeout_seconds,
                ssl_context=ssl.create_default_context(),
            )
        elif endpoint.security == "plain":
            client = aioimaplib.IMAP4(endpoint.host, endpoint.port, timeout=timeout_seconds)
        else:
            raise ImapError("STARTTLS is not supported yet; use implicit TLS (port 993)")
        try:
            await client.wait_hello_from_server()
        except (OSError, TimeoutError) as exc:
            raise ImapError(f"cannot reach {endpoint.host}:{endpoint.port}: {exc}") from exc
        response = await client.login(username, password)
        if response.result != "OK":
            await _close_quietly(client)
            raise ImapAuthenticationFailed(_text(response.lines) or "login refused")
        return cls(client)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await _close_quietly(self._client)

    async def select(self, folder: str) -> FolderStatus:
        response = await self._client.select(_quote(folder))
        _check(response, f"SELECT {folder}")
        uidvalidity = uidnext = None
        exists = 0
        for line in _byte_lines(response.lines):
            if m := _UIDVALIDITY.search(line):
                uidvalidity = int(m.group(1))
            if m := _UIDNEXT.search(line):
                uidnext = int(m.group(1))
            if m := _EXISTS.match(line):
                exists = int(m.group(1))
        if uidvalidity is None:
            raise ImapError(f"SELECT {folder}: the server sent no UIDVALIDITY")
        return FolderStatus(uidvalidity, uidnext, exists)

    async def fetch(self, uids: list[int]) -> list[FetchedMessage]:
        """The given messages with their flags and full raw bytes, by ascending UID."""
        if not uids:
            return []
        response = await self._client.uid(
            "fetch", ",".join(str(uid) for uid in uids), "(UID FLAGS BODY.PEEK[])"
        )
        _check(response, "UID FETCH")
        wanted = set(uids)
        return sorted(
            (m for m in _parse_fetch(response.lines) if m.uid in wanted), key=lambda m: m.uid
        )

    async def uids_from(self, first_uid: int) -> list[int]:
        # RFC 3501 §6.4.8: "n:*" always includes the highest UID, even below n; filter it.
        response = await self._client.uid_search(f"UID {first_uid}:*")
        _check(response, "UID SEARCH")
        found: list[int] = []
        # aioimaplib strips "* SEARCH"; the last line is the tagged completion text.
        for line in _byte_lines(response.lines[:-1]):
            found.extend(int(tok) for tok in line.removeprefix(b"SEARCH").split() if tok.isdigit())
        return sorted(uid for uid in found if uid >= first_uid)


def _parse_fetch(lines: list[bytes | bytearray]) -> list[FetchedMessage]:
    """Messages in aioimaplib's split of a FETCH answer: for each message, the line up to the
    literal's `{size}`, the literal itself, then the rest of the line (`)` or ` UID 7)`: a
    server may send attributes after the literal). Unsolicited FETCH lines without a literal
    (flag updates) are skipped."""
    messages: list[FetchedMessage] = []
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
            flags = _FLAGS.search(attributes)
            if uid is not None:
                messages.append(
                    FetchedMessage(
                        uid=int(uid.group(1)),
                        # Flags are atoms (ASCII); a server sending other bytes is not our crash.
                        flags=tuple(flags.group(1).decode("ascii", "replace").split())
                        if flags
                        else (),
                        raw=literal,
                    )
                )
            continue
        index += 1
    return messages


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


async def _close_quietly(client: aioimaplib.IMAP4) -> None:
    try:
        await client.logout()
    except Exception:
        # The connection is going away either way; a failed LOGOUT changes nothing.
        return
