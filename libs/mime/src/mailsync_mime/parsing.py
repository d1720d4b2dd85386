"""Turning raw RFC 5322 bytes into the normalized fields an ingested event carries (R10).

Invariants:
- `parse_message` never raises: a message whose structure or charset defeats the parser still
  yields what could be read, with `parse_errors` saying what went wrong or was guessed, and the
  raw bytes are kept in the raw store regardless;
- every string it returns is valid Unicode without C0 control characters (no lone surrogates,
  no NUL), so the event always serializes to JSON and always fits a Postgres `text` column;
- charset labels are read the way mail is actually written: a label names the superset
  mailers use (WHATWG Encoding Standard), and undeclared or unknown-labelled 8-bit text is
  decoded as UTF-8 when it is valid UTF-8, else as windows-1252, and the guess is reported.

Headers are read from their raw bytes rather than through the stdlib header registry, because
the registry decodes RFC 2047 words with Python's codec names (so GBK text labelled GB2312
breaks) and leaves undeclared 8-bit bytes as lone surrogates.

The MIME tree is the stdlib parser's (`email.parser`, compat32). `_read_structure` builds the
same tree about five times faster on real mail (it finds delimiters with `str.find` rather
than walking every line of every attachment) and declines, to the stdlib parser, every message
it might read differently; tests/unit/test_ingest_nasty_mime.py holds it to that. Rust-backed
parsers were measured and not used: they split damaged MIME differently, drop a cut-off
attachment's bytes without a defect, and hand part headers back already decoded with their own
charset rules (unknown labels become U+FFFD, raw 8-bit header bytes are lost).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email
import email.message
import email.parser
import email.policy
import email.utils
import html
import itertools
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.message import Message
from typing import TypeVar, overload

_T = TypeVar("_T")

SNIPPET_LENGTH = 200
# Enough text to find 200 readable characters in any real message, and a bound on the work a
# hostile multi-megabyte body can cause.
_TEXT_SCAN_LIMIT = 100_000
_HTML_SCAN_LIMIT = 500_000
# Deeper MIME trees are left to the stdlib parser (and its recursion limit).
_STRUCTURE_DEPTH = 32
# email.feedparser's `headerRE`: a header line, a continuation, or an mbox envelope line
# (RFC 5322 §3.6.8 ftext is %d33-57 / %d59-126).
_HEADER_LINE = re.compile(r"^(From |[\041-\071\073-\176]*:|[\t ])")

_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
_WHITESPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# RFC 5322 §2.2.3: unfolding removes a CRLF that is followed by white space.
_FOLD = re.compile(r"\r?\n(?=[ \t])")
# RFC 2047 §2: =?charset?encoding?encoded-text?= (RFC 2231 §5 may add *language to charset).
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")

# Labels mapped to the codecs tried in order, strictly; the first one decodes with replacement
# characters when none fits. WHATWG maps these labels to the superset mailers actually write:
# GBK text is routinely labelled GB2312, Outlook writes windows-1252 and labels it ISO-8859-1,
# Japanese mailers use the Microsoft extensions (circled digits, ㈱) under Shift_JIS.
_CHARSET_CODECS: dict[str, tuple[str, ...]] = {
    "gb2312": ("gb18030",),
    "gb_2312-80": ("gb18030",),
    "gbk": ("gb18030",),
    "x-gbk": ("gb18030",),
    "cp936": ("gb18030",),
    "gb18030": ("gb18030",),
    "big5": ("big5hkscs", "cp950"),
    "x-x-big5": ("big5hkscs", "cp950"),
    "shift_jis": ("cp932", "shift_jis_2004"),
    "shift-jis": ("cp932", "shift_jis_2004"),
    "sjis": ("cp932", "shift_jis_2004"),
    "x-sjis": ("cp932", "shift_jis_2004"),
    "windows-31j": ("cp932",),
    "iso-2022-jp": ("iso2022_jp", "iso2022_jp_2", "iso2022_jp_ext"),
    "euc-kr": ("cp949",),
    "ks_c_5601-1987": ("cp949",),
    "iso-8859-1": ("cp1252", "latin-1"),
    "iso8859-1": ("cp1252", "latin-1"),
    "iso_8859-1": ("cp1252", "latin-1"),
    "latin1": ("cp1252", "latin-1"),
    "latin-1": ("cp1252", "latin-1"),
    "iso-8859-9": ("cp1254", "iso-8859-9"),
    "iso-8859-8-i": ("iso-8859-8",),
    "tis-620": ("cp874",),
    "iso-8859-11": ("cp874",),
    "windows-874": ("cp874",),
    "x-mac-roman": ("mac_roman",),
    "unicode-1-1-utf-7": ("utf-7",),
    "utf-8": ("utf-8-sig",),
    "utf8": ("utf-8-sig",),
}
_UNDECLARED_LABELS = frozenset({"", "us-ascii", "ascii", "us_ascii", "ansi_x3.4-1968"})
# Strict UTF-8 rarely accepts text that is not UTF-8; windows-1252 is what unlabelled 8-bit
# Western mail is; latin-1 accepts any byte and ends the search.
_UNDECLARED_CODECS = (("utf-8-sig", "UTF-8"), ("cp1252", "windows-1252"), ("latin-1", "ISO-8859-1"))

# Tags whose content is never shown, and tags that break a line when rendered.
_HIDDEN_ELEMENTS = frozenset({"script", "style", "head", "title", "template", "noscript"})
_BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    ]
)
_TAG_NAME = re.compile(r"</?([a-zA-Z][a-zA-Z0-9:-]*)")


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


class _Entity(Message):
    """A compat32 message or body part that reads a damaged boundary parameter the way the
    RFC 2045 §5.1 grammar does: `boundary="b" junk` and an unclosed `boundary="b` name `b`
    (compat32 alone would keep the quote and the junk, and find no delimiter). compat32
    rather than `policy.default` otherwise: its header registry costs half the parse, is not
    used here (headers are read from their raw values), and truncates unquoted boundaries
    such as Outlook's `----=_NextPart_000`."""

    @overload
    def get_boundary(self, failobj: None = None) -> str | None: ...
    @overload
    def get_boundary(self, failobj: _T) -> str | _T: ...
    def get_boundary(self, failobj: object = None) -> object:
        boundary = super().get_boundary(failobj)
        if isinstance(boundary, str) and boundary.startswith('"'):
            return boundary[1:].split('"', 1)[0]
        return boundary


