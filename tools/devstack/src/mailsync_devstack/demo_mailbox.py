"""Demo mailbox that `make run` appends to Dovecot: a few weeks of a salesperson's mail, written
byte by byte the way real mailers write it, so the demo exercises R10-R13.

It holds conversations with the demo CRM persons (see demo_crm: some auto-link, one needs a
link choice, some link persons only), threads of three and four messages chained by
Message-ID/In-Reply-To/References (the owner's replies in "Sent"), mail from unknown senders,
and the charsets and MIME shapes R10 promises to survive: ISO-8859-1/-15 and windows-1252 in
quoted-printable, GB2312, GBK, Big5, ISO-2022-JP, KOI8-R, right-to-left UTF-8, RFC 2047 words,
RFC 2231 filenames, raw UTF-8 headers (RFC 6532), multipart/alternative and /related, a
delivery report, a calendar invitation, a missing closing boundary, undeclared 8-bit bytes,
a charset no codec knows, and a GBK body labelled GB2312.

Invariants: the output is a pure function of (owner_email, now); Message-IDs are
`<demo-NN@demo-sales.test>`, numbered in the order of the list, so a reseed is recognisable;
every Date lies in the 30 days before `now` and every reply is dated after its parent.
Lines end in CRLF (RFC 5322 §2.1) as IMAP APPEND expects.
"""

from __future__ import annotations

import base64
import binascii
import html
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime, formataddr, parseaddr
from urllib.parse import quote

from mailsync_devstack.demo_crm import (
    AHMED,
    ALEXEI,
    CHEN_MEILING,
    DANA,
    ELODIE,
    FRANCOIS,
    JAMES,
    JAVIER,
    JUERGEN,
    KATRIN,
    LUCIA,
    MARCO,
    OLGA,
    SARAH,
    SATO_KEN,
    WANG_WEI,
    YAMAMOTO_YUMI,
)

MESSAGE_ID_DOMAIN = "demo-sales.test"

_LONDON = timezone(timedelta(0))
_BERLIN = timezone(timedelta(hours=1))
_SHANGHAI = timezone(timedelta(hours=8))
_TOKYO = timezone(timedelta(hours=9))
_MOSCOW = timezone(timedelta(hours=3))
_DUBAI = timezone(timedelta(hours=4))
_NEW_YORK = timezone(timedelta(hours=-5))
_OWNER_TZ = _NEW_YORK

_SEEN = ("\\Seen",)
_ANSWERED = ("\\Seen", "\\Answered")
_UNREAD: tuple[str, ...] = ()


@dataclass(frozen=True)
class DemoMessage:
    """One message to APPEND: its folder, its exact bytes, its IMAP flags, and what it shows."""

    folder: str
    raw: bytes
    flags: tuple[str, ...]
    description: str


def message_id(number: int) -> str:
    """The Message-ID (with angle brackets) of demo message `number`."""
    return f"<demo-{number:02d}@{MESSAGE_ID_DOMAIN}>"


def _encoded_words(text: str, charset: str, encoding: str = "B", codec: str | None = None) -> str:
    """RFC 2047 encoded words for `text`, each at most 75 characters (§2) and split between
    characters, never inside one: a stateful charset such as ISO-2022-JP must end every word
    back in ASCII (RFC 1468), which encoding each chunk on its own guarantees."""
    words: list[str] = []
    chunk = ""
    for char in text:
        if chunk and len(_encoded_word(chunk + char, charset, encoding, codec)) > 75:
            words.append(_encoded_word(chunk, charset, encoding, codec))
            chunk = char
        else:
            chunk += char
    words.append(_encoded_word(chunk, charset, encoding, codec))
    return "\n ".join(words)


def _encoded_word(text: str, charset: str, encoding: str, codec: str | None) -> str:
    data = text.encode(codec or charset)
    if encoding == "B":
        payload = base64.b64encode(data).decode("ascii")
    else:
        payload = "".join(
            "_"
            if byte == 0x20
            else chr(byte)
            if chr(byte).isalnum() and byte < 0x80
            else f"={byte:02X}"
            for byte in data
        )
    return f"=?{charset}?{encoding}?{payload}?="


def _person(name: str, address: str, charset: str = "UTF-8", encoding: str = "B") -> str:
    """A From/To mailbox; a non-ASCII display name becomes encoded words."""
    if name.isascii():
        return formataddr((name, address))
    return f"{_encoded_words(name, charset, encoding)} <{address}>"


def _rfc2231(parameter: str, value: str, charset: str, language: str = "") -> str:
    """An RFC 2231 §4 extended parameter, split into §3 continuations when long; a split never
    cuts a %XX triplet."""
    encoded = quote(value.encode(charset), safe="")
    if len(encoded) <= 60:
        return f"{parameter}*={charset}'{language}'{encoded}"
    sections: list[str] = []
    rest = encoded
    while rest:
        cut = min(40, len(rest))
        while "%" in rest[max(cut - 2, 0) : cut]:
            cut -= 1
        sections.append(rest[:cut])
        rest = rest[cut:]
    parts = [f"{parameter}*0*={charset}'{language}'{sections[0]}"]
    parts += [f"{parameter}*{index}*={section}" for index, section in enumerate(sections[1:], 1)]
    return ";\n\t".join(parts)


def _transfer_encode(data: bytes, encoding: str) -> bytes:
    if encoding == "base64":
        return base64.encodebytes(data)
    if encoding == "quoted-printable":
        encoded = binascii.b2a_qp(data)
    elif encoding == "7bit":
        if not data.isascii():
            raise ValueError("7bit content must be ASCII")
        encoded = data
    else:
        encoded = data
    return encoded if encoded.endswith(b"\n") else encoded + b"\n"


def _text(
    text: str,
    charset: str,
    encoding: str,
    subtype: str = "plain",
    codec: str | None = None,
    extra: str = "",
) -> bytes:
    """A text part; `codec` differs from the declared `charset` only for mislabelled mail."""
    data = text.encode(codec or charset)
    head = (
        f'Content-Type: text/{subtype}; charset="{charset}"{extra}\n'
        f"Content-Transfer-Encoding: {encoding}\n\n"
    )
    return head.encode("ascii") + _transfer_encode(data, encoding)


def _attachment(
    data: bytes,
    content_type: str,
    name_params: str,
    filename_params: str,
    disposition: str = "attachment",
    content_id: str | None = None,
) -> bytes:
    head = f"Content-Type: {content_type};\n\t{name_params}\n"
    head += "Content-Transfer-Encoding: base64\n"
    if content_id is not None:
        head += f"Content-ID: <{content_id}>\n"
    head += f"Content-Disposition: {disposition};\n\t{filename_params}\n\n"
    return head.encode("ascii") + base64.encodebytes(data)


def _plain_attachment(data: bytes, content_type: str, filename: str) -> bytes:
    return _attachment(data, content_type, f'name="{filename}"', f'filename="{filename}"')


def _utf8_attachment(
    data: bytes, content_type: str, filename: str, charset: str = "UTF-8"
) -> bytes:
    return _attachment(
        data,
        content_type,
        _rfc2231("name", filename, charset),
        _rfc2231("filename", filename, charset),
    )


def _multipart(
    subtype: str, boundary: str, parts: Sequence[bytes], params: str = "", closed: bool = True
) -> bytes:
    out = f'Content-Type: multipart/{subtype};{params}\n\tboundary="{boundary}"\n\n'.encode("ascii")
    out += b"This is a multi-part message in MIME format.\n\n"
    for part in parts:
        out += f"--{boundary}\n".encode("ascii") + part
    if closed:
        out += f"--{boundary}--\n".encode("ascii")
    return out


