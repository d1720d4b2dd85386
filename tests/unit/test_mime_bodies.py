"""R10: the conversation view's bodies and attachment bytes (mailsync_mime.bodies).

The attachments `read_bodies` lists are the ones `parse_message` lists (ingest publishes
those, and the read API serves attachment n of that list), checked over the hostile corpus,
the demo mailbox, the benchmark's mailbox and damaged copies of them. The body rules are
table-driven, one MIME shape a case.
"""

from __future__ import annotations

import base64
import quopri
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from bench.parsing import corpus as bench_corpus

from mailsync_devstack.demo_data import DEMO_OWNER_EMAIL, demo_mailbox
from mailsync_mime.bodies import AttachmentPart, attachment_payload, read_bodies
from mailsync_mime.parsing import parse_message
from tests.support.nasty_mime import NASTY_MESSAGES

NOW = datetime(2025, 10, 20, 15, 0, tzinfo=UTC)
PRE = '<pre style="white-space: pre-wrap">'
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def message(headers: str, body: str | bytes) -> bytes:
    """A message from `headers` and `body` ("\\n" line ends become CRLF; bytes are kept)."""
    head = ("From: a@x.test\nSubject: s\n" + headers).replace("\n", "\r\n").encode() + b"\r\n"
    return head + (body.replace("\n", "\r\n").encode() if isinstance(body, str) else body)


def part(headers: str, body: str) -> str:
    return f"{headers}\n\n{body}"


def multipart(subtype: str, boundary: str, *parts: str) -> str:
    inner = "".join(f"--{boundary}\n{p}\n" for p in parts)
    return part(
        f'Content-Type: multipart/{subtype}; boundary="{boundary}"', f"{inner}--{boundary}--"
    )


def as_message(entity: str) -> bytes:
    headers, _, body = entity.partition("\n\n")
    return message(headers + "\n", body)


TEXT = "Content-Type: text/plain; charset=utf-8"
HTML = "Content-Type: text/html; charset=utf-8"
PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
PNG_BASE64 = base64.b64encode(PNG_BYTES).decode()
PDF_BYTES = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"
INNER_MESSAGE = (
    "From: z@x.test\nSubject: the forwarded one\n"
    "Content-Type: multipart/mixed; boundary=i\n\n"
    "--i\nContent-Type: text/plain\n\ninner text\n"
    "--i\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n"
    "Content-Disposition: attachment; filename=inner.pdf\n\n"
    f"{base64.b64encode(PDF_BYTES).decode()}\n--i--"
)


def realistic_mailbox() -> list[bytes]:
    demo = [m.raw for m in demo_mailbox(DEMO_OWNER_EMAIL, NOW)]
    nasty = [m.raw for m in NASTY_MESSAGES.values()]
    return [*nasty, *demo, *bench_corpus()]


def damaged(messages: list[bytes], seed: int) -> list[bytes]:
    """Cut-off, byte-flipped and line-dropping copies: boundaries and headers break."""
    rng = random.Random(seed)
    out: list[bytes] = []
    for raw in filter(None, messages):
        cut = bytearray(raw[: rng.randrange(len(raw))])
        flipped = bytearray(raw)
        for _ in range(10):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        lines = raw.split(b"\n")
        del lines[rng.randrange(len(lines))]
        out.extend([bytes(cut), bytes(flipped), b"\n".join(lines)])
    return out


def published(raw: bytes) -> list[tuple[str | None, str, int, str | None]]:
    return [
        (a.filename, a.content_type, a.size, a.content_id) for a in parse_message(raw).attachments
    ]


def listed(parts: tuple[AttachmentPart, ...]) -> list[tuple[str | None, str, int, str | None]]:
    return [(a.filename, a.content_type, a.size, a.content_id) for a in parts]


@pytest.fixture(scope="module")
def mailbox() -> list[bytes]:
    return realistic_mailbox()


def test_r10_the_attachments_are_exactly_the_ones_ingest_publishes(mailbox: list[bytes]) -> None:
    with_attachments = 0
    for raw in mailbox:
        attachments = read_bodies(raw).attachments
        assert listed(attachments) == published(raw)
        assert [a.index for a in attachments] == list(range(len(attachments)))
        with_attachments += bool(attachments)
    assert with_attachments >= 20  # the corpus really exercises the list


@pytest.mark.parametrize("seed", [1, 2])
def test_r10_damaged_mail_lists_the_same_attachments_as_ingest_and_never_raises(
    mailbox: list[bytes], seed: int
) -> None:
    sample = random.Random(seed).sample(mailbox, 150)
    for raw in damaged(sample, seed):
        bodies = read_bodies(raw)
        assert listed(bodies.attachments) == published(raw), raw[:300]
        for text in (bodies.text, bodies.html):
            assert text is None or not CONTROL.search(text.encode("utf-8").decode())


