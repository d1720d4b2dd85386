"""A message's full bodies and its attachments' bytes, for the Sales Inbox conversation view
(R10); pure, no I/O.

Invariants:
- it reads the message exactly as `parsing.parse_message` does (the same MIME tree, the same
  stdlib fallback, the same charset, RFC 2047 and RFC 2231 rules), and its attachments are
  `parse_message(raw).attachments` itself, in the same order with the same fields: ingest
  publishes that list as the message's attachment metadata, and the read API addresses an
  attachment by its index in it;
- nothing here raises on broken mail: what cannot be read is missing (no body, no
  attachments), text that is not valid in its declared charset keeps U+FFFD where the bad
  bytes were; `attachment_payload` raises only `LookupError`, for an index the message does
  not have;
- every string is valid Unicode without C0 controls other than tab and LF (the cleaning of
  parse_message; line ends come as LF), so it always serializes to JSON.

Which body is shown, as mail clients show it: a multipart/alternative shows one of its
alternatives, the first text/plain one and the last text/html one (RFC 2046 §5.1.4 orders
alternatives by increasing faithfulness; an alternative that is empty is passed over when
another has text); any other container (multipart/mixed, /related, an embedded message that
is not attached as a file) shows every child in order, so the halves of an Apple Mail body
around an inline image, or a list footer, are not lost. In the HTML body a plain-text child
of such a container is shown as preformatted text where its place is. Attachments are never
bodies, whatever their type. A multipart whose delimiters are missing shows what it holds as
text, rather than nothing.
"""

from __future__ import annotations

import email.policy
import html
from dataclasses import dataclass
from email.message import Message

from mailsync_mime.parsing import (
    AttachmentInfo,
    _clean,
    _is_container,
    _part_text,
    _payload,
    _read,
    _Reading,
)

# An attached message is served as the .eml file it is, with RFC 5322 §2.1 line ends.
_EML_POLICY = email.policy.compat32.clone(linesep="\r\n")


@dataclass(frozen=True, slots=True)
class AttachmentPart:
    """One attachment of a message, as `parse_message` lists it, with its place in that list.

    `size` is parse_message's figure: the decoded bytes, or for an attached message its
    serialized MIME part. `inline` says the sender meant it to be shown within the body rather
    than listed as a file (Content-Disposition: inline, or a Content-ID without a disposition,
    as multipart/related resources are written); whether the shown body really refers to it
    is for the view to find out."""

    index: int
    filename: str | None
    content_type: str
    size: int
    content_id: str | None
    inline: bool


@dataclass(frozen=True, slots=True)
class MessageBodies:
    """What the conversation view shows of one message. `text` and `html` are None when the
    message has no body of that type (not when the body is empty)."""

    text: str | None
    html: str | None
    attachments: tuple[AttachmentPart, ...]


def read_bodies(raw: bytes) -> MessageBodies:
    """The text and HTML bodies and the attachments of one raw message; never raises (R10)."""
    reading = _reading(raw)
    if reading is None:
        return MessageBodies(text=None, html=None, attachments=())
    attachments = tuple(
        _attachment(index, info, part)
        for index, (info, part) in enumerate(
            zip(reading.parsed.attachments, reading.attachment_parts, strict=True)
        )
    )
    try:
        text, markup = _shown_bodies(reading.tree, {id(part) for part in reading.attachment_parts})
    except Exception:  # R10: a body that defeats the reading must not cost the attachments
        text, markup = None, None
    return MessageBodies(text=text, html=markup, attachments=attachments)


def attachment_payload(raw: bytes, index: int) -> tuple[AttachmentPart, bytes]:
    """Attachment `index` (its place in `parse_message(raw).attachments`) and its bytes, with
    the transfer encoding (base64, quoted-printable...) undone; an attached message comes as
    the message itself. Raises `LookupError` when the message has no such attachment."""
    reading = _reading(raw)
    parts = () if reading is None else reading.attachment_parts
    if reading is None or not 0 <= index < len(parts):
        raise LookupError(f"the message has no attachment {index} (it has {len(parts)})")
    part = parts[index]
    return _attachment(index, reading.parsed.attachments[index], part), _content(part)


def _reading(raw: bytes) -> _Reading | None:
    try:
        return _read(raw, headers_only=False)
    except Exception:  # parse_message then reads the headers alone, which list no attachments
        return None