def _html(
    text: str, lang: str = "en", rtl: bool = False, extra: str = "", charset: str = "UTF-8"
) -> str:
    """A mail client's HTML rendering of `text`: one <p> per paragraph, its <meta> naming the
    same charset as the MIME part (a conflicting one would be a different test)."""
    direction = ' dir="rtl"' if rtl else ""
    paragraphs = "\n".join(
        "<p>" + html.escape(paragraph).replace("\n", "<br>\n") + "</p>"
        for paragraph in text.strip().split("\n\n")
    )
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}"{direction}>\n'
        f'<head><meta charset="{charset}"></head>\n'
        f'<body style="font-family: Arial, sans-serif; font-size: 14px">\n{paragraphs}\n{extra}'
        "</body>\n</html>\n"
    )


def _quote(intro: str, text: str) -> str:
    return (
        intro + "\n" + "\n".join(f"> {line}" if line else ">" for line in text.strip().split("\n"))
    )


def _compose(
    number: int,
    *,
    date: datetime,
    sender: str,
    to: Sequence[str],
    subject: str,
    content: bytes,
    cc: Sequence[str] = (),
    bcc: Sequence[str] = (),
    thread: Sequence[int] = (),
    extra: Sequence[tuple[str, str]] = (),
    inbound: bool = True,
    header_codec: str = "ascii",
    mime: bool = True,
) -> bytes:
    """A whole message: headers, then `content` (a part: its own Content-* headers and body).

    `thread` lists the demo numbers of the ancestors, oldest first: References carries them
    all and In-Reply-To the last (RFC 5322 §3.6.4).
    """
    headers: list[tuple[str, str]] = []
    if inbound:
        sender_domain = parseaddr(sender)[1].rpartition("@")[2].lower()
        arrival = (date + timedelta(seconds=37)).astimezone(_OWNER_TZ)
        headers.append(
            (
                "Received",
                f"from mail.{sender_domain} (mail.{sender_domain} [192.0.2.{number}])\n"
                f"\tby mx.{MESSAGE_ID_DOMAIN} with ESMTPS id {number:04X}DEMO;\n"
                f"\t{format_datetime(arrival)}",
            )
        )
    headers += [("Date", format_datetime(date)), ("From", sender), ("To", ",\n ".join(to))]
    if cc:
        headers.append(("Cc", ",\n ".join(cc)))
    if bcc:
        headers.append(("Bcc", ",\n ".join(bcc)))
    headers += [("Subject", subject), ("Message-ID", message_id(number))]
    if thread:
        headers.append(("In-Reply-To", message_id(thread[-1])))
        headers.append(("References", "\n ".join(message_id(parent) for parent in thread)))
    headers += extra
    if mime:
        headers.append(("MIME-Version", "1.0"))
    head = "".join(f"{name}: {value}\n" for name, value in headers)
    return _crlf(head.encode(header_codec) + content)


def _crlf(data: bytes) -> bytes:
    """Parts are assembled with "\n" line ends; the finished message gets CRLF once, here."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _tiny_pdf(title: str) -> bytes:
    """A valid one-page PDF showing `title` (ASCII), with a correct xref table."""
    escaped = title.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("ascii")
    content = b"BT /F1 18 Tf 72 770 Td (" + escaped + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _tiny_png(red: int, green: int, blue: int, size: int = 16) -> bytes:
    """A valid solid-colour PNG (RFC 2083)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    row = b"\x00" + bytes((red, green, blue)) * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * size, 9))
        + chunk(b"IEND", b"")
    )


def _ace(address: str) -> str:
    """The address as it travels in headers: an IDN domain in its ACE form (RFC 5890)."""
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.encode('idna').decode('ascii')}"


@dataclass(frozen=True)
class _Owner:
    now: datetime
    email: str

    @property
    def mailbox(self) -> str:
        return formataddr((DANA.name, self.email))

    def at(
        self, days: float, hours: float = 0, minutes: float = 0, tz: timezone = _OWNER_TZ
    ) -> datetime:
        """The moment `days`, `hours` and `minutes` before now, on the sender's clock."""
        return (self.now - timedelta(days=days, hours=hours, minutes=minutes)).astimezone(tz)


def demo_mailbox(owner_email: str, now: datetime) -> list[DemoMessage]:
    """The demo mailbox of `owner_email` (the demo CRM's user-1, Dana Whitfield), dated
    relative to `now` (tz-aware)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    owner = _Owner(now=now.astimezone(UTC).replace(microsecond=0), email=owner_email)
    return [
        *_northwind(owner),
        *_kessler(owner),
        *_delacroix(owner),
        *_huaxin(owner),
        *_sakurai(owner),
        *_polyarny(owner),
        *_nakheel(owner),
        *_olivares(owner),
        *_unknown_senders(owner),
        *_damaged(owner),
    ]


_JAMES_1 = """Hi Dana,

Thanks for the intro call today. I've passed your details to Sarah O'Connor,
who runs operations and will own the evaluation.

Kind regards,
James Whitaker
Finance Director, Northwind Freight Ltd
"""

_SARAH_1 = """Hi Dana,

Thanks again for the walkthrough on Tuesday. The team liked the live tracking board a lot.

As discussed, we'd like to start the EU rollout with the Rotterdam and Felixstowe hubs in
the first wave. Could you send over a revised proposal covering 40 dispatcher seats and the
customs-document module?

Best regards,
Sarah O'Connor
Head of Operations, Northwind Freight Ltd
"""

_DANA_2 = """Hi Sarah,

Great to hear. I'll put together a revised proposal for Rotterdam and Felixstowe with 40
seats and the customs module by Friday. Marco (copied) will join for the technical review.

Could you share the expected pallet volumes per hub? That drives the API tier.

Best,
Dana
"""

_SARAH_3 = """Hi Dana,

Attached are the Q3 pallet volumes per hub. James from finance is copied - he will need the
proposal for budget sign-off.

Cheers,
Sarah
"""

_DANA_4 = """Hi Sarah, hi James,

Please find the revised proposal attached (v2): 40 seats, customs-document module, and the
volume-based API tier from Sarah's numbers. Happy to walk you through it this week.