_STDLIB_PARSER = email.parser.BytesParser(_Entity, policy=email.policy.compat32)


def parse_message(raw: bytes) -> ParsedMessage:
    """The normalized fields of one raw message; never raises (R10)."""
    try:
        return _parse(raw, headers_only=False)
    except Exception as exc:  # R10: one hostile message must never stop a mailbox's sync
        problem = f"unparseable message body: {type(exc).__name__}"
    try:
        # The body defeated the parser (e.g. MIME nested thousands deep): keep the headers.
        parsed = _parse(raw, headers_only=True)
        return replace(parsed, parse_errors=(problem, *parsed.parse_errors))
    except Exception as exc:
        return ParsedMessage(
            message_id=None,
            in_reply_to=None,
            references=(),
            subject="",
            sent_at=None,
            sender=None,
            to=(),
            cc=(),
            bcc=(),
            reply_to=(),
            snippet="",
            has_html=False,
            attachments=(),
            parse_errors=(problem, f"unparseable message headers: {type(exc).__name__}"),
        )


@dataclass(frozen=True, slots=True)
class _Reading:
    """One message as `_parse` read it: the normalized fields, the MIME tree they came from,
    and the body part behind each of `parsed.attachments`, in the same order (the bodies
    module addresses attachments through it, so an index means the same in both)."""

    parsed: ParsedMessage
    tree: Message
    attachment_parts: tuple[Message, ...]


def _parse(raw: bytes, *, headers_only: bool) -> ParsedMessage:
    return _read(raw, headers_only=headers_only).parsed