def test_r10_every_attachment_of_the_corpus_is_served_decoded_at_its_index(
    mailbox: list[bytes],
) -> None:
    for raw in mailbox:
        attachments = read_bodies(raw).attachments
        for attachment in attachments:
            served, content = attachment_payload(raw, attachment.index)
            assert served == attachment
            if not attachment.content_type.startswith("message/"):
                assert len(content) == attachment.size
        with pytest.raises(LookupError):
            attachment_payload(raw, len(attachments))


@dataclass(frozen=True)
class BodyCase:
    raw: bytes
    text: str | None
    html: str | None
    # (filename, content type, inline) of each attachment, in order.
    attachments: tuple[tuple[str | None, str, bool], ...] = ()


BODY_CASES: dict[str, BodyCase] = {
    "plain text only": BodyCase(
        as_message(part(TEXT, "Hello Dana,\nsee you.")), "Hello Dana,\nsee you.", None
    ),
    "html only": BodyCase(as_message(part(HTML, "<p>Hello</p>")), None, "<p>Hello</p>"),
    "no content type is plain text (RFC 2045 §5.2)": BodyCase(
        message("", "just words\n"), "just words\n", None
    ),
    "alternative of plain and html": BodyCase(
        as_message(multipart("alternative", "a", part(TEXT, "plain"), part(HTML, "<b>rich</b>"))),
        "plain",
        "<b>rich</b>",
    ),
    "alternative prefers the first plain and the last html (RFC 2046 §5.1.4)": BodyCase(
        as_message(
            multipart(
                "alternative",
                "a",
                part(TEXT, "first plain"),
                part(HTML, "<p>older html</p>"),
                part(TEXT, "second plain"),
                part(HTML, "<p>best html</p>"),
            )
        ),
        "first plain",
        "<p>best html</p>",
    ),
    "alternative passes over an empty plain part": BodyCase(
        as_message(multipart("alternative", "a", part(TEXT, ""), part(TEXT, "the real text"))),
        "the real text",
        None,
    ),
    "html in multipart/related with its cid image": BodyCase(
        as_message(
            multipart(
                "alternative",
                "a",
                part(TEXT, "plain"),
                multipart(
                    "related",
                    "r",
                    part(HTML, '<img src="cid:logo@x.test">'),
                    part(
                        "Content-Type: image/png\nContent-Transfer-Encoding: base64\n"
                        "Content-ID: <logo@x.test>",
                        PNG_BASE64,
                    ),
                ),
            )
        ),
        "plain",
        '<img src="cid:logo@x.test">',
        ((None, "image/png", True),),
    ),
    "a pdf beside the alternative is an attachment, not a body": BodyCase(
        as_message(
            multipart(
                "mixed",
                "m",
                multipart("alternative", "a", part(TEXT, "plain"), part(HTML, "<p>rich</p>")),
                part(
                    "Content-Type: application/pdf; name=offer.pdf\n"
                    "Content-Disposition: attachment; filename=offer.pdf\n"
                    "Content-Transfer-Encoding: base64",
                    base64.b64encode(PDF_BYTES).decode(),
                ),
            )
        ),
        "plain",
        "<p>rich</p>",
        (("offer.pdf", "application/pdf", False),),
    ),
    "apple mail text around an inline image keeps both halves": BodyCase(
        as_message(
            multipart(
                "mixed",
                "m",
                part(TEXT, "before the photo"),
                part(
                    "Content-Type: image/png\nContent-Disposition: inline; filename=photo.png\n"
                    "Content-Transfer-Encoding: base64",
                    PNG_BASE64,
                ),
                part(TEXT, "after the photo"),
            )
        ),
        "before the photo\nafter the photo",
        None,
        (("photo.png", "image/png", True),),
    ),
    "a list footer after an html body is shown in the html too": BodyCase(
        as_message(
            multipart(
                "mixed",
                "m",
                multipart("alternative", "a", part(TEXT, "body"), part(HTML, "<p>body</p>")),
                part(TEXT, "-- \nunsubscribe <here> & now"),
            )
        ),
        "body\n-- \nunsubscribe <here> & now",
        f"<p>body</p>\n{PRE}-- \nunsubscribe &lt;here&gt; &amp; now</pre>",
    ),
    "an attached message is one attachment, not part of the body": BodyCase(
        as_message(
            multipart(
                "mixed",
                "m",
                part(TEXT, "see below"),
                part(
                    "Content-Type: message/rfc822\n"
                    "Content-Disposition: attachment; filename=forwarded.eml",
                    INNER_MESSAGE,
                ),
            )
        ),
        "see below",
        None,
        (("forwarded.eml", "message/rfc822", False),),
    ),
    "an inline forwarded message is read through, as ingest reads it": BodyCase(
        as_message(
            multipart(
                "mixed",
                "m",
                part(TEXT, "outer text"),
                part("Content-Type: message/rfc822", INNER_MESSAGE),
            )
        ),
        "outer text\ninner text",
        None,
        (("inner.pdf", "application/pdf", False),),
    ),
    "a text file attachment is not a body": BodyCase(
        as_message(
            multipart(
                "mixed",
                "m",
                part(TEXT, "the body"),
                part(f"{TEXT}\nContent-Disposition: attachment; filename=notes.txt", "notes"),
            )
        ),
        "the body",
        None,
        (("notes.txt", "text/plain", False),),
    ),
    "a calendar part is neither body nor attachment": BodyCase(
        as_message(
            multipart(
                "alternative",
                "a",
                part(TEXT, "invitation"),
                part("Content-Type: text/calendar; method=REQUEST", "BEGIN:VCALENDAR"),
            )
        ),
        "invitation",
        None,
    ),
    "R10 a multipart without delimiters shows what it holds": BodyCase(
        message(
            'Content-Type: multipart/alternative; boundary="never-used"\n',
            "Plain words where parts should have been.\n",
        ),
        "Plain words where parts should have been.\n",
        None,
    ),
    "R10 an empty message has an empty text body": BodyCase(b"", "", None),
    "R10 a body not valid in its charset keeps replacement characters": BodyCase(
        message("Content-Type: text/plain; charset=utf-8\n", b"caf\xe9 \xff ok"),
        "caf\ufffd \ufffd ok",
        None,
    ),
    "R10 GBK text labelled GB2312 loses no character": BodyCase(
        message(
            "Content-Type: text/plain; charset=gb2312\n", "朱镕基先生，报价已收到".encode("gbk")
        ),
        "朱镕基先生，报价已收到",
        None,
    ),
    "R10 ISO-2022-JP in base64": BodyCase(
        message(
            "Content-Type: text/plain; charset=ISO-2022-JP\nContent-Transfer-Encoding: base64\n",
            base64.b64encode("導入研修のご案内".encode("iso2022_jp")) + b"\r\n",
        ),
        "導入研修のご案内",
        None,
    ),
    "R10 windows-1252 html in quoted-printable labelled ISO-8859-1": BodyCase(
        message(
            "Content-Type: text/html; charset=iso-8859-1\n"
            "Content-Transfer-Encoding: quoted-printable\n",
            quopri.encodestring("<p>15.000 € – Grüße</p>".encode("cp1252")),
        ),
        None,
        "<p>15.000 € – Grüße</p>",
    ),
    "R10 right-to-left text keeps its order and marks": BodyCase(
        as_message(part(TEXT, "\u200fשלום, הצעת מחיר מצורפת")),
        "\u200fשלום, הצעת מחיר מצורפת",
        None,
    ),
    "R10 NUL and other controls never reach the view": BodyCase(
        message("Content-Type: text/plain\n", b"a\x00b\x07c\td\r\ne\x0c"),
        "abc\td\ne",
        None,
    ),
}