Best regards,
Dana Whitfield
Demo Sales Inc.
"""

_PALLETS_CSV = (
    "hub,month,pallets_in,pallets_out\r\n"
    "Rotterdam,2025-07,18240,17995\r\n"
    "Rotterdam,2025-08,19110,18870\r\n"
    "Rotterdam,2025-09,20450,20102\r\n"
    "Felixstowe,2025-07,11020,10890\r\n"
    "Felixstowe,2025-08,11480,11377\r\n"
    "Felixstowe,2025-09,12003,11950\r\n"
).encode("ascii")


def _northwind(owner: _Owner) -> list[DemoMessage]:
    subject = "EU freight tracking rollout - next steps"
    sarah = _person(SARAH.name, SARAH.email)
    james = _person(JAMES.name, JAMES.email)
    marco = _person(MARCO.name, MARCO.email)
    logo = "logo-northwind.7f3a@northwind-freight.test"
    signature = f'<p><img src="cid:{logo}" alt="Northwind Freight" width="16" height="16"></p>\n'
    first = _multipart(
        "alternative",
        "=_alt-01",
        [
            _text(_SARAH_1, "UTF-8", "quoted-printable"),
            _multipart(
                "related",
                "=_rel-01",
                [
                    _text(_html(_SARAH_1, extra=signature), "UTF-8", "quoted-printable", "html"),
                    _attachment(
                        _tiny_png(0, 82, 147),
                        "image/png",
                        'name="northwind-logo.png"',
                        'filename="northwind-logo.png"',
                        disposition="inline",
                        content_id=logo,
                    ),
                ],
                params=' type="text/html";',
            ),
        ],
    )
    third = _multipart(
        "mixed",
        "=_mix-03",
        [
            _text(_SARAH_3 + "\n" + _quote("Dana Whitfield wrote:", _DANA_2), "UTF-8", "7bit"),
            _plain_attachment(_PALLETS_CSV, "text/csv", "pallet_volumes_Q3.csv"),
        ],
    )
    fourth = _multipart(
        "mixed",
        "=_mix-04",
        [
            _text(_DANA_4, "UTF-8", "7bit"),
            _plain_attachment(
                _tiny_pdf("Northwind Freight - Proposal v2"),
                "application/pdf",
                "Northwind_Proposal_v2.pdf",
            ),
        ],
    )
    return [
        DemoMessage(
            "Archive",
            _compose(
                1,
                date=owner.at(27, 3, tz=_LONDON),
                sender=james,
                to=[owner.mailbox],
                subject="Thanks for the intro call",
                content=_text(
                    _JAMES_1,
                    "us-ascii",
                    "7bit",
                ),
            ),
            _SEEN,
            "James Whitaker (person-2, no item of his own) in Archive: R12 links person and"
            " organization only; R8 an archived message is still synced.",
        ),
        DemoMessage(
            "INBOX",
            _compose(
                2,
                date=owner.at(21, 6, 12, _LONDON),
                sender=sarah,
                to=[owner.mailbox],
                subject=subject,
                content=first,
                extra=[("X-Mailer", "Microsoft Outlook 16.0")],
            ),
            _ANSWERED,
            "Sarah O'Connor (person-1) opens a 4-message thread; her only open deal is deal-1,"
            " so R13 auto-links it. multipart/alternative, HTML in multipart/related with an"
            " inline PNG referenced by Content-ID.",
        ),
        DemoMessage(
            "Sent",
            _compose(
                3,
                date=owner.at(21, 2, 40),
                sender=owner.mailbox,
                to=[sarah],
                cc=[marco],
                subject="Re: " + subject,
                content=_text(
                    _DANA_2 + "\n" + _quote("Sarah O'Connor wrote:", _SARAH_1), "UTF-8", "7bit"
                ),
                thread=[2],
                inbound=False,
            ),
            _SEEN,
            "Owner's reply to Sarah, colleague Marco (user-2) in Cc: R12 excludes colleagues.",
        ),
        DemoMessage(
            "INBOX",
            _compose(
                4,
                date=owner.at(19, 4, 5, _LONDON),
                # R12: addresses compare case-insensitively.
                sender=_person(SARAH.name, "Sarah.OConnor@Northwind-Freight.test"),
                to=[owner.mailbox],
                cc=[james],
                subject="RE: " + subject,
                content=third,
                thread=[2, 3],
            ),
            _ANSWERED,
            "Sarah replies from a mixed-case address with James (person-2) in Cc and a CSV"
            " attachment; still one open deal (deal-1) among the persons.",
        ),
        DemoMessage(
            "Sent",
            _compose(
                5,
                date=owner.at(18, 1, 15),
                sender=owner.mailbox,
                to=[sarah, james],
                subject="Re: " + subject,
                content=fourth,
                thread=[2, 3, 4],
                inbound=False,
            ),
            _SEEN,
            "Owner sends proposal v2 as a small PDF; fourth message of the Northwind thread.",
        ),
    ]


_JUERGEN_6 = """Sehr geehrte Frau Whitfield,

vielen Dank für das angenehme Gespräch am Dienstag. Wie besprochen möchten wir die
Nachrüstung unserer CNC-Linie im Werk Süd in zwei Phasen angehen. Könnten Sie uns bis Ende
nächster Woche ein Angebot für Phase 1 (Sensorik und Anbindung an Ihre Plattform) zukommen
lassen?

Parallel läuft bei uns die Verlängerung des Wartungsvertrags für 2025 - dazu meldet sich
Frau Vogel separat bei Ihnen.

Mit freundlichen Grüßen
Jürgen Keßler
Leiter Fertigung
Kessler Präzisionstechnik GmbH
Industriestraße 14, 73430 Aalen
"""

_DANA_7 = """Dear Mr. Keßler,

thank you for your time on Tuesday. Please find attached our offer for phase 1 of the CNC
line retrofit: sensor kit, edge gateway and platform integration for twelve machines.

I am happy to go through it with you and your team in a call.

Kind regards,
Dana Whitfield
"""

_JUERGEN_8 = """Sehr geehrte Frau Whitfield,

besten Dank für das Angebot. Wir prüfen es intern und melden uns bis Ende der Woche.

Eine Frage vorab: Ist die Schulung unserer Instandhalter im Preis für Phase 1 enthalten?
Frau Vogel habe ich in Kopie gesetzt, da sie die Wartungsthemen verantwortet.

Mit freundlichen Grüßen
Jürgen Keßler
"""

_KATRIN_9 = """Guten Tag Frau Whitfield,

zum Wartungsvertrag 2025 hätte ich noch einige Rückfragen:

1. Sind Software-Updates der Edge-Gateways inklusive?
2. Wie schnell reagiert Ihr Support bei einem Ausfall (Reaktionszeit)?
3. Unser Budget liegt bei rund 12.500 € pro Jahr - passt das zu Ihrem Standardpaket?

Den aktuellen Wartungsplan habe ich Ihnen angehängt.