def _read(raw: bytes, *, headers_only: bool) -> _Reading:
    errors: list[str] = []
    message = None if headers_only else _read_structure(raw)
    if message is None:
        message = _STDLIB_PARSER.parsebytes(raw, headersonly=headers_only)
    text, has_html, found = ("", False, []) if headers_only else _walk_body(message, errors)
    message_id = _header(message, "Message-ID", errors)
    references = _header(message, "References", errors)
    subject = _decode_words(_header(message, "Subject", errors), errors)
    parsed = ParsedMessage(
        message_id=_first_message_id(message_id),
        in_reply_to=_first_message_id(_header(message, "In-Reply-To", errors)),
        references=_message_ids(references),
        subject=_clean(_WHITESPACE.sub(" ", subject)).strip(),
        sent_at=_date(_header(message, "Date", errors)),
        sender=next(iter(_addresses(message, "From", errors)), None),
        to=_addresses(message, "To", errors),
        cc=_addresses(message, "Cc", errors),
        bcc=_addresses(message, "Bcc", errors),
        reply_to=_addresses(message, "Reply-To", errors),
        snippet=_snippet(text),
        has_html=has_html,
        attachments=tuple(info for info, _ in found),
        parse_errors=tuple(dict.fromkeys(_clean(e) for e in errors)),
    )
    return _Reading(parsed, message, tuple(part for _, part in found))


def _read_structure(raw: bytes) -> Message | None:
    """The message tree `BytesParser(_Entity, policy=compat32)` would build, or None where it
    might differ. It finds MIME delimiters with `str.find` instead of matching a regex
    compiled per boundary against every line (the stdlib parser's cost on attachments), and
    leaves every message with an unusual structure to the stdlib parser, which then reports
    the defects.

    The stdlib reading it reproduces (email.feedparser; RFC 5322 §2.2, RFC 2046 §5.1.1): the
    header block ends at the first line that is not a header line, each header is stored by
    the policy's `header_source_parse`; a delimiter is a whole line `--boundary`, optionally
    `--` (the close delimiter), optionally white space; the line break before a delimiter
    belongs to it. It declines bare CR line ends, header blocks that do not end in an empty
    line or that the stdlib would flag (a leading continuation line, an mbox `From ` line, a
    line starting with a colon), message/* entities, multipart/digest, boundaries that prefix
    one another, empty or missing parts, missing start or close delimiters, and nesting
    deeper than `_STRUCTURE_DEPTH`.
    """
    text = raw.decode("ascii", "surrogateescape")
    if "\r" in text and text.count("\r") != text.count("\r\n"):
        return None  # the stdlib splits lines at a bare CR too
    return _read_entity(text, 0, len(text), (), in_multipart=False)


def _read_entity(
    text: str, start: int, end: int, separators: tuple[str, ...], *, in_multipart: bool
) -> Message | None:
    fields: list[list[str]] = []
    position = start
    body_start = -1
    while position < end:
        newline = text.find("\n", position, end)
        line_end = end if newline < 0 else newline + 1
        line = text[position:line_end]
        position = line_end
        if line in ("\r\n", "\n"):
            body_start = line_end
            break
        if line[0] in " \t" and fields:
            fields[-1].append(line)
        elif line.startswith("From ") or not _HEADER_LINE.match(line) or line[0] in " \t:":
            return None  # the stdlib's defects (or an mbox envelope line)
        else:
            fields.append([line])
    if body_start < 0:
        return None
    message = _Entity(policy=email.policy.compat32)
    for lines in fields:
        message.set_raw(*message.policy.header_source_parse(lines))
    maintype = message.get_content_maintype()
    if maintype == "message":
        return None
    if maintype != "multipart":
        payload = text[body_start:end]
        if in_multipart:  # RFC 2046 §5.1.1: the line break before a delimiter is the delimiter's
            payload = payload.removesuffix("\n").removesuffix("\r")
        message.set_payload(payload)
        return message
    boundary = message.get_boundary()
    encoding = str(message.get("content-transfer-encoding", "8bit")).lower()
    if (
        not boundary
        or len(separators) >= _STRUCTURE_DEPTH
        or message.get_content_subtype() == "digest"
        or encoding not in ("7bit", "8bit", "binary")
    ):
        return None
    separator = "--" + boundary
    if any(s.startswith(separator) or separator.startswith(s) for s in separators):
        return None
    delimiters = _delimiters(text, body_start, end, separator)
    if len(delimiters) < 2 or delimiters[0][2] or not delimiters[-1][2]:
        return None  # no start delimiter, no part, or no close delimiter
    parts: list[Message | str] = []
    for (_, part_start, _), (part_end, _, _) in itertools.pairwise(delimiters):
        if part_start >= part_end:
            return None  # doubled delimiters: the stdlib skips them
        part = _read_entity(text, part_start, part_end, (*separators, separator), in_multipart=True)
        if part is None:
            return None
        parts.append(part)
    message.set_payload(parts)
    return message


