"""A corpus of hostile messages (R10), built byte by byte, each with what parsing it must give.

Every message is something real mail servers deliver: mislabelled and unknown charsets, raw
8-bit headers, MIME whose boundaries are missing or never closed, forwarded messages nested
three deep, headers by the megabyte or by the thousand, NUL bytes, bare LF or bare CR line
ends, nothing at all, RFC 2231 continuations, right-to-left subjects, damaged base64 and
quoted-printable, ISO-2022-JP, an unreadable Date, a doubled Message-ID. `NASTY_MESSAGES`
maps a stable name to the message and its expectation; the unit tests parse them, the
integration test sends them through Dovecot and ingest.
"""

from __future__ import annotations

import base64
import quopri
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Expected:
    """What parsing must give. A field left None is not checked, except `parse_error`: None
    there means the message must parse without one; a string is what the reason must hold."""

    subject: str | None = None
    sender: str | None = None
    snippet: str | None = None
    filenames: tuple[str, ...] | None = None
    message_id: str | None = None
    parse_error: str | None = None


@dataclass(frozen=True, slots=True)
class NastyMessage:
    raw: bytes
    expected: Expected


def _b64(text: str, codec: str) -> str:
    return base64.b64encode(text.encode(codec)).decode("ascii")


def _crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("ascii")


_HEADERS = "From: Mallory <mallory@hostile.test>\nTo: dana@demo-sales.test\n"

_RFC822_LEVEL_3 = _crlf(
    "From: Third <third@deep.test>\nSubject: level three\nMessage-ID: <l3@deep.test>\n\n"
    "the innermost text\n"
)
_RFC822_LEVEL_2 = (
    _crlf(
        "From: Second <second@deep.test>\nSubject: level two\n"
        "Content-Type: multipart/mixed; boundary=l2\n\n"
        "--l2\nContent-Type: text/plain\n\nlevel two text\n"
        "--l2\nContent-Type: message/rfc822\n\n"
    )
    + _RFC822_LEVEL_3
    + b"\r\n--l2--\r\n"
)
_RFC822_LEVEL_1 = (
    _crlf(
        "From: First <first@deep.test>\nSubject: level one\n"
        "Content-Type: multipart/mixed; boundary=l1\n\n"
        "--l1\nContent-Type: text/plain\n\nlevel one text\n"
        "--l1\nContent-Type: message/rfc822\n\n"
    )
    + _RFC822_LEVEL_2
    + b"\r\n--l1--\r\n"
)