Viele Grüße
Katrin Vogel
Instandhaltung, Kessler Präzisionstechnik GmbH
"""

_MAINTENANCE_CSV = (
    "Maschine;Intervall;Nächste Wartung\r\nDMG-01;quartalsweise;2025-10-06\r\n"
    "DMG-02;quartalsweise;2025-10-13\r\nHermle-07;halbjährlich;2025-11-03\r\n"
).encode("iso-8859-15")


def _kessler(owner: _Owner) -> list[DemoMessage]:
    juergen = _person(JUERGEN.name, JUERGEN.email, "ISO-8859-1", "Q")
    katrin_address = _ace(KATRIN.email)
    subject = "Angebot für die Nachrüstung der CNC-Linie"
    outlook = [("X-Mailer", "Microsoft Outlook 16.0"), ("Content-Language", "de-DE")]
    return [
        DemoMessage(
            "INBOX",
            _compose(
                6,
                date=owner.at(16, 5, 30, _BERLIN),
                sender=juergen,
                to=[owner.mailbox],
                subject=_encoded_words(subject, "ISO-8859-1", "Q"),
                content=_text(_JUERGEN_6, "ISO-8859-1", "quoted-printable"),
                extra=outlook,
            ),
            _ANSWERED,
            "Jürgen Keßler (person-3) has two open deals (deal-2, deal-3): R13 links none and"
            " emits link_choice_needed. German ISO-8859-1 quoted-printable, RFC 2047 Q subject"
            " and display name.",
        ),
        DemoMessage(
            "Sent",
            _compose(
                7,
                date=owner.at(15, 3, 10),
                sender=owner.mailbox,
                to=[juergen],
                subject="Re: " + _encoded_words(subject, "UTF-8", "Q"),
                content=_multipart(
                    "mixed",
                    "=_mix-07",
                    [
                        _text(
                            _DANA_7 + "\n" + _quote("Jürgen Keßler schrieb:", _JUERGEN_6),
                            "UTF-8",
                            "quoted-printable",
                        ),
                        _utf8_attachment(
                            _tiny_pdf("Angebot Nachruestung CNC-Linie Phase 1"),
                            "application/pdf",
                            "Angebot_Nachrüstung_Kessler.pdf",
                        ),
                    ],
                ),
                thread=[6],
                inbound=False,
            ),
            _SEEN,
            "Owner's offer with an RFC 2231 UTF-8 filename (Angebot_Nachrüstung_Kessler.pdf).",
        ),
        DemoMessage(
            "INBOX",
            _compose(
                8,
                date=owner.at(14, 2, 45, _BERLIN),
                sender=juergen,
                to=[owner.mailbox],
                cc=[_person(KATRIN.name, katrin_address)],
                subject="AW: " + _encoded_words(subject, "ISO-8859-1", "Q"),
                content=_multipart(
                    "alternative",
                    "=_alt-08",
                    [
                        _text(_JUERGEN_8, "ISO-8859-1", "quoted-printable"),
                        _text(
                            _html(_JUERGEN_8, "de", charset="ISO-8859-1"),
                            "ISO-8859-1",
                            "quoted-printable",
                            "html",
                        ),
                    ],
                ),
                thread=[6, 7],
                extra=outlook,
            ),
            _SEEN,
            "Jürgen answers ('AW:' prefix) with Katrin Vogel in Cc at the IDN domain in ACE form;"
            " candidates stay deal-2 and deal-3, so still link_choice_needed. ISO-8859-1"
            " multipart/alternative.",
        ),
        DemoMessage(
            "INBOX",
            _compose(
                9,
                date=owner.at(12, 7, 20, _BERLIN),
                sender=_person(KATRIN.name, katrin_address),
                to=[owner.mailbox],
                subject=_encoded_words("Wartungsvertrag 2025 – Rückfragen", "UTF-8", "Q"),
                content=_multipart(
                    "mixed",
                    "=_mix-09",
                    [
                        _text(_KATRIN_9, "ISO-8859-15", "quoted-printable"),
                        _attachment(
                            _MAINTENANCE_CSV,
                            'text/csv; charset="ISO-8859-15"',
                            'name="Wartungsplan_2025.csv"',
                            'filename="Wartungsplan_2025.csv"',
                        ),
                    ],
                ),
            ),
            _UNREAD,
            "Katrin Vogel (person-4) writes from xn--kessler-przision-4nb.test, the ACE form of the"
            " IDN domain kept in the CRM (R12 IDN normalization); her only open deal is deal-3,"
            " so R13 auto-links it. ISO-8859-15 body with the euro sign.",
        ),
    ]


_ELODIE_10 = """Bonjour Dana,

Suite à notre échange, je vous propose d'organiser la réunion de lancement de
l'intégration avec nos caisses en boutique la semaine prochaine. Nos équipes de Lyon et de
Bordeaux seront présentes.

Seriez-vous disponible jeudi à 14h00 (heure de Paris) ?

Bien cordialement,
Élodie Marchand
Directrice des opérations retail
Maison Delacroix SA
"""

_DANA_11 = """Bonjour Élodie,

Thursday 14:00 Paris time works well for us. I will send an invitation with the video link.

Could you share the detailed requirements for the boutiques beforehand?

Best regards,
Dana
"""

_ELODIE_12 = """Bonjour Dana,

Voici le cahier des charges détaillé pour les boutiques de Lyon et de Bordeaux. François
Lemaire, notre responsable financier, est en copie pour le volet facturation.

À jeudi,
Élodie
"""

_FRANCOIS_13 = """Madame,

Veuillez trouver ci-dessous nos coordonnées de facturation pour le futur contrat :

Maison Delacroix SA - Service comptabilité
12, rue de la République, 69002 Lyon
N° TVA intracommunautaire : FR 00 123456789

Nous réglons à 30 jours fin de mois.

Cordialement,
François Lemaire
Responsable financier
"""


def _delacroix(owner: _Owner) -> list[DemoMessage]:
    elodie = _person(ELODIE.name, ELODIE.email, "ISO-8859-1", "B")
    francois = _person(FRANCOIS.name, FRANCOIS.email, "ISO-8859-1", "Q")
    subject = "Intégration caisse : réunion de lancement"
    return [
        DemoMessage(
            "INBOX",
            _compose(
                10,
                date=owner.at(13, 8, 5, _BERLIN),
                sender=elodie,
                to=[owner.mailbox],
                subject=_encoded_words(subject, "ISO-8859-1", "B"),
                content=_multipart(
                    "alternative",
                    "=_alt-10",
                    [
                        _text(_ELODIE_10, "ISO-8859-1", "quoted-printable"),
                        _text(
                            _html(_ELODIE_10, "fr", charset="ISO-8859-1"),
                            "ISO-8859-1",
                            "quoted-printable",
                            "html",
                        ),
                    ],
                ),
                extra=[("User-Agent", "Mozilla Thunderbird")],
            ),
            _ANSWERED,
            "Élodie Marchand (person-5) opens a 3-message thread; one open deal (deal-4), R13"
            " auto-links. French ISO-8859-1 quoted-printable, multipart/alternative, RFC 2047"
            " B subject.",
        ),
        DemoMessage(
            "Sent",
            _compose(
                11,
                date=owner.at(13, 4, 0),
                sender=owner.mailbox,
                to=[elodie],
                subject="Re: " + _encoded_words(subject, "UTF-8", "B"),
                content=_text(
                    _DANA_11 + "\n" + _quote("Élodie Marchand a écrit :", _ELODIE_10),
                    "UTF-8",
                    "quoted-printable",
                ),
                thread=[10],
                inbound=False,
            ),
            _SEEN,
            "Owner's reply to Élodie.",
        ),
        DemoMessage(
            "INBOX",
            _compose(
                12,
                date=owner.at(11, 6, 50, _BERLIN),
                sender=elodie,
                to=[owner.mailbox],
                cc=[francois],
                subject="Re: " + _encoded_words(subject, "ISO-8859-1", "B"),
                content=_multipart(
                    "mixed",
                    "=_mix-12",
                    [
                        _text(_ELODIE_12, "ISO-8859-1", "quoted-printable"),
                        _attachment(
                            _tiny_pdf("Cahier des charges - boutiques Lyon et Bordeaux"),
                            "application/pdf",
                            _rfc2231(
                                "name",
                                "Cahier_des_charges_détaillé_boutiques_Lyon_Bordeaux_v3.pdf",
                                "ISO-8859-1",
                                "fr",
                            ),
                            _rfc2231(
                                "filename",
                                "Cahier_des_charges_détaillé_boutiques_Lyon_Bordeaux_v3.pdf",
                                "ISO-8859-1",
                                "fr",
                            ),
                        ),
                    ],
                ),
                thread=[10, 11],
            ),
            _SEEN,
            "Élodie replies with François (person-6, no item) in Cc; still auto-links deal-4."
            " PDF whose long ISO-8859-1 filename uses RFC 2231 continuations with a language.",
        ),
        DemoMessage(
            "INBOX",
            _compose(
                13,
                date=owner.at(10, 3, 25, _BERLIN),
                sender=francois,
                to=[owner.mailbox],
                subject=_encoded_words("Coordonnées de facturation", "ISO-8859-1", "Q"),
                content=_text(_FRANCOIS_13, "ISO-8859-1", "quoted-printable"),
            ),
            _SEEN,
            "François Lemaire (person-6) alone: no item of his own, R13 links person and"
            " organization only.",
        ),
    ]


_WANG_14 = """Dana 您好：