def _delimiters(text: str, start: int, end: int, separator: str) -> list[tuple[int, int, bool]]:
    """(line start, line end, is close delimiter) of each delimiter line of one multipart
    body, up to and including the first close delimiter."""
    found: list[tuple[int, int, bool]] = []
    position = start
    while True:
        hit = text.find(separator, position, end)
        if hit < 0:
            return found
        newline = text.find("\n", hit, end)
        line_end = end if newline < 0 else newline + 1
        position = line_end
        if hit != start and text[hit - 1] != "\n":
            position = hit + 1
            continue
        rest = text[hit + len(separator) : line_end]
        closing = rest.startswith("--")
        rest = rest[2:] if closing else rest
        if rest.removesuffix("\n").removesuffix("\r").strip(" \t"):
            continue  # `--boundary` followed by more than white space is body text
        found.append((hit, line_end, closing))
        if closing:
            return found


def decode_text(payload: bytes, charset: str | None) -> str:
    """Decode a body part whatever its label says; never raises."""
    return _decode(payload, charset)[0]


def _decode(payload: bytes, charset: str | None) -> tuple[str, str | None]:
    """The text, and a note when the label could not be trusted and the charset was guessed."""
    label = (charset or "").strip().strip("\"'").lower()
    if label in _UNDECLARED_LABELS:
        if payload.isascii():
            return payload.decode("ascii"), None
        text, used = _guess(payload)
        return text, (None if used == "UTF-8" else f"undeclared 8-bit text read as {used}")
    codecs_to_try = _CHARSET_CODECS.get(label) or ((label,) if _is_text_codec(label) else ())
    if not codecs_to_try:
        if payload.isascii():
            return payload.decode("ascii"), None
        text, used = _guess(payload)
        return text, f"unknown charset {label!r} read as {used}"
    for codec in codecs_to_try:
        try:
            return payload.decode(codec), None
        except (UnicodeError, LookupError, ValueError):
            continue
    try:
        text = payload.decode(codecs_to_try[0], errors="replace")
    except (UnicodeError, LookupError, ValueError):  # a codec that refuses even "replace"
        text = _guess(payload)[0]
    return text, f"text not valid in its declared charset {label!r}"


def _is_text_codec(label: str) -> bool:
    """Whether Python has a bytes-to-text codec by this name (not base64, rot13, zlib...).
    `b"".decode(label)` cannot tell: CPython returns "" for empty input without a lookup."""
    try:
        decoded, _ = codecs.lookup(label).decode(b"")
    except Exception:  # unknown name, or a bytes codec (zlib, bz2...) failing in its own way
        return False
    return isinstance(decoded, str)


def _guess(payload: bytes) -> tuple[str, str]:
    for codec, name in _UNDECLARED_CODECS:
        try:
            return payload.decode(codec), name
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte")


def _clean(text: str) -> str:
    """`text` without C0 controls (other than white space) and without lone surrogates."""
    if text.isascii() and not _CONTROL.search(text):
        return text
    return _CONTROL.sub("", text).encode("utf-8", "replace").decode("utf-8")