NASTY_MESSAGES: dict[str, NastyMessage] = {
    "unknown-charset-label": NastyMessage(
        _crlf(
            _HEADERS + "Subject: =?x-klingon?Q?Acreditaci=F3n?=\n"
            "Content-Type: text/plain; charset=x-klingon\n\n"
        )
        + "Acreditación confirmada".encode("cp1252"),
        Expected(
            subject="Acreditación",
            snippet="Acreditación confirmada",
            parse_error="unknown charset 'x-klingon' read as windows-1252",
        ),
    ),
    "bogus-charset-label-with-nul-and-quotes": NastyMessage(
        _crlf(_HEADERS + 'Subject: bogus label\nContent-Type: text/plain; charset="base64\\""\n\n')
        + "Grüße".encode(),
        Expected(subject="bogus label", snippet="Grüße", parse_error="unknown charset"),
    ),
    "gbk-text-labelled-gb2312": NastyMessage(
        _crlf(
            _HEADERS + f"Subject: =?GB2312?B?{_b64('朱镕基先生 张喆', 'gbk')}?=\n"
            "Content-Type: text/plain; charset=GB2312\nContent-Transfer-Encoding: base64\n\n"
            f"{_b64('朱镕先生：张喆的报价已经附上。', 'gbk')}\n"
        ),
        Expected(subject="朱镕基先生 张喆", snippet="朱镕先生：张喆的报价已经附上。"),
    ),
    "windows-1252-labelled-iso-8859-1": NastyMessage(
        _crlf(
            _HEADERS + "Subject: =?iso-8859-1?Q?=80_15.000_=96_=84Angebot=93?=\n"
            "Content-Type: text/plain; charset=iso-8859-1\n"
            "Content-Transfer-Encoding: 8bit\n\n"
        )
        + "Preis: 15.000 € – „Angebot“ für Sie".encode("cp1252"),
        Expected(subject="€ 15.000 – „Angebot“", snippet="Preis: 15.000 € – „Angebot“ für Sie"),
    ),
    "utf-8-label-on-latin-1-text": NastyMessage(
        _crlf(_HEADERS + "Subject: mislabelled\nContent-Type: text/plain; charset=utf-8\n\n")
        + "Café crème".encode("latin-1"),
        Expected(
            subject="mislabelled",
            snippet="Caf\ufffd cr\ufffdme",
            parse_error="text not valid in its declared charset 'utf-8'",
        ),
    ),
    "multipart-never-closed": NastyMessage(
        _crlf(
            _HEADERS + "Subject: cut off\nContent-Type: multipart/mixed; boundary=cut\n\n"
            "--cut\nContent-Type: text/plain\n\nthe text before the cut\n"
            "--cut\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n"
            "Content-Disposition: attachment; filename=half.pdf\n\n"
            "JVBERi0xLjQKJcfs\nj6IKNSAwIG9iago8"
        ),
        Expected(
            subject="cut off",
            snippet="the text before the cut",
            filenames=("half.pdf",),
            parse_error="CloseBoundaryNotFoundDefect",
        ),
    ),
    "multipart-boundary-never-opened": NastyMessage(
        _crlf(
            _HEADERS + "Subject: no delimiter\n"
            'Content-Type: multipart/alternative; boundary="never-used"\n\n'
            "Plain words where parts should have been.\n"
        ),
        Expected(subject="no delimiter", snippet="", parse_error="StartBoundaryNotFoundDefect"),
    ),
    "multipart-without-boundary-parameter": NastyMessage(
        _crlf(
            _HEADERS + "Subject: no boundary\nContent-Type: multipart/mixed\n\n"
            "--x\nContent-Type: text/plain\n\nhello\n--x--\n"
        ),
        Expected(subject="no boundary", snippet="", parse_error="NoBoundaryInMultipartDefect"),
    ),
    "outlook-unquoted-boundary-with-equals": NastyMessage(
        _crlf(
            _HEADERS + "Subject: outlook express\n"
            "Content-Type: multipart/alternative; boundary=----=_NextPart_000_0012_01D9\n\n"
            "This is a multi-part message in MIME format.\n\n"
            "------=_NextPart_000_0012_01D9\nContent-Type: text/plain; charset=windows-1252\n\n"
            "Outlook text\n"
            "------=_NextPart_000_0012_01D9\nContent-Type: text/html\n\n<p>Outlook html</p>\n"
            "------=_NextPart_000_0012_01D9--\n"
        ),
        Expected(subject="outlook express", snippet="Outlook text"),
    ),
    "boundary-with-junk-after-the-quote": NastyMessage(
        _crlf(
            _HEADERS + "Subject: junk boundary\n"
            'Content-Type: multipart/mixed; boundary="b1" junk\n\n'
            "--b1\nContent-Type: text/plain\n\nreadable anyway\n--b1--\n"
        ),
        Expected(subject="junk boundary", snippet="readable anyway"),
    ),
    "raw-utf-8-headers": NastyMessage(
        "From: Jürgen Keßler <j.kessler@kessler-präzision.test>\r\n"
        "To: Dana <dana@demo-sales.test>\r\nSubject: Rückfrage zum Angebot ✓\r\n\r\n"
        "Grüße\r\n".encode(),
        Expected(
            subject="Rückfrage zum Angebot ✓",
            sender="j.kessler@kessler-präzision.test",
            snippet="Grüße",
        ),
    ),
    "raw-latin-1-headers": NastyMessage(
        "From: Bürobedarf Schäfer <info@schaefer.test>\r\nTo: dana@demo-sales.test\r\n"
        "Subject: Bestellbestätigung für Sie\r\n\r\nVielen Dank für Ihre Bestellung\r\n".encode(
            "latin-1"
        ),
        Expected(
            subject="Bestellbestätigung für Sie",
            sender="info@schaefer.test",
            snippet="Vielen Dank für Ihre Bestellung",
            parse_error="read as windows-1252",
        ),
    ),
    "message-rfc822-three-deep": NastyMessage(
        _crlf(
            _HEADERS + "Subject: Fwd: Fwd: Fwd: level one\n"
            "Content-Type: multipart/mixed; boundary=l0\n\n"
            "--l0\nContent-Type: text/plain\n\nsee the forwarded chain\n"
            "--l0\nContent-Type: message/rfc822\n"
            "Content-Disposition: attachment; filename=chain.eml\n\n"
        )
        + _RFC822_LEVEL_1
        + b"\r\n--l0--\r\n",
        Expected(
            subject="Fwd: Fwd: Fwd: level one",
            snippet="see the forwarded chain",
            filenames=("chain.eml",),
        ),
    ),
    "one-megabyte-header": NastyMessage(
        _crlf(_HEADERS + "Subject: huge header\nX-Junk: ")
        + b"x" * 1_000_000
        + b"\r\n\r\nafter the huge header\r\n",
        Expected(subject="huge header", snippet="after the huge header"),
    ),
    "five-thousand-headers": NastyMessage(
        _crlf(_HEADERS + "Subject: many headers\n")
        + b"".join(b"X-Trace-%d: hop %d\r\n" % (n, n) for n in range(5_000))
        + b"\r\nafter five thousand headers\r\n",
        Expected(subject="many headers", snippet="after five thousand headers"),
    ),
    "nul-bytes-everywhere": NastyMessage(
        b"From: Nul\x00l <nul@hostile.test>\r\nTo: dana@demo-sales.test\r\n"
        b"Subject: nul\x00 in\x00side\r\n\r\nbody\x00 with\x00 nuls\r\n",
        Expected(subject="nul inside", sender="nul@hostile.test", snippet="body with nuls"),
    ),
    "bare-lf-line-ends": NastyMessage(
        (
            _HEADERS + "Subject: unix line ends\nContent-Type: multipart/alternative; boundary=u\n"
            "\n--u\nContent-Type: text/plain\n\nlf only\n--u\nContent-Type: text/html\n\n"
            "<p>lf</p>\n--u--\n"
        ).encode(),
        Expected(subject="unix line ends", snippet="lf only"),
    ),
    "bare-cr-line-ends": NastyMessage(
        (_HEADERS + "Subject: classic mac line ends\nContent-Type: text/plain\n\ncr only\n")
        .replace("\n", "\r")
        .encode(),
        Expected(subject="classic mac line ends", snippet="cr only"),
    ),
    "empty-message": NastyMessage(b"", Expected(subject="", snippet="", filenames=())),
    "empty-message-but-one-blank-line": NastyMessage(
        b"\r\n", Expected(subject="", snippet="", filenames=())
    ),
    "headers-without-body": NastyMessage(
        _crlf(_HEADERS + "Subject: nothing follows\nMessage-ID: <headers-only@hostile.test>"),
        Expected(
            subject="nothing follows",
            sender="mallory@hostile.test",
            snippet="",
            message_id="headers-only@hostile.test",
        ),
    ),
    "rfc2231-continuations-in-several-charsets": NastyMessage(
        _crlf(
            _HEADERS + "Subject: filenames\nContent-Type: multipart/mixed; boundary=f\n\n"
            "--f\nContent-Type: text/plain\n\nfour files\n"
            "--f\nContent-Type: application/pdf\nContent-Disposition: attachment;\n"
            " filename*0*=UTF-8''%C3%9Cbersicht%20der;\n filename*1*=%20Pr%C3%A4mien;\n"
            " filename*2=.pdf\n\nJVBERg==\n"
            "--f\nContent-Type: text/csv\nContent-Disposition: attachment;\n"
            " filename*0*=iso-8859-1'fr'd%E9tail_;\n filename*1*=co%FBts.csv\n\nYQ==\n"
            "--f\nContent-Type: application/vnd.ms-excel\nContent-Disposition: attachment;\n"
            " filename*0*=gb2312''%D6%EC%E9%46;\n filename*1*=%B1%A8%BC%DB.xls\n\nYQ==\n"
            "--f\nContent-Type: application/msword\nContent-Disposition: attachment;\n"
            " filename*0*=koi8-r''%F0%D2%C5%C4%CC%CF%D6%C5%CE%C9%C5;\n filename*1=.doc\n\nYQ==\n"
            "--f--\n"
        ),
        Expected(
            subject="filenames",
            snippet="four files",
            filenames=(
                "Übersicht der Prämien.pdf",
                "détail_coûts.csv",
                "朱镕报价.xls",
                "Предложение.doc",
            ),
        ),
    ),
    "hebrew-subject-right-to-left": NastyMessage(
        _crlf(
            _HEADERS + f"Subject: =?windows-1255?B?{_b64('הצעת מחיר לפגישה', 'cp1255')}?=\n"
            "Content-Type: text/plain; charset=iso-8859-8-i\nContent-Transfer-Encoding: base64\n\n"
            f"{_b64('שלום דנה, מצורפת הצעת המחיר.', 'iso-8859-8')}\n"
        ),
        Expected(subject="הצעת מחיר לפגישה", snippet="שלום דנה, מצורפת הצעת המחיר."),
    ),
    "arabic-subject-right-to-left": NastyMessage(
        _crlf(
            _HEADERS + f"Subject: =?utf-8?B?{_b64('طلب عرض سعر', 'utf-8')}?= "
            f"=?windows-1256?B?{_b64(' لمعرض دبي', 'cp1256')}?=\n"
            "Content-Type: text/plain; charset=windows-1256\n"
            "Content-Transfer-Encoding: quoted-printable\n\n"
        )
        + quopri.encodestring("سلام عليكم".encode("cp1256"))
        + b"\r\n",
        Expected(subject="طلب عرض سعر لمعرض دبي", snippet="سلام عليكم"),
    ),
    "base64-with-garbage": NastyMessage(
        _crlf(
            _HEADERS + "Subject: broken base64\nContent-Type: text/plain; charset=utf-8\n"
            "Content-Transfer-Encoding: base64\n\n"
            "SGVsbG8g!!d29y*bGQ=\n@@@\nbm90IGJhc2U2NA\n"
        ),
        Expected(
            subject="broken base64",
            snippet="Hello world",
            parse_error="InvalidBase64CharactersDefect",
        ),
    ),
    "quoted-printable-broken-soft-breaks": NastyMessage(
        _crlf(
            _HEADERS + "Subject: broken qp\nContent-Type: text/plain; charset=utf-8\n"
            "Content-Transfer-Encoding: quoted-printable\n\n"
            "soft=  \nbreak with spaces after the equals, =ZZ bad escape, =C3=A9 good,=\n"
            " trailing equals ="
        ),
        Expected(subject="broken qp", snippet="soft"),
    ),
    "iso-2022-jp": NastyMessage(
        _crlf(
            _HEADERS
            + "Subject: =?ISO-2022-JP?B?"
            + base64.b64encode("導入研修のご案内".encode("iso2022_jp")).decode()
            + "?=\nContent-Type: text/plain; charset=ISO-2022-JP\n"
            "Content-Transfer-Encoding: 7bit\n\n"
        )
        + "佐藤様、研修の日程をご確認ください。".encode("iso2022_jp")
        + b"\r\n",
        Expected(subject="導入研修のご案内", snippet="佐藤様、研修の日程をご確認ください。"),
    ),
    "unparseable-date": NastyMessage(
        _crlf(_HEADERS + "Subject: when?\nDate: Tomorrow at noon-ish, 31 Feb 20X5\n\nsoon\n"),
        Expected(subject="when?", snippet="soon"),
    ),
    "duplicate-message-id": NastyMessage(
        _crlf(
            _HEADERS + "Subject: two ids\nMessage-ID: <first@hostile.test>\n"
            "Message-ID: <second@hostile.test>\n\nwhich one\n"
        ),
        Expected(subject="two ids", snippet="which one", message_id="first@hostile.test"),
    ),
}