感谢您上周的产品演示。我们希望尽快推进亚太区代理协议，请问能否在本月底之前提供正式报价？
我们预计第一年的采购量约为五百套。

如有任何问题，请随时与我联系。

此致
敬礼

王伟
华新电子有限公司 销售总监
电话：+86 21 5555 0188
"""

_DANA_15 = """Dear Wang Wei,

Thank you for your interest. Our formal quote for the APAC distributor agreement (500
units in year one) follows by Friday. My colleague Marco Bellini owns the agreement on our side.

Best regards,
Dana Whitfield
"""

# 喆 is in GBK but not in GB2312: the label must be GBK for this text to encode.
_WANG_16 = """Dana 您好：

报价已收到，谢谢。我们的法务负责人张喆会在下周审核合同条款。附件是我们整理的预计订单明细。

王伟
"""

_ORDERS_CSV = "型号,数量,交付季度\r\nHX-200,300,2026Q1\r\nHX-210,200,2026Q2\r\n".encode("gbk")

_CHEN_17 = """Dana 您好：

關於下個月在台北舉行的經銷商會議，我們暫定於十五日上午十點開始，地點在本公司信義區辦公室。
請問您是否方便出席？若時間不合適，請告訴我們。

敬祝 商祺

陳美玲
華新電子 台灣分公司 業務經理
"""


def _huaxin(owner: _Owner) -> list[DemoMessage]:
    wang = _person("王伟", WANG_WEI.email, "GB2312", "B")
    subject = "关于亚太区代理协议的报价"
    foxmail = [("X-Mailer", "Foxmail 7.2.25.228[cn]")]
    orders_name = "预计订单明细.csv"
    return [
        DemoMessage(
            "INBOX",
            _compose(
                14,
                date=owner.at(9, 9, 0, _SHANGHAI),
                sender=wang,
                to=[owner.mailbox],
                subject=_encoded_words(subject, "GB2312", "B"),
                content=_text(_WANG_14, "GB2312", "base64"),
                extra=foxmail,
            ),
            _ANSWERED,
            "Wang Wei (person-7) opens a 3-message thread; one open deal (deal-5, owned by the"
            " colleague), R13 auto-links. Simplified Chinese in GB2312 base64, GB2312 RFC 2047"
            " subject and display name.",
        ),
        DemoMessage(
            "Sent",
            _compose(
                15,
                date=owner.at(8, 2, 30),
                sender=owner.mailbox,
                to=[wang],
                subject="Re: " + _encoded_words(subject, "UTF-8", "B"),
                content=_text(_DANA_15 + "\n" + _quote("王伟 wrote:", _WANG_14), "UTF-8", "base64"),
                thread=[14],
                inbound=False,
            ),
            _SEEN,
            "Owner's reply to Wang Wei in UTF-8.",
        ),
        DemoMessage(
            "INBOX",
            _compose(
                16,
                date=owner.at(7, 10, 15, _SHANGHAI),
                sender=wang,
                to=[owner.mailbox],
                subject=_encoded_words("回复: " + subject, "GBK", "B"),
                content=_multipart(
                    "mixed",
                    "=_mix-16",
                    [
                        _multipart(
                            "alternative",
                            "=_alt-16",
                            [
                                _text(_WANG_16, "GBK", "base64"),
                                _text(
                                    _html(_WANG_16, "zh-CN", charset="GBK"), "GBK", "base64", "html"
                                ),
                            ],
                        ),
                        # Foxmail-style: RFC 2047 inside the quoted name= (not standard, common),
                        # RFC 2231 in the disposition.
                        _attachment(
                            _ORDERS_CSV,
                            'text/csv; charset="GBK"',
                            f'name="{_encoded_words(orders_name, "GBK", "B")}"',
                            _rfc2231("filename", orders_name, "GBK"),
                        ),
                    ],
                ),
                thread=[14, 15],
                extra=foxmail,
            ),
            _UNREAD,
            "Wang Wei answers ('回复:' prefix, R11 subject normalization) in GBK with a"
            " GBK-only character (喆), HTML alternative, and a CSV whose GBK filename is RFC 2231"
            " in Content-Disposition and RFC 2047 in the quoted name=.",
        ),
        DemoMessage(
            "INBOX",
            _compose(
                17,
                date=owner.at(6, 11, 40, _SHANGHAI),
                sender=_person("陳美玲", CHEN_MEILING.email, "Big5", "B"),
                to=[owner.mailbox],
                subject=_encoded_words("台灣區經銷商會議時間確認", "Big5", "B"),
                content=_text(_CHEN_17, "Big5", "base64"),
            ),
            _UNREAD,
            "Chen Mei-ling (person-8) at Huaxin's Taiwan domain, no item of her own: person and"
            " organization only. Traditional Chinese in Big5.",
        ),
    ]


_SATO_18 = """Whitfield様

いつもお世話になっております。桜井精機の佐藤です。

先日はパイロット導入のご契約、誠にありがとうございました。
つきましては、弊社エンジニア向けの導入研修の日程を調整させていただきたく、ご連絡いたしました。
来月第二週の火曜日または水曜日はいかがでしょうか。

何卒よろしくお願いいたします。

佐藤 健
株式会社桜井精機 生産技術部
"""

_DANA_19 = """Dear Sato-san,

Thank you for the kind words. Both Tuesday and Wednesday of the second week work for our
trainers. Yamamoto-san (copied) mentioned she will organise the room - we will align with her.

Best regards,
Dana Whitfield
"""

_YAMAMOTO_20 = """Whitfield様

山本です。研修の件、ご調整いただきありがとうございます。
火曜日の午後であれば、参加者八名全員が出席可能です。
会場は弊社名古屋工場の第二会議室をご用意いたします。

よろしくお願いいたします。

山本 由美
"""


def _sakurai(owner: _Owner) -> list[DemoMessage]:
    sato = _person("佐藤 健", SATO_KEN.email, "ISO-2022-JP", "B")
    yamamoto = _person("山本 由美", YAMAMOTO_YUMI.email, "ISO-2022-JP", "B")
    subject = "導入研修のスケジュールについて"
    becky = [("X-Mailer", "Becky! ver. 2.81.04")]
    return [
        DemoMessage(
            "INBOX",
            _compose(
                18,
                date=owner.at(8, 13, 0, _TOKYO),
                sender=sato,
                to=[owner.mailbox],
                subject=_encoded_words(subject, "ISO-2022-JP", "B"),
                content=_text(_SATO_18, "ISO-2022-JP", "7bit"),
                extra=becky,
            ),
            _ANSWERED,
            "Ken Sato (person-9) opens a 3-message thread; his deal-6 is won (not open) and"
            " project-1 is open, so R13 auto-links project-1. Japanese in ISO-2022-JP 7bit with"
            " ISO-2022-JP RFC 2047 subject and display name.",
        ),
        DemoMessage(
            "Sent",
            _compose(
                19,
                date=owner.at(7, 3, 0),
                sender=owner.mailbox,
                to=[sato],
                cc=[yamamoto],
                subject="Re: " + _encoded_words(subject, "UTF-8", "B"),
                content=_text(
                    _DANA_19 + "\n" + _quote("佐藤 健 wrote:", _SATO_18), "UTF-8", "base64"
                ),
                thread=[18],
                inbound=False,
            ),
            _SEEN,
            "Owner's reply, Yumi Yamamoto (person-10) in Cc.",
        ),
        DemoMessage(
            "INBOX",
            _compose(
                20,
                date=owner.at(6, 14, 30, _TOKYO),
                sender=yamamoto,
                to=[owner.mailbox],
                cc=[sato],
                subject="Re: " + _encoded_words(subject, "ISO-2022-JP", "B"),
                content=_text(_YAMAMOTO_20, "ISO-2022-JP", "7bit"),
                thread=[18, 19],
                extra=becky,
            ),
            _UNREAD,
            "Yumi Yamamoto (person-10) answers; both persons' only open item is project-1.",
        ),
    ]


_ALEXEI_21 = """Добрый день, Дана!