def _raw_values(message: Message, name: str) -> list[str]:
    """Every occurrence of a header, unfolded, as the parser stored it (8-bit bytes are kept
    as surrogate escapes by `message_from_bytes`)."""
    wanted = name.lower()
    return [
        _FOLD.sub("", str(value)) for key, value in message.raw_items() if key.lower() == wanted
    ]


def _header(message: Message, name: str, errors: list[str]) -> str:
    """The first occurrence of a header as text, its 8-bit bytes decoded (RFC 6532 UTF-8, or
    the windows-1252 of pre-MIME mailers); RFC 2047 words are left encoded."""
    values = _raw_values(message, name)
    return _header_text(values[0], name, errors) if values else ""


def _header_text(value: str, name: str, errors: list[str]) -> str:
    if value.isascii():
        return value
    text, used = _guess(value.encode("utf-8", "surrogateescape"))
    if used != "UTF-8":
        errors.append(f"undeclared 8-bit bytes in {name} header read as {used}")
    return text


def _decode_words(value: str, errors: list[str]) -> str:
    """`value` with its RFC 2047 encoded words decoded. Adjacent words are joined before
    decoding, as mailers split multi-byte characters across words, and the white space
    between them is dropped (RFC 2047 §6.2)."""
    if "=?" not in value:
        return value
    out: list[str] = []
    pending: list[tuple[str, bytes]] = []
    position = 0
    for match in _ENCODED_WORD.finditer(value):
        between = value[position : match.start()]
        position = match.end()
        data = _word_bytes(match.group(2), match.group(3))
        if data is None:
            _flush_words(pending, out, errors)
            out.extend((between, match.group(0)))
            continue
        if not pending or between.strip(" \t\r\n"):
            _flush_words(pending, out, errors)
            out.append(between)
        charset = match.group(1).split("*", 1)[0]
        if pending and pending[-1][0].lower() == charset.lower():
            pending[-1] = (pending[-1][0], pending[-1][1] + data)
        else:
            pending.append((charset, data))
    _flush_words(pending, out, errors)
    out.append(value[position:])
    return "".join(out)


def _word_bytes(encoding: str, encoded: str) -> bytes | None:
    try:
        if encoding in "bB":
            return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        return binascii.a2b_qp(encoded.encode("utf-8", "surrogateescape"), header=True)
    except (binascii.Error, ValueError):
        return None


def _flush_words(pending: list[tuple[str, bytes]], out: list[str], errors: list[str]) -> None:
    for charset, data in pending:
        text, note = _decode(data, charset)
        if note:
            errors.append(note)
        out.append(text)
    pending.clear()


def _first_message_id(value: str) -> str | None:
    match = _MESSAGE_ID.search(value)
    # Without a well-formed <id>, what is between the brackets (if any) is the best guess.
    found = match.group(1) if match else value.strip().strip("<>").strip()
    return _clean(found) or None


def _message_ids(value: str) -> tuple[str, ...]:
    ids = _MESSAGE_ID.findall(value)
    if not ids:  # some mailers drop the angle brackets
        ids = [token for token in value.split() if "@" in token]
    return tuple(dict.fromkeys(cleaned for cleaned in map(_clean, ids) if cleaned))


def _date(value: str) -> datetime | None:
    if not value.strip():
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    # RFC 5322 §3.3: "-0000" (and no zone at all) means the zone is unknown; read it as UTC.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _addresses(message: Message, name: str, errors: list[str]) -> tuple[Participant, ...]:
    found: list[Participant] = []
    for value in _raw_values(message, name):
        text = _header_text(value, name, errors)
        for display, address in _address_pairs(text):
            address = _clean(address).strip()
            local, at, domain = address.rpartition("@")
            if not at or not local or not domain:
                if address:
                    errors.append(f"unreadable {name} address {address!r}")
                continue
            display_name = _clean(_WHITESPACE.sub(" ", _decode_words(display, errors))).strip()
            found.append(Participant(email=address, name=display_name or None))
    return tuple(found)