def _attachment(index: int, info: AttachmentInfo, part: Message) -> AttachmentPart:
    disposition = part.get_content_disposition()
    return AttachmentPart(
        index=index,
        filename=info.filename,
        content_type=info.content_type,
        size=info.size,
        content_id=info.content_id,
        inline=disposition == "inline" or (disposition is None and info.content_id is not None),
    )


def _content(part: Message) -> bytes:
    if not part.is_multipart():
        return _payload(part, [])
    # An attached message (or delivery report): the parser has already split it into the
    # message(s) it carries, so it is written back out rather than transfer-decoded.
    children = part.get_payload()
    try:
        return b"".join(
            child.as_bytes(policy=_EML_POLICY)
            for child in (children if isinstance(children, list) else [])
            if isinstance(child, Message)
        )
    except Exception:  # the generator fails on some damaged trees; parse_message sized it 0
        return b""


# Per part: the text pieces and the HTML pieces it shows, None for no body of that type.
_Shown = tuple[list[str] | None, list[str] | None]


def _shown_bodies(tree: Message, attachment_ids: set[int]) -> tuple[str | None, str | None]:
    """The text and HTML body the tree shows. Children are read before their container, in
    an explicit stack rather than by recursion: the nesting depth is the sender's choice."""
    shown: dict[int, _Shown] = {}
    stack: list[tuple[Message, bool]] = [(tree, False)]
    while stack:
        part, children_read = stack.pop()
        content_type = part.get_content_type()
        if not _is_container(part, content_type, part.get_content_disposition()):
            shown[id(part)] = _leaf(part, content_type, attachment_ids)
            continue
        payload = part.get_payload()
        children = (
            [c for c in payload if isinstance(c, Message)] if isinstance(payload, list) else []
        )
        if not children_read:
            stack.append((part, True))
            stack.extend((child, False) for child in reversed(children))
            continue
        results = [shown.pop(id(child)) for child in children]
        if content_type == "multipart/alternative":
            shown[id(part)] = _alternative(results)
        else:
            shown[id(part)] = _sequence(results)
    text, markup = shown[id(tree)]
    return _joined(text), _joined(markup)


def _leaf(part: Message, content_type: str, attachment_ids: set[int]) -> _Shown:
    if id(part) in attachment_ids:
        return None, None
    if content_type == "text/plain":
        return [_body_text(part)], None
    if content_type == "text/html":
        return None, [_body_text(part)]
    if content_type.startswith("multipart/"):
        # A container whose delimiters are missing (its defect says so): what it holds is
        # shown as it is, as mail clients do, rather than an empty message (R10).
        text = _body_text(part)
        return ([text] if text.strip() else None), None
    # Other text/* without a file name (text/calendar, text/enriched...) are neither bodies
    # nor attachments for parse_message either.
    return None, None


def _body_text(part: Message) -> str:
    # RFC 5322 §2.1 CRLF is the wire format; the view gets plain line feeds.
    text = _clean(_part_text(part, []))
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _alternative(results: list[_Shown]) -> _Shown:
    texts = [text for text, _ in results if text is not None]
    markups = [markup for _, markup in results if markup is not None]
    text = next((t for t in texts if _has_content(t)), texts[0] if texts else None)
    markup = next(
        (m for m in reversed(markups) if _has_content(m)), markups[-1] if markups else None
    )
    return text, markup


def _sequence(results: list[_Shown]) -> _Shown:
    texts = [text for text, _ in results if text is not None]
    text = [piece for pieces in texts for piece in pieces] if texts else None
    if all(markup is None for _, markup in results):
        return text, None
    markup: list[str] = []
    for child_text, child_markup in results:
        if child_markup is not None:
            markup.extend(child_markup)
        elif child_text is not None:
            markup.extend(_preformatted(piece) for piece in child_text if piece.strip())
    return text, markup


def _preformatted(text: str) -> str:
    return f'<pre style="white-space: pre-wrap">{html.escape(text, quote=False)}</pre>'


def _has_content(pieces: list[str]) -> bool:
    return any(piece.strip() for piece in pieces)


def _joined(pieces: list[str] | None) -> str | None:
    """One body from its pieces: empty pieces are dropped, unless all are empty."""
    if pieces is None:
        return None
    filled = [piece for piece in pieces if piece.strip()]
    if len(filled) <= 1:
        return filled[0] if filled else (pieces[0] if pieces else "")
    return "\n".join(piece.rstrip("\n") for piece in filled)