Благодарим за присланное предложение по телематике автопарка. К сожалению, руководство
приняло решение в этом году продолжить работу с текущим поставщиком.

Будем рады вернуться к обсуждению в следующем финансовом году.

С уважением,
Алексей Смирнов
ООО "Полярный Ветер", отдел логистики
"""

_DANA_22 = """Dear Alexei,

Thank you for letting me know, I appreciate the candid feedback. I will reach out again
ahead of your next budget cycle.

Best regards,
Dana
"""

_OLGA_23 = """Здравствуйте, Дана!

Для участия в тендере следующего года нам потребуются сертификаты соответствия и
пример договора. Перечень документов во вложении.

Заранее спасибо.

Ольга Иванова
отдел закупок, ООО "Полярный Ветер"
"""


def _polyarny(owner: _Owner) -> list[DemoMessage]:
    alexei = _person(ALEXEI.name, ALEXEI.email, "KOI8-R", "B")
    subject = "Коммерческое предложение по телематике автопарка"
    return [
        DemoMessage(
            "INBOX",
            _compose(
                21,
                date=owner.at(5, 6, 0, _MOSCOW),
                sender=alexei,
                to=[owner.mailbox],
                subject=_encoded_words(subject, "KOI8-R", "B"),
                content=_text(_ALEXEI_21, "KOI8-R", "8bit"),
                extra=[("X-Mailer", "The Bat! (v9.4.5) Professional")],
            ),
            _ANSWERED,
            "Alexei Smirnov (person-11): his only deal (deal-7) is lost, so R13 links no deal"
            " (only open items count): person and organization only. Russian in KOI8-R 8bit.",
        ),
        DemoMessage(
            "Sent",
            _compose(
                22,
                date=owner.at(5, 1, 20),
                sender=owner.mailbox,
                to=[alexei],
                subject="Re: " + _encoded_words(subject, "UTF-8", "B"),
                content=_text(
                    _DANA_22 + "\n" + _quote("Алексей Смирнов писал(а):", _ALEXEI_21),
                    "UTF-8",
                    "quoted-printable",
                ),
                thread=[21],
                inbound=False,
            ),
            _SEEN,
            "Owner's reply to Alexei.",
        ),
        DemoMessage(
            "INBOX",
            _compose(
                23,
                date=owner.at(4, 9, 10, _MOSCOW),
                sender=_person(OLGA.name, OLGA.email, "KOI8-R", "Q"),
                to=[owner.mailbox],
                subject=_encoded_words("Запрос документов для тендера", "KOI8-R", "Q"),
                content=_multipart(
                    "mixed",
                    "=_mix-23",
                    [
                        _text(_OLGA_23, "KOI8-R", "quoted-printable"),
                        _utf8_attachment(
                            _tiny_pdf("Perechen dokumentov"),
                            "application/pdf",
                            "Перечень документов.pdf",
                        ),
                    ],
                ),
            ),
            _SEEN,
            "Olga Ivanova (person-12), no item: person and organization only. KOI8-R"
            " quoted-printable with a Cyrillic RFC 2231 filename.",
        ),
    ]


_AHMED_24 = """السيدة دانا المحترمة،

تحية طيبة وبعد،

نشكركم على لقائنا في معرض الخليج للخدمات اللوجستية. نرغب في الحصول على عرض سعر لحل تتبع
الشحنات لفرعنا في دبي، مع دعم اللغة العربية في الواجهة.

هل يمكن ترتيب عرض توضيحي خلال الأسبوع القادم؟

مع خالص التحيات،
أحمد الفارسي
شركة النخيل للتجارة – دبي
"""

_DANA_25 = """Dear Mr. Al-Farsi,

Thank you for your message. I would be glad to arrange a demo with Arabic interface support
next week - would Tuesday 11:00 Dubai time suit you?

Best regards,
Dana Whitfield
"""


def _nakheel(owner: _Owner) -> list[DemoMessage]:
    ahmed = _person("أحمد الفارسي", AHMED.email, "UTF-8", "B")
    subject = "طلب عرض سعر لمعرض دبي التجاري"
    return [
        DemoMessage(
            "INBOX",
            _compose(
                24,
                date=owner.at(4, 5, 45, _DUBAI),
                sender=ahmed,
                to=[owner.mailbox],
                subject=_encoded_words(subject, "UTF-8", "B"),
                content=_multipart(
                    "alternative",
                    "=_alt-24",
                    [
                        _text(_AHMED_24, "UTF-8", "base64"),
                        _text(_html(_AHMED_24, "ar", rtl=True), "UTF-8", "base64", "html"),
                    ],
                ),
            ),
            _ANSWERED,
            "Ahmed Al-Farsi (person-13), no item: person and organization only. Arabic"
            ' (right-to-left) UTF-8 base64, HTML with dir="rtl".',
        ),
        DemoMessage(
            "Sent",
            _compose(
                25,
                date=owner.at(3, 8, 0),
                sender=owner.mailbox,
                to=[ahmed],
                subject="Re: " + _encoded_words(subject, "UTF-8", "B"),
                content=_text(_DANA_25, "UTF-8", "7bit"),
                thread=[24],
                inbound=False,
            ),
            _SEEN,
            "Owner's reply to Ahmed.",
        ),
    ]


_LUCIA_26 = """Hola Dana:

Hemos visto vuestra plataforma en la feria de Valencia y nos gustaría organizar una
demostración para el equipo comercial (unas 12 personas). ¿Tendríais disponibilidad la
próxima semana?

Nuestro presupuesto orientativo es de 15.000 € anuales.

Un saludo,
Lucía Fernández
Responsable de Compras – Grupo Olivares S.L.
"""

_DANA_27 = """Hola Lucía,

Thank you for reaching out! Next Wednesday at 10:00 CET works for us; I'll send an invite
for a 45-minute demo for your sales team.

Best,
Dana
"""

_JAVIER_28 = """Hola Dana:

¡Encantado de conoceros en la feria! Te paso mis datos de contacto por si en algún momento
retomamos el tema de la logística de almacén.

Javier Morales
Director Comercial – Grupo Olivares S.L.
Tel. +34 961 555 014
"""

_DANA_29 = """Hola Javier,

Likewise, great meeting you in Valencia. I have saved your details and will keep you posted.