def _address_pairs(text: str) -> list[tuple[str, str]]:
    """(display name, address) pairs, read leniently: one malformed mailbox must not cost the
    others. Display names keep their encoded words, which may contain address specials."""
    try:
        return email.utils.getaddresses([text], strict=False)
    except TypeError:  # Python before 3.11.10 has no `strict` and is always lenient
        return email.utils.getaddresses([text])


def _snippet(text: str) -> str:
    # Every step of `_readable` maps a prefix of the text to a prefix of its result, so a
    # prefix that already reads as SNIPPET_LENGTH characters gives the whole text's snippet.
    limit = min(len(text), _TEXT_SCAN_LIMIT)
    scanned = 2048
    while scanned < limit:
        readable = _readable(text[:scanned])
        if len(readable) >= SNIPPET_LENGTH:
            return readable[:SNIPPET_LENGTH].strip()
        scanned *= 8
    return _readable(text[:limit])[:SNIPPET_LENGTH].strip()


def _readable(text: str) -> str:
    """`text` as a snippet shows it, before the cut: white space collapsed, controls dropped."""
    return _clean(_WHITESPACE.sub(" ", text)).strip()


def _is_container(part: Message, content_type: str, disposition: str | None) -> bool:
    """Whether the reading descends into the part's children: every multipart, and an
    embedded message (message/rfc822, a delivery report) unless it is attached as a file,
    in which case it is one attachment, not its inner parts."""
    return part.is_multipart() and not (
        content_type.startswith("message/") and disposition == "attachment"
    )


def _walk_body(
    message: Message, errors: list[str]
) -> tuple[str, bool, list[tuple[AttachmentInfo, Message]]]:
    """The first plain-text body (or the text of the first HTML body), whether there is an
    HTML body, and the attachments with the part each was read from; MIME defects of every
    part are reported."""
    text = ""
    html_body: str | None = None
    attachments: list[tuple[AttachmentInfo, Message]] = []
    errors.extend(type(defect).__name__ for defect in message.defects)
    # Depth-first, in document order, without recursion: nesting depth is the sender's choice.
    stack: list[Message] = [message]
    while stack:
        part = stack.pop()
        if part is not message:
            errors.extend(type(defect).__name__ for defect in part.defects)
        content_type = part.get_content_type()
        disposition = part.get_content_disposition()
        if _is_container(part, content_type, disposition):
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend(reversed([c for c in children if isinstance(c, Message)]))
            continue
        if content_type.startswith("multipart/"):
            continue  # a container whose boundary is missing: its defect says so
        filename = _filename(part, errors)
        is_body_type = content_type in ("text/plain", "text/html")
        if (
            disposition == "attachment"
            or not content_type.startswith("text/")
            or (filename is not None and not (is_body_type and disposition == "inline"))
        ):
            info = AttachmentInfo(
                filename=filename,
                content_type=_clean(_FOLD.sub("", content_type)),
                size=_size(part, errors),
                content_id=_first_message_id(_header(part, "Content-ID", errors)),
            )
            attachments.append((info, part))
            continue
        if content_type == "text/plain" and not text.strip():
            text = _part_text(part, errors)
        elif content_type == "text/html" and html_body is None:
            html_body = _part_text(part, errors)
    if not text.strip() and html_body:
        text = _html_text(html_body)
    return text, html_body is not None, attachments


def _payload(part: Message, errors: list[str]) -> bytes:
    """The part's transfer-decoded bytes; damage the base64 decoder skipped over (invalid
    characters, bad padding: the bytes after it may be lost) is reported."""
    known_defects = len(part.defects)
    try:
        payload = part.get_payload(decode=True)
    except Exception as exc:  # the transfer decoders raise on some malformed payloads
        errors.append(f"undecodable {part.get_content_type()} part: {type(exc).__name__}")
        return b""
    errors.extend(type(defect).__name__ for defect in part.defects[known_defects:])
    return payload if isinstance(payload, bytes) else b""


