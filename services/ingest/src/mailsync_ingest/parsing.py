"""Turning raw RFC 5322 bytes into the normalized fields an ingested event carries (R10).

Parsing never raises: a message whose structure or charset defeats the parser still yields
what could be read, with `parse_error` saying what went wrong, and the raw bytes are kept in
the raw store regardless. Unknown or mislabelled charsets fall back to a lossless-enough
decode instead of failing the message.
"""

from __future__ import annotations

import codecs
import email
import email.policy
import email.utils
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage, Message

SNIPPET_LENGTH = 200
_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
_WHITESPACE = re.compile(r"\s+")

# Labels that mail clients write but Python's codec registry does not know, mapped to the
# superset actually used on the wire (WHATWG encoding standard makes the same choices).
_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "iso-8859-8-i": "iso-8859-8",
    "windows-874": "cp874",
    "x-mac-roman": "mac_roman",
    "unicode-1-1-utf-7": "utf-7",
    "utf8": "utf-8",
}


@dataclass(frozen=True, slots=True)
class Participant:
    email: str
    name: str | None


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    filename: str | None
    content_type: str
    size: int
    content_id: str | None


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    subject: str
    sent_at: datetime | None
    sender: Participant | None
    to: tuple[Participant, ...]
    cc: tuple[Participant, ...]
    bcc: tuple[Participant, ...]
    reply_to: tuple[Participant, ...]
    snippet: str
    has_html: bool
    attachments: tuple[AttachmentInfo, ...]
    parse_errors: tuple[str, ...] = field(default=())

    @property
    def parse_error(self) -> str | None:
        return "; ".join(self.parse_errors) if self.parse_errors else None


def parse_message(raw: bytes) -> ParsedMessage:
    errors: list[str] = []
    message = email.message_from_bytes(raw, policy=email.policy.default)
    if message.defects:
        errors.extend(type(defect).__name__ for defect in message.defects)
    text, has_html, attachments = _walk_body(message, errors)
    return ParsedMessage(
        message_id=_first_message_id(_header(message, "Message-ID", errors)),
        in_reply_to=_first_message_id(_header(message, "In-Reply-To", errors)),
        references=tuple(_MESSAGE_ID.findall(_header(message, "References", errors))),
        subject=_WHITESPACE.sub(" ", _header(message, "Subject", errors)).strip(),
        sent_at=_date(_header(message, "Date", errors)),
        sender=next(iter(_addresses(message, "From", errors)), None),
        to=_addresses(message, "To", errors),
        cc=_addresses(message, "Cc", errors),
        bcc=_addresses(message, "Bcc", errors),
        reply_to=_addresses(message, "Reply-To", errors),
        snippet=_WHITESPACE.sub(" ", text).strip()[:SNIPPET_LENGTH],
        has_html=has_html,
        attachments=tuple(attachments),
        parse_errors=tuple(dict.fromkeys(errors)),
    )


def _header(message: Message, name: str, errors: list[str]) -> str:
    try:
        value = message.get(name)
    except Exception as exc:  # the header registry raises on some malformed headers
        errors.append(f"unreadable {name} header: {type(exc).__name__}")
        raw = message.get_all(name, failobj=[])
        return str(raw[0]) if raw else ""
    return "" if value is None else str(value)


def _first_message_id(value: str) -> str | None:
    match = _MESSAGE_ID.search(value)
    if match:
        return match.group(1)
    stripped = value.strip()
    return stripped or None


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _addresses(message: Message, name: str, errors: list[str]) -> tuple[Participant, ...]:
    try:
        header = message.get(name)
    except Exception as exc:
        errors.append(f"unreadable {name} header: {type(exc).__name__}")
        header = None
    if header is None:
        return ()
    found: list[Participant] = []
    addresses: tuple[Address, ...] = getattr(header, "addresses", ())
    for address in addresses:
        if not address.username or not address.domain:
            continue
        found.append(
            Participant(
                email=f"{address.username}@{address.domain}",
                name=address.display_name or None,
            )
        )
    if not addresses:
        # Fall back to the forgiving parser for headers the strict registry gave up on.
        for display, addr in email.utils.getaddresses([str(header)]):
            if "@" in addr:
                found.append(Participant(email=addr, name=display or None))
    return tuple(found)


def decode_text(payload: bytes, charset: str | None) -> str:
    """Decode a body part whatever its label says; never raises."""
    label = (charset or "us-ascii").strip().strip('"').lower()
    label = _CHARSET_ALIASES.get(label, label)
    try:
        codecs.lookup(label)
    except LookupError:
        label = "utf-8"
    try:
        return payload.decode(label)
    except UnicodeDecodeError:
        return payload.decode(label if label != "us-ascii" else "utf-8", errors="replace")


def _walk_body(message: EmailMessage, errors: list[str]) -> tuple[str, bool, list[AttachmentInfo]]:
    text = ""
    html = ""
    attachments: list[AttachmentInfo] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        disposition = part.get_content_disposition()
        try:
            payload = part.get_payload(decode=True)
        except Exception as exc:
            errors.append(f"undecodable {content_type} part: {type(exc).__name__}")
            continue
        data = payload if isinstance(payload, bytes) else b""
        if disposition == "attachment" or (
            not content_type.startswith("text/") and content_type != "message/rfc822"
        ):
            attachments.append(
                AttachmentInfo(
                    filename=_filename(part, errors),
                    content_type=content_type,
                    size=len(data),
                    content_id=_first_message_id(str(part.get("Content-ID", ""))),
                )
            )
            continue
        if content_type == "text/plain" and not text:
            text = decode_text(data, part.get_content_charset())
        elif content_type == "text/html" and not html:
            html = decode_text(data, part.get_content_charset())
    if not text and html:
        text = re.sub(r"<[^>]+>", " ", re.sub(r"(?is)<(script|style).*?</\1>", " ", html))
    return text, bool(html), attachments


def _filename(part: Message, errors: list[str]) -> str | None:
    try:
        return part.get_filename()
    except Exception as exc:
        errors.append(f"unreadable attachment filename: {type(exc).__name__}")
        return None