Best,
Dana
"""


def _olivares(owner: _Owner) -> list[DemoMessage]:
    lucia = _person(LUCIA.name, LUCIA.email, "windows-1252", "Q")
    javier = formataddr((JAVIER.name, JAVIER.email))
    subject = "Solicitud de demostración para Grupo Olivares"
    javier_subject = "Feria de Valencia: ¡encantado de conoceros!"
    return [
        DemoMessage(
            "INBOX",
            _compose(
                26,
                date=owner.at(3, 11, 30, _BERLIN),
                sender=lucia,
                to=[owner.mailbox],
                subject=_encoded_words(subject, "windows-1252", "Q"),
                content=_text(_LUCIA_26, "windows-1252", "quoted-printable"),
                extra=[("X-Mailer", "Microsoft Outlook 16.0")],
            ),
            _ANSWERED,
            "Lucía Fernández (person-14): her only open item is lead-1, R13 auto-links the"
            " lead. Spanish in windows-1252 quoted-printable (euro sign, en dash).",
        ),
        DemoMessage(
            "Sent",
            _compose(
                27,
                date=owner.at(2, 9, 0),
                sender=owner.mailbox,
                to=[lucia],
                bcc=[formataddr((MARCO.name, MARCO.email))],
                subject="RE: " + _encoded_words(subject, "UTF-8", "Q"),
                content=_text(_DANA_27, "UTF-8", "quoted-printable"),
                thread=[26],
                inbound=False,
            ),
            _SEEN,
            "Owner's reply to Lucía with the colleague in Bcc (kept in the Sent copy).",
        ),
        DemoMessage(
            "INBOX",
            _compose(
                28,
                date=owner.at(2, 6, 15, _BERLIN),
                sender=javier,
                to=[owner.mailbox],
                subject=javier_subject,
                content=_text(_JAVIER_28, "UTF-8", "8bit"),
                header_codec="utf-8",
            ),
            _ANSWERED,
            "Javier Morales (person-15): his lead-2 is archived (not open): person and"
            " organization only. Raw UTF-8 Subject (RFC 6532), UTF-8 8bit body.",
        ),
        DemoMessage(
            "Sent",
            _compose(
                29,
                date=owner.at(1, 10, 0),
                sender=owner.mailbox,
                to=[javier],
                subject="Re: " + _encoded_words(javier_subject, "UTF-8", "Q"),
                content=_text(_DANA_29, "UTF-8", "7bit"),
                inbound=False,
            ),
            _SEEN,
            "Owner's reply to Javier sent from a client that dropped In-Reply-To/References:"
            " R11 falls back to the normalized subject plus two shared participants.",
        ),
    ]


_MARCO_30 = """Hi Dana,

Before your call with Kessler on Thursday - do you have ten minutes for a quick sync? I'd
like to understand whether phase 1 and the service contract should be one deal or two.

Marco
"""

_NEWSLETTER = """FREIGHT WEEKLY - Issue 212

* Port congestion eases in Rotterdam as autumn volumes normalise
* EU customs: what the new ICS2 release 3 means for road carriers
* Interview: building a real-time tracking desk in 90 days

Read online: https://freightweekly.test/issues/212?utm_source=newsletter&utm_medium=email

You receive this newsletter because you subscribed at freightweekly.test.
Unsubscribe: https://freightweekly.test/u/8c1f2e
"""

_INVOICE = """Hello Dana Whitfield,

Your CloudDesk invoice INV-2025-0412 for 3 seats (USD 87.00) is attached.
It will be charged to the card ending in 4242.

- The CloudDesk team
This is an automated message; replies are not monitored.
"""

_WEBINAR = """You are invited to: Webinar - Predictive freight ETAs

When: in five days, 16:00-17:00 UTC
Where: online, the link follows after registration

Logistics Summit Team
"""


def _ics(owner: _Owner) -> str:
    def stamp(moment: datetime) -> str:
        return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    start = (owner.now + timedelta(days=5)).replace(hour=16, minute=0, second=0)
    lines = [
        "BEGIN:VCALENDAR",
        "PRODID:-//Logistics Summit//Webinars//EN",
        "VERSION:2.0",
        "METHOD:REQUEST",
        "BEGIN:VEVENT",
        "UID:webinar-eta-212@logistics-summit.test",
        f"DTSTAMP:{stamp(owner.now - timedelta(days=9))}",
        f"DTSTART:{stamp(start)}",
        f"DTEND:{stamp(start + timedelta(hours=1))}",
        "SUMMARY:Webinar – Predictive freight ETAs",
        "ORGANIZER;CN=Logistics Summit Team:mailto:events@logistics-summit.test",
        f"ATTENDEE;RSVP=TRUE;CN=Dana Whitfield:mailto:{owner.email}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(lines) + "\r\n"


_DSN_TEXT = """This is the mail system at host mx.demo-sales.test.

I'm sorry to have to inform you that your message could not be delivered to one or more
recipients.

<lucia.fernandes@grupo-olivares.test>: host mx.grupo-olivares.test said:
    550 5.1.1 <lucia.fernandes@grupo-olivares.test>: Recipient address rejected:
    User unknown