@pytest.mark.parametrize("case", BODY_CASES.values(), ids=BODY_CASES.keys())
def test_r10_the_conversation_view_shows_the_body_mail_clients_show(case: BodyCase) -> None:
    bodies = read_bodies(case.raw)
    assert bodies.text == case.text
    assert bodies.html == case.html
    assert [(a.filename, a.content_type, a.inline) for a in bodies.attachments] == list(
        case.attachments
    )
    assert listed(bodies.attachments) == published(case.raw)


def test_r10_attachments_are_served_with_their_transfer_encoding_undone() -> None:
    raw = as_message(
        multipart(
            "mixed",
            "m",
            part(TEXT, "three files"),
            part(
                "Content-Type: application/pdf\nContent-Transfer-Encoding: base64\n"
                "Content-Disposition: attachment;\n"
                " filename*=UTF-8''Angebot_Nachr%C3%BCstung.pdf",
                base64.encodebytes(PDF_BYTES).decode(),
            ),
            part(
                'Content-Type: text/csv; charset=utf-8; name="=?UTF-8?B?w6l0w6kuY3N2?="\n'
                "Content-Transfer-Encoding: quoted-printable\n"
                "Content-Disposition: attachment",
                quopri.encodestring("prix;été\n12 €;oui\n".encode()).decode(),
            ),
            part("Content-Type: image/png\nContent-ID: <logo@x.test>", "raw 8bit bytes"),
        )
    )
    pdf, pdf_bytes = attachment_payload(raw, 0)
    csv, csv_bytes = attachment_payload(raw, 1)
    png, png_bytes = attachment_payload(raw, 2)
    assert (pdf.filename, pdf.content_type, pdf.inline) == (
        "Angebot_Nachrüstung.pdf",
        "application/pdf",
        False,
    )
    assert pdf_bytes == PDF_BYTES
    assert csv.filename == "été.csv"
    assert csv_bytes.replace(b"\r\n", b"\n") == "prix;été\n12 €;oui\n".encode()
    assert (png.content_id, png.inline, png_bytes) == ("logo@x.test", True, b"raw 8bit bytes")
    assert [pdf.size, csv.size, png.size] == [len(pdf_bytes), len(csv_bytes), len(png_bytes)]