def _size(part: Message, errors: list[str]) -> int:
    if part.is_multipart():  # an attached message (message/rfc822): its serialized size
        try:
            return len(part.as_bytes())
        except Exception as exc:
            errors.append(f"unmeasurable attached message: {type(exc).__name__}")
            return 0
    return len(_payload(part, errors))


def _part_text(part: Message, errors: list[str]) -> str:
    charset = _parameter(part, "Content-Type", "charset", errors)
    label = charset if isinstance(charset, str) else None
    text, note = _decode(_payload(part, errors), label)
    if note:
        errors.append(note)
    return text


def _parameter(
    part: Message, header: str, name: str, errors: list[str]
) -> str | tuple[str, str, str] | None:
    """A MIME parameter read from the raw header; an RFC 2231 value comes back as
    (charset, language, value-with-one-character-per-byte)."""
    values = _raw_values(part, header)
    if not values:
        return None
    holder = email.message.Message()  # compat32: hands back RFC 2231 values undecoded
    holder[header] = _header_text(values[0], header, errors)
    value = holder.get_param(name, header=header)
    if isinstance(value, tuple):
        charset, language, text = value
        return (charset or "", language or "", text)
    return value


def _filename(part: Message, errors: list[str]) -> str | None:
    """Content-Disposition's filename, else Content-Type's name, decoded: RFC 2231 (with its
    charset), or RFC 2047 words inside the quotes (not standard, written by many mailers)."""
    try:
        value = _parameter(part, "Content-Disposition", "filename", errors)
        if value is None:
            value = _parameter(part, "Content-Type", "name", errors)
    except Exception as exc:
        errors.append(f"unreadable attachment filename: {type(exc).__name__}")
        return None
    if value is None:
        return None
    if isinstance(value, tuple):
        charset, _, encoded = value
        filename, note = _decode(encoded.encode("latin-1", "replace"), charset or None)
        if note:
            errors.append(note)
    else:
        filename = _decode_words(value, errors)
    # Some mailers send the sender's local path; only the last component is the file's name.
    filename = _clean(filename).replace("\\", "/").rsplit("/", 1)[-1].strip()
    return filename or None


def _html_text(markup: str) -> str:
    """The visible text of an HTML body, in one linear pass (a regex over hostile markup can
    take quadratic time): tags and comments removed, script/style/head content dropped, block
    tags turned into white space, character references resolved.

    The reading stops at a block tag once the text so far gives a whole snippet: it then ends
    in white space, which no character reference spans, so it is a prefix of the whole text
    and gives the same snippet."""
    markup = markup[:_HTML_SCAN_LIMIT]
    lowered: str | None = None
    pieces: list[str] = []
    collected = 0
    check_at = 4 * SNIPPET_LENGTH
    position = 0
    length = len(markup)
    while position < length:
        start = markup.find("<", position)
        if start < 0:
            pieces.append(markup[position:])
            break
        pieces.append(markup[position:start])
        collected += start - position
        if markup.startswith("<!--", start):
            end = markup.find("-->", start + 4)
            position = length if end < 0 else end + 3
            continue
        end = markup.find(">", start + 1)
        if end < 0:
            break  # an unterminated tag runs to the end of the markup
        tag = _TAG_NAME.match(markup, start, end)
        position = end + 1
        if tag is None:
            continue  # <!DOCTYPE>, <?xml?> or stray markup
        name = tag.group(1).lower()
        if name in _HIDDEN_ELEMENTS and not tag.group(0).startswith("</"):
            lowered = markup.lower() if lowered is None else lowered
            close = lowered.find(f"</{name}", position)
            if close < 0:
                break
            after = markup.find(">", close)
            position = length if after < 0 else after + 1
            continue
        if name in _BLOCK_TAGS:
            pieces.append(" ")
            if collected >= check_at:
                text = html.unescape("".join(pieces))
                if len(_readable(text[:_TEXT_SCAN_LIMIT])) >= SNIPPET_LENGTH:
                    return text
                check_at = 2 * collected
    return html.unescape("".join(pieces))