"""


def _unknown_senders(owner: _Owner) -> list[DemoMessage]:
    newsletter = _compose(
        31,
        date=owner.at(20, 12, 0, _LONDON),
        sender=formataddr(("Freight Weekly", "newsletter@freightweekly.test")),
        to=[owner.mailbox],
        subject="Freight Weekly #212: Rotterdam congestion eases",
        content=_multipart(
            "alternative",
            "=_alt-31",
            [
                _text(_NEWSLETTER, "UTF-8", "quoted-printable"),
                _text(_html(_NEWSLETTER), "UTF-8", "quoted-printable", "html"),
            ],
        ),
        extra=[
            ("Reply-To", "editor@freightweekly.test"),
            ("List-Id", "Freight Weekly <weekly.freightweekly.test>"),
            (
                "List-Unsubscribe",
                "<https://freightweekly.test/u/8c1f2e>,\n <mailto:unsubscribe@freightweekly.test>",
            ),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ("Precedence", "bulk"),
        ],
    )
    invoice = _compose(
        32,
        date=owner.at(11, 1, 0, _LONDON),
        sender=formataddr(("CloudDesk Billing", "billing@clouddesk.test")),
        to=[owner.mailbox],
        subject="Your CloudDesk invoice INV-2025-0412 is available",
        content=_multipart(
            "mixed",
            "=_mix-32",
            [
                _multipart(
                    "alternative",
                    "=_alt-32",
                    [
                        _text(_INVOICE, "us-ascii", "7bit"),
                        _text(_html(_INVOICE), "UTF-8", "quoted-printable", "html"),
                    ],
                ),
                _plain_attachment(
                    _tiny_pdf("CloudDesk invoice INV-2025-0412"),
                    "application/pdf",
                    "CloudDesk_INV-2025-0412.pdf",
                ),
            ],
        ),
        extra=[("Auto-Submitted", "auto-generated")],
    )
    invitation = _compose(
        33,
        date=owner.at(9, 2, 0, _LONDON),
        sender=formataddr(("Logistics Summit Team", "events@logistics-summit.test")),
        to=[owner.mailbox],
        subject=_encoded_words("Invitation: Webinar – Predictive freight ETAs", "UTF-8", "Q"),
        content=_multipart(
            "alternative",
            "=_alt-33",
            [
                _text(_WEBINAR, "UTF-8", "7bit"),
                _text(_html(_WEBINAR), "UTF-8", "quoted-printable", "html"),
                _text(
                    _ics(owner), "UTF-8", "quoted-printable", "calendar", extra="; method=REQUEST"
                ),
            ],
        ),
    )
    bounce_headers = (
        f"From: {formataddr((DANA.name, owner.email))}\n"
        "To: lucia.fernandes@grupo-olivares.test\n"
        "Subject: Demo for Grupo Olivares\n"
        f"Message-ID: <demo-draft-01@{MESSAGE_ID_DOMAIN}>\n"
    )
    bounce = _compose(
        34,
        date=owner.at(2, 8, 58),
        sender=formataddr(("Mail Delivery System", f"MAILER-DAEMON@mx.{MESSAGE_ID_DOMAIN}")),
        to=[owner.mailbox],
        subject="Undelivered Mail Returned to Sender",
        content=_multipart(
            "report",
            "=_report-34",
            [
                _text(_DSN_TEXT, "us-ascii", "7bit"),
                (
                    "Content-Type: message/delivery-status\n\n"
                    f"Reporting-MTA: dns; mx.{MESSAGE_ID_DOMAIN}\n\n"
                    "Final-Recipient: rfc822; lucia.fernandes@grupo-olivares.test\n"
                    "Action: failed\nStatus: 5.1.1\n"
                    "Diagnostic-Code: smtp; 550 5.1.1 User unknown\n"
                ).encode("ascii"),
                ("Content-Type: text/rfc822-headers\n\n" + bounce_headers).encode("ascii"),
            ],
            params=" report-type=delivery-status;",
        ),
        extra=[("Auto-Submitted", "auto-replied")],
    )
    colleague = _compose(
        30,
        date=owner.at(1, 4, 30),
        sender=formataddr((MARCO.name, MARCO.email)),
        to=[owner.mailbox],
        subject="Quick sync on Kessler before Thursday?",
        content=_text(_MARCO_30, "UTF-8", "7bit"),
    )
    return [
        DemoMessage(
            "INBOX",
            colleague,
            _UNREAD,
            "Colleague Marco (user-2) writes to the owner: R12 excludes colleagues, so nothing"
            " links although the body names Kessler.",
        ),
        DemoMessage(
            "INBOX",
            newsletter,
            _SEEN,
            "Newsletter from an unknown sender (List-Unsubscribe, Precedence: bulk): no link.",
        ),
        DemoMessage(
            "Archive",
            invoice,
            _SEEN,
            "Automated invoice notification from an unknown sender with a PDF, archived: no link.",
        ),
        DemoMessage(
            "INBOX",
            invitation,
            _UNREAD,
            "Calendar invitation from an unknown sender (text/calendar in multipart/alternative):"
            " no link.",
        ),
        DemoMessage(
            "INBOX",
            bounce,
            _UNREAD,
            "Delivery status notification (multipart/report) for a mistyped address at a known"
            " domain: the failed address is in the body only, so no link.",
        ),
    ]


_JAMES_35 = """Hi Dana,

Please find the signed delivery notes for the pilot shipments attached.

Regards,
James
"""

_SHOP_36 = """Sehr geehrte Damen und Herren,

vielen Dank für Ihre Bestellung Nr. 88213 bei Bürobedarf Schäfer.
Lieferung: 3 x Flipchart-Block, 2 x Whiteboard-Marker-Set
Gesamtbetrag: 64,90 EUR

Mit freundlichen Grüßen
Ihr Team von Bürobedarf Schäfer
"""

_EXPO_37 = """Estimada Dana:

Le confirmamos su acreditación para Expo Logística 2025 (pabellón 3, stand C-14).
Presente este correo en el mostrador de acreditación. Horario: 9:00–19:00.

“Nos vemos en Valencia”
Organización Expo Logística
"""

# 镕 is in GBK but not in GB2312: mislabelled GBK is the most common charset error in Chinese mail.
_EXPO_CN_38 = """尊敬的展商：

您在第十届亚太物流博览会的展位（B馆 216号）已预订成功。
如需变更，请联系会务组朱镕先生。

亚太物流博览会组委会
"""


def _damaged(owner: _Owner) -> list[DemoMessage]:
    truncated_pdf = base64.encodebytes(_tiny_pdf("Delivery notes - signed"))[:300]
    cut_off = _compose(
        35,
        date=owner.at(17, 9, 0, _LONDON),
        sender=_person(JAMES.name, JAMES.email),
        to=[owner.mailbox],
        subject="Signed delivery notes",
        content=(
            b'Content-Type: multipart/mixed; boundary="----=_Part_35_cut"\n\n'
            b"------=_Part_35_cut\n"
            + _text(_JAMES_35, "us-ascii", "7bit")
            + b"------=_Part_35_cut\n"
            + b'Content-Type: application/pdf; name="delivery_notes_signed.pdf"\n'
            + b"Content-Transfer-Encoding: base64\n"
            + b'Content-Disposition: attachment; filename="delivery_notes_signed.pdf"\n\n'
            + truncated_pdf
        ),
    )
    # Pre-MIME mailer: Latin-1 bytes in headers and body, no MIME-Version, no charset anywhere.
    undeclared = _compose(
        36,
        date=owner.at(15, 10, 0, _BERLIN),
        sender="Bürobedarf Schäfer <bestellung@buerobedarf-schaefer.test>",
        to=[owner.email],
        subject="Ihre Bestellbestätigung Nr. 88213",
        content=b"\n" + _SHOP_36.encode("iso-8859-1"),
        header_codec="iso-8859-1",
        mime=False,
    )
    unknown_charset = _compose(
        37,
        date=owner.at(6, 4, 0, _BERLIN),
        sender=formataddr(("Expo Logistica", "acreditaciones@expo-logistica.test")),
        to=[owner.mailbox],
        subject=_encoded_words(
            "Acreditación Expo Logística 2025", "x-unknown", "Q", codec="windows-1252"
        ),
        content=_text(_EXPO_37, "x-unknown", "quoted-printable", codec="windows-1252"),
    )
    mislabelled = _compose(
        38,
        date=owner.at(5, 12, 0, _SHANGHAI),
        sender=_person("亚太物流博览会", "info@apl-expo.test", "GB2312", "B"),
        to=[owner.mailbox],
        subject=_encoded_words("展位预订确认通知", "GB2312", "B"),
        content=_text(_EXPO_CN_38, "GB2312", "base64", codec="gbk"),
    )
    return [
        DemoMessage(
            "INBOX",
            cut_off,
            _SEEN,
            "Broken MIME from James Whitaker (person-2): the multipart has no closing boundary"
            " and the PDF is cut off mid-base64; R10 stores it anyway and it still links to"
            " James and Northwind.",
        ),
        DemoMessage(
            "INBOX",
            undeclared,
            _SEEN,
            "Broken MIME from an unknown shop: undeclared 8-bit Latin-1 bytes in From, Subject"
            " and body, no MIME-Version or Content-Type; R10 stores it anyway.",
        ),
        DemoMessage(
            "INBOX",
            unknown_charset,
            _UNREAD,
            "Unknown charset label x-unknown (the bytes are windows-1252) in the subject's"
            " encoded word and the body: no codec knows it; R10 must still store it.",
        ),
        DemoMessage(
            "INBOX",
            mislabelled,
            _UNREAD,
            "Chinese notification labelled GB2312 whose body is GBK (contains 镕, which GB2312"
            " lacks): a parser should fall back to the GBK superset.",
        ),
    ]