def test_r10_an_attached_message_is_served_as_the_message_itself() -> None:
    case = BODY_CASES["an attached message is one attachment, not part of the body"]
    attachment, content = attachment_payload(case.raw, 0)
    assert attachment.filename == "forwarded.eml"
    forwarded = parse_message(content)
    assert forwarded.subject == "the forwarded one"
    assert forwarded.snippet == "inner text"
    assert [a.filename for a in forwarded.attachments] == ["inner.pdf"]
    assert attachment_payload(content, 0)[1] == PDF_BYTES


def test_r10_the_nested_forward_chain_is_served_whole() -> None:
    raw = NASTY_MESSAGES["message-rfc822-three-deep"].raw
    (attachment,) = read_bodies(raw).attachments
    _, content = attachment_payload(raw, attachment.index)
    assert parse_message(content).subject == "level one"
    assert b"the innermost text" in content


def test_r10_a_cut_off_attachment_is_served_as_far_as_it_goes() -> None:
    raw = NASTY_MESSAGES["multipart-never-closed"].raw
    bodies = read_bodies(raw)
    assert bodies.text is not None
    assert bodies.text.startswith("the text before the cut")
    attachment, content = attachment_payload(raw, 0)
    assert attachment.filename == "half.pdf"
    assert content.startswith(b"%PDF-1.4")


@pytest.mark.parametrize("index", [-1, 1, 2, 10**9])
def test_r10_an_attachment_index_the_message_does_not_have_is_a_lookup_error(
    index: int,
) -> None:
    raw = BODY_CASES["a pdf beside the alternative is an attachment, not a body"].raw
    with pytest.raises(LookupError):
        attachment_payload(raw, index)


def nested(depth: int) -> bytes:
    opening = "".join(
        f"Content-Type: multipart/mixed; boundary=b{n}\n\n--b{n}\n" for n in range(depth)
    )
    closing = "".join(f"\n--b{n}--\n" for n in reversed(range(depth)))
    return message(opening + "Content-Type: image/png\n", "inside" + closing)


HOSTILE: dict[str, bytes] = {
    "nested five thousand deep": nested(5_000),
    "nested forty deep": nested(40),
    "random bytes": random.Random(7).randbytes(20_000),
    "only a boundary": message("Content-Type: multipart/mixed; boundary=b\n", "--b--\n"),
    "NUL in the headers": b"From: a@x.test\r\nContent-Type: text/\x00plain\r\n\r\nbody\r\n",
}


@pytest.mark.parametrize("raw", HOSTILE.values(), ids=HOSTILE.keys())
def test_r10_hostile_mail_never_raises_and_lists_what_ingest_lists(raw: bytes) -> None:
    bodies = read_bodies(raw)
    assert listed(bodies.attachments) == published(raw)
    for attachment in bodies.attachments:
        attachment_payload(raw, attachment.index)
    with pytest.raises(LookupError):
        attachment_payload(raw, len(bodies.attachments))


def test_r10_mail_too_deep_to_read_has_no_body_and_no_attachment() -> None:
    bodies = read_bodies(nested(5_000))
    assert (bodies.text, bodies.html, bodies.attachments) == (None, None, ())
    assert parse_message(nested(5_000)).parse_error is not None


def test_r10_mail_forty_parts_deep_still_shows_its_inner_attachment() -> None:
    (attachment,) = read_bodies(nested(40)).attachments
    assert attachment.content_type == "image/png"
    assert attachment_payload(nested(40), 0)[1] == b"inside"
