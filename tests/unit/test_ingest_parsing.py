"""R10: raw mail, whatever its charset or damage, becomes the fields an ingested event carries.

The demo mailbox (tools/devstack demo_mailbox) is the realistic corpus: its messages are
written byte by byte the way real mailers write them, and its module holds the text each one
was meant to show, which is what these tests compare with. Hostile input (empty, random,
huge, deeply nested, mutated) must never raise and must never yield text that cannot be
serialized. Also here: the IMAP FETCH answer parser that feeds the parser its bytes.
"""

from __future__ import annotations

import base64
import json
import random
import re
from dataclasses import asdict
from datetime import UTC, datetime, timedelta, timezone

import pytest

from mailsync_devstack import demo_crm as crm
from mailsync_devstack import demo_mailbox as demo
from mailsync_devstack.demo_data import DEMO_OWNER_EMAIL, DemoMessage, demo_mailbox
from mailsync_ingest.adapters.imap import FetchedMessage, _parse_fetch
from mailsync_mime.parsing import (
    SNIPPET_LENGTH,
    ParsedMessage,
    Participant,
    decode_text,
    parse_message,
)

NOW = datetime(2025, 10, 20, 15, 0, tzinfo=UTC)
OWNER = DEMO_OWNER_EMAIL
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def collapsed(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def message(headers: str, body: bytes = b"body\r\n") -> bytes:
    """A message from `headers` (one per line, "\\n" ends) and a raw body, with CRLF ends."""
    return headers.replace("\n", "\r\n").encode("utf-8") + b"\r\n" + body


@pytest.fixture(scope="module")
def mailbox() -> list[DemoMessage]:
    return demo_mailbox(OWNER, NOW)


@pytest.fixture(scope="module")
def parsed_demo(mailbox: list[DemoMessage]) -> dict[int, ParsedMessage]:
    """Every demo message parsed, by its demo number (from its Message-ID)."""
    by_number: dict[int, ParsedMessage] = {}
    for item in mailbox:
        parsed = parse_message(item.raw)
        assert parsed.message_id is not None
        by_number[int(parsed.message_id.split("@")[0].removeprefix("demo-"))] = parsed
    return by_number


def assert_serializable(parsed: ParsedMessage) -> None:
    """Every string is valid Unicode without C0 controls: JSON, UTF-8 and Postgres take it."""
    encoded = json.dumps(asdict(parsed), default=str, ensure_ascii=False).encode("utf-8")
    assert b"\\u0000" not in encoded

    def walk(value: object) -> None:
        if isinstance(value, str):
            assert not _CONTROL.search(value), value
            value.encode("utf-8")
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(asdict(parsed))
    assert len(parsed.snippet) <= SNIPPET_LENGTH


# What each demo message was written to show: subject, sender address and display name, the
# body text its text/plain part (or HTML) holds first, its attachments' file names.
DEMO_EXPECTATIONS: list[tuple[int, str, str, str | None, str, tuple[str, ...]]] = [
    (1, "Thanks for the intro call", crm.JAMES.email, "James Whitaker", demo._JAMES_1, ()),
    (
        2,
        "EU freight tracking rollout - next steps",
        crm.SARAH.email,
        "Sarah O'Connor",
        demo._SARAH_1,
        ("northwind-logo.png",),
    ),
    (3, "Re: EU freight tracking rollout - next steps", OWNER, "Dana Whitfield", demo._DANA_2, ()),
    (
        4,
        "RE: EU freight tracking rollout - next steps",
        "Sarah.OConnor@Northwind-Freight.test",
        "Sarah O'Connor",
        demo._SARAH_3,
        ("pallet_volumes_Q3.csv",),
    ),
    (
        5,
        "Re: EU freight tracking rollout - next steps",
        OWNER,
        "Dana Whitfield",
        demo._DANA_4,
        ("Northwind_Proposal_v2.pdf",),
    ),
    (
        6,
        "Angebot für die Nachrüstung der CNC-Linie",
        crm.JUERGEN.email,
        "Jürgen Keßler",
        demo._JUERGEN_6,
        (),
    ),
    (
        7,
        "Re: Angebot für die Nachrüstung der CNC-Linie",
        OWNER,
        "Dana Whitfield",
        demo._DANA_7,
        ("Angebot_Nachrüstung_Kessler.pdf",),
    ),
    (
        8,
        "AW: Angebot für die Nachrüstung der CNC-Linie",
        crm.JUERGEN.email,
        "Jürgen Keßler",
        demo._JUERGEN_8,
        (),
    ),
    (
        9,
        "Wartungsvertrag 2025 – Rückfragen",
        "katrin.vogel@xn--kessler-przision-4nb.test",
        "Katrin Vogel",
        demo._KATRIN_9,
        ("Wartungsplan_2025.csv",),
    ),
    (
        10,
        "Intégration caisse : réunion de lancement",
        crm.ELODIE.email,
        "Élodie Marchand",
        demo._ELODIE_10,
        (),
    ),
    (
        11,
        "Re: Intégration caisse : réunion de lancement",
        OWNER,
        "Dana Whitfield",
        demo._DANA_11,
        (),
    ),
    (
        12,
        "Re: Intégration caisse : réunion de lancement",
        crm.ELODIE.email,
        "Élodie Marchand",
        demo._ELODIE_12,
        ("Cahier_des_charges_détaillé_boutiques_Lyon_Bordeaux_v3.pdf",),
    ),
    (
        13,
        "Coordonnées de facturation",
        crm.FRANCOIS.email,
        "François Lemaire",
        demo._FRANCOIS_13,
        (),
    ),
    (14, "关于亚太区代理协议的报价", crm.WANG_WEI.email, "王伟", demo._WANG_14, ()),
    (15, "Re: 关于亚太区代理协议的报价", OWNER, "Dana Whitfield", demo._DANA_15, ()),
    (
        16,
        "回复: 关于亚太区代理协议的报价",
        crm.WANG_WEI.email,
        "王伟",
        demo._WANG_16,
        ("预计订单明细.csv",),
    ),
    (17, "台灣區經銷商會議時間確認", crm.CHEN_MEILING.email, "陳美玲", demo._CHEN_17, ()),
    (18, "導入研修のスケジュールについて", crm.SATO_KEN.email, "佐藤 健", demo._SATO_18, ()),
    (19, "Re: 導入研修のスケジュールについて", OWNER, "Dana Whitfield", demo._DANA_19, ()),
    (
        20,
        "Re: 導入研修のスケジュールについて",
        crm.YAMAMOTO_YUMI.email,
        "山本 由美",
        demo._YAMAMOTO_20,
        (),
    ),
    (
        21,
        "Коммерческое предложение по телематике автопарка",
        crm.ALEXEI.email,
        "Алексей Смирнов",
        demo._ALEXEI_21,
        (),
    ),
    (
        22,
        "Re: Коммерческое предложение по телематике автопарка",
        OWNER,
        "Dana Whitfield",
        demo._DANA_22,
        (),
    ),
    (
        23,
        "Запрос документов для тендера",
        crm.OLGA.email,
        "Ольга Иванова",
        demo._OLGA_23,
        ("Перечень документов.pdf",),
    ),
    (24, "طلب عرض سعر لمعرض دبي التجاري", crm.AHMED.email, "أحمد الفارسي", demo._AHMED_24, ()),
    (25, "Re: طلب عرض سعر لمعرض دبي التجاري", OWNER, "Dana Whitfield", demo._DANA_25, ()),
    (
        26,
        "Solicitud de demostración para Grupo Olivares",
        crm.LUCIA.email,
        "Lucía Fernández",
        demo._LUCIA_26,
        (),
    ),
    (
        27,
        "RE: Solicitud de demostración para Grupo Olivares",
        OWNER,
        "Dana Whitfield",
        demo._DANA_27,
        (),
    ),
    (
        28,
        "Feria de Valencia: ¡encantado de conoceros!",
        crm.JAVIER.email,
        "Javier Morales",
        demo._JAVIER_28,
        (),
    ),
    (
        29,
        "Re: Feria de Valencia: ¡encantado de conoceros!",
        OWNER,
        "Dana Whitfield",
        demo._DANA_29,
        (),
    ),
    (
        30,
        "Quick sync on Kessler before Thursday?",
        crm.MARCO.email,
        "Marco Bellini",
        demo._MARCO_30,
        (),
    ),
    (
        31,
        "Freight Weekly #212: Rotterdam congestion eases",
        "newsletter@freightweekly.test",
        "Freight Weekly",
        demo._NEWSLETTER,
        (),
    ),
    (
        32,
        "Your CloudDesk invoice INV-2025-0412 is available",
        "billing@clouddesk.test",
        "CloudDesk Billing",
        demo._INVOICE,
        ("CloudDesk_INV-2025-0412.pdf",),
    ),
    (
        33,
        "Invitation: Webinar – Predictive freight ETAs",
        "events@logistics-summit.test",
        "Logistics Summit Team",
        demo._WEBINAR,
        (),
    ),
    (
        34,
        "Undelivered Mail Returned to Sender",
        "MAILER-DAEMON@mx.demo-sales.test",
        "Mail Delivery System",
        demo._DSN_TEXT,
        (),
    ),
    (
        35,
        "Signed delivery notes",
        crm.JAMES.email,
        "James Whitaker",
        demo._JAMES_35,
        ("delivery_notes_signed.pdf",),
    ),
    (
        36,
        "Ihre Bestellbestätigung Nr. 88213",
        "bestellung@buerobedarf-schaefer.test",
        "Bürobedarf Schäfer",
        demo._SHOP_36,
        (),
    ),
    (
        37,
        "Acreditación Expo Logística 2025",
        "acreditaciones@expo-logistica.test",
        "Expo Logistica",
        demo._EXPO_37,
        (),
    ),
    (38, "展位预订确认通知", "info@apl-expo.test", "亚太物流博览会", demo._EXPO_CN_38, ()),
]

# The damaged messages, and what their parse_error must mention.
BROKEN_DEMO_MESSAGES = {
    35: "CloseBoundaryNotFoundDefect",
    36: "windows-1252",
    37: "x-unknown",
}


def test_r10_the_demo_corpus_is_the_one_these_expectations_describe(
    mailbox: list[DemoMessage], parsed_demo: dict[int, ParsedMessage]
) -> None:
    assert len(mailbox) == 38
    assert sorted(parsed_demo) == list(range(1, 39))
    assert sorted(number for number, *_ in DEMO_EXPECTATIONS) == list(range(1, 39))


@pytest.mark.parametrize(
    ("number", "subject", "sender_email", "sender_name", "body", "filenames"),
    DEMO_EXPECTATIONS,
    ids=[f"demo-{row[0]:02d}" for row in DEMO_EXPECTATIONS],
)
def test_r10_every_demo_message_decodes_to_the_text_it_was_written_with(
    parsed_demo: dict[int, ParsedMessage],
    number: int,
    subject: str,
    sender_email: str,
    sender_name: str | None,
    body: str,
    filenames: tuple[str, ...],
) -> None:
    parsed = parsed_demo[number]
    assert parsed.subject == subject
    assert parsed.sender is not None
    assert parsed.sender.email == sender_email
    assert parsed.sender.name == sender_name
    intended = collapsed(body)[:SNIPPET_LENGTH]
    assert parsed.snippet
    # A reply's text/plain part goes on with the quoted original after the intended text.
    assert parsed.snippet.startswith(intended.strip()) or intended.startswith(parsed.snippet)
    assert len(parsed.snippet) <= SNIPPET_LENGTH
    assert tuple(a.filename for a in parsed.attachments) == filenames
    assert_serializable(parsed)


@pytest.mark.parametrize("number", range(1, 39), ids=lambda n: f"demo-{n:02d}")
def test_r10_only_the_damaged_demo_messages_carry_a_parse_error(
    parsed_demo: dict[int, ParsedMessage], number: int
) -> None:
    parsed = parsed_demo[number]
    if number in BROKEN_DEMO_MESSAGES:
        assert parsed.parse_error is not None
        assert BROKEN_DEMO_MESSAGES[number] in parsed.parse_error
        assert parsed.sender is not None
        assert parsed.subject
    else:
        assert parsed.parse_error is None


@pytest.mark.parametrize(
    ("number", "charset_shown"),
    [
        (14, "GB2312 body and RFC 2047 subject/name"),
        (16, "GBK body with 喆, GBK RFC 2231 filename"),
        (17, "Big5"),
        (18, "ISO-2022-JP"),
        (21, "KOI8-R"),
        (24, "UTF-8 Arabic, right to left"),
        (38, "GBK body labelled GB2312 (朱镕)"),
    ],
)
def test_r10_cjk_cyrillic_and_rtl_bodies_keep_every_character(
    parsed_demo: dict[int, ParsedMessage], number: int, charset_shown: str
) -> None:
    parsed = parsed_demo[number]
    assert "\ufffd" not in parsed.snippet, charset_shown
    assert "\ufffd" not in parsed.subject, charset_shown


def test_r10_gb2312_labelled_gbk_body_decodes_the_characters_gb2312_lacks(
    parsed_demo: dict[int, ParsedMessage],
) -> None:
    assert "朱镕先生" in parsed_demo[38].snippet
    assert "张喆" in parsed_demo[16].snippet


def test_r10_right_to_left_text_keeps_its_logical_order(
    parsed_demo: dict[int, ParsedMessage],
) -> None:
    parsed = parsed_demo[24]
    assert parsed.snippet.startswith("السيدة دانا المحترمة،")
    assert parsed.has_html


def test_r10_undeclared_latin1_headers_and_body_are_read_as_windows_1252(
    parsed_demo: dict[int, ParsedMessage],
) -> None:
    parsed = parsed_demo[36]
    assert parsed.sender is not None
    assert parsed.sender.name == "Bürobedarf Schäfer"
    assert "vielen Dank für Ihre Bestellung" in parsed.snippet
    assert [(p.email, p.name) for p in parsed.to] == [(OWNER, None)]


def test_r10_broken_mime_without_closing_boundary_still_lists_the_cut_attachment(
    parsed_demo: dict[int, ParsedMessage],
) -> None:
    parsed = parsed_demo[35]
    assert [a.content_type for a in parsed.attachments] == ["application/pdf"]
    assert parsed.attachments[0].size > 0


def test_r10_inline_image_keeps_its_content_id(parsed_demo: dict[int, ParsedMessage]) -> None:
    (logo,) = parsed_demo[2].attachments
    assert logo.content_type == "image/png"
    assert logo.content_id == "logo-northwind.7f3a@northwind-freight.test"


def test_r10_calendar_and_delivery_report_parts_are_not_attachments(
    parsed_demo: dict[int, ParsedMessage],
) -> None:
    assert parsed_demo[33].attachments == ()
    assert parsed_demo[34].attachments == ()


def test_r11_demo_reply_carries_in_reply_to_and_the_whole_reference_chain(
    parsed_demo: dict[int, ParsedMessage],
) -> None:
    parsed = parsed_demo[5]
    assert parsed.message_id == "demo-05@demo-sales.test"
    assert parsed.in_reply_to == "demo-04@demo-sales.test"
    assert parsed.references == (
        "demo-02@demo-sales.test",
        "demo-03@demo-sales.test",
        "demo-04@demo-sales.test",
    )


def test_r11_demo_reply_from_a_client_that_dropped_the_references_has_none(
    parsed_demo: dict[int, ParsedMessage],
) -> None:
    assert parsed_demo[29].in_reply_to is None
    assert parsed_demo[29].references == ()


def test_r12_demo_cc_at_an_idn_domain_arrives_in_ace_form(
    parsed_demo: dict[int, ParsedMessage],
) -> None:
    assert [p.email for p in parsed_demo[8].cc] == ["katrin.vogel@xn--kessler-przision-4nb.test"]


def test_r10_every_demo_date_is_timezone_aware_and_in_the_thirty_days_before_now(
    parsed_demo: dict[int, ParsedMessage],
) -> None:
    for parsed in parsed_demo.values():
        assert parsed.sent_at is not None
        assert parsed.sent_at.tzinfo is not None
        assert NOW - timedelta(days=30) <= parsed.sent_at <= NOW


@pytest.mark.parametrize(
    ("headers", "message_id", "in_reply_to", "references"),
    [
        (
            "Message-ID: <A1@x.test>\nIn-Reply-To: <p2@x.test>\n"
            "References: <p1@x.test> <p2@x.test>",
            "A1@x.test",
            "p2@x.test",
            ("p1@x.test", "p2@x.test"),
        ),
        (
            "Message-ID:\n <folded@x.test>\nReferences: <p1@x.test>\n\t<p2@x.test>\n <p3@x.test>",
            "folded@x.test",
            None,
            ("p1@x.test", "p2@x.test", "p3@x.test"),
        ),
        (
            "In-Reply-To: <p2@x.test> (Sarah's message of Monday)\n"
            "References: <p1@x.test><p2@x.test>",
            None,
            "p2@x.test",
            ("p1@x.test", "p2@x.test"),
        ),
        ("Message-ID: bare-id@x.test", "bare-id@x.test", None, ()),
        ("References: p1@x.test p2@x.test", None, None, ("p1@x.test", "p2@x.test")),
        ("References: <p1@x.test> <p1@x.test>", None, None, ("p1@x.test",)),
        ("Message-ID: <>\nIn-Reply-To:", None, None, ()),
        ("Subject: none of them", None, None, ()),
    ],
    ids=[
        "plain",
        "folded",
        "comment-and-no-space",
        "no-brackets",
        "references-without-brackets",
        "duplicate-reference",
        "empty",
        "absent",
    ],
)
def test_r11_message_id_in_reply_to_and_references_are_extracted(
    headers: str,
    message_id: str | None,
    in_reply_to: str | None,
    references: tuple[str, ...],
) -> None:
    parsed = parse_message(message(f"From: a@x.test\n{headers}\n"))
    assert parsed.message_id == message_id
    assert parsed.in_reply_to == in_reply_to
    assert parsed.references == references


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        (
            "Mon, 20 Oct 2025 10:00:00 +0200",
            datetime(2025, 10, 20, 10, 0, tzinfo=timezone(timedelta(hours=2))),
        ),
        ("Mon, 20 Oct 2025 10:00:00 GMT", datetime(2025, 10, 20, 10, 0, tzinfo=UTC)),
        (
            "20 Oct 25 10:00 EST",
            datetime(2025, 10, 20, 10, 0, tzinfo=timezone(timedelta(hours=-5))),
        ),
        # RFC 5322 §3.3: -0000 and a missing zone mean "unknown": read as UTC, never naive.
        ("Mon, 20 Oct 2025 10:00:00 -0000", datetime(2025, 10, 20, 10, 0, tzinfo=UTC)),
        ("Mon, 20 Oct 2025 10:00:00", datetime(2025, 10, 20, 10, 0, tzinfo=UTC)),
        ("not a date", None),
        ("Mon, 32 Oct 2025 10:00:00 +0000", None),
        ("Mon, 20 Oct 2025 25:00:00 +0000", None),
        ("Mon, 20 Oct 2025 10:00:00 +9999", None),
        ("Mon, 20 Oct 99999999999 10:00:00 +0000", None),
        ("", None),
    ],
)
def test_r10_dates_with_and_without_a_zone_parse_and_garbage_gives_none(
    date: str, expected: datetime | None
) -> None:
    parsed = parse_message(message(f"From: a@x.test\nDate: {date}\n"))
    assert parsed.sent_at == expected
    if parsed.sent_at is not None:
        assert parsed.sent_at.tzinfo is not None


def test_r10_a_message_without_date_header_has_no_sent_at() -> None:
    assert parse_message(message("From: a@x.test\n")).sent_at is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("To: a@x.test", [("a@x.test", None)]),
        (
            'To: "Smith, Ann" <ann@x.test>, bob@x.test (Bob B.)',
            [("ann@x.test", "Smith, Ann"), ("bob@x.test", "Bob B.")],
        ),
        ("To: =?utf-8?Q?Doe=2C_John?= <j@x.test>", [("j@x.test", "Doe, John")]),
        # Foxmail and others put encoded words inside quotes; GBK labelled GB2312.
        ('To: "=?GB2312?B?1uzpRg==?=" <zhu@x.test>', [("zhu@x.test", "朱镕")]),
        # RFC 6532: raw UTF-8 name and IDN domain.
        (
            "To: Käthe Vogel <k@kessler-präzision.test>",
            [("k@kessler-präzision.test", "Käthe Vogel")],
        ),
        ("To: k@xn--kessler-przision-4nb.test", [("k@xn--kessler-przision-4nb.test", None)]),
        (
            "To: Team: x@x.test, y@x.test;, z@x.test",
            [("x@x.test", None), ("y@x.test", None), ("z@x.test", None)],
        ),
        ("To: undisclosed-recipients:;", []),
        ("To: not an address, <also-not>, ok@x.test", [("ok@x.test", None)]),
        ("To: a@x.test\nTo: b@x.test", [("a@x.test", None), ("b@x.test", None)]),
    ],
    ids=[
        "bare",
        "quoted-comma-and-comment",
        "encoded-comma",
        "encoded-in-quotes-gbk",
        "utf8-idn",
        "ace-idn",
        "group",
        "empty-group",
        "junk-among-good",
        "two-to-headers",
    ],
)
def test_r12_recipients_are_read_with_decoded_names_and_idn_domains(
    header: str, expected: list[tuple[str, str | None]]
) -> None:
    parsed = parse_message(message(f"From: a@x.test\n{header}\n"))
    assert [(p.email, p.name) for p in parsed.to] == expected
    assert_serializable(parsed)


def test_r10_a_recipient_that_is_no_address_is_reported_not_silently_dropped() -> None:
    parsed = parse_message(message("From: a@x.test\nTo: nobody, <also-not>, ok@x.test\n"))
    assert [p.email for p in parsed.to] == ["ok@x.test"]
    assert parsed.parse_errors == (
        "unreadable To address 'nobody'",
        "unreadable To address 'also-not'",
    )


def test_r12_cc_bcc_and_reply_to_are_read_like_to() -> None:
    parsed = parse_message(
        message("From: a@x.test\nCc: c@x.test\nBcc: b@x.test\nReply-To: Desk <r@x.test>\n")
    )
    assert [p.email for p in parsed.cc] == ["c@x.test"]
    assert [p.email for p in parsed.bcc] == ["b@x.test"]
    assert [(p.email, p.name) for p in parsed.reply_to] == [("r@x.test", "Desk")]


def test_r10_a_message_without_from_has_no_sender_and_keeps_everything_else() -> None:
    parsed = parse_message(message("To: b@x.test\nSubject: anonymous\nMessage-ID: <n@x.test>\n"))
    assert parsed.sender is None
    assert parsed.subject == "anonymous"
    assert parsed.message_id == "n@x.test"
    assert parsed.snippet == "body"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("=?UTF-8?B?w5xiZXJzaWNodA==?=", "Übersicht"),
        (
            "Re: =?ISO-8859-1?Q?Caf=E9_cr=E8me?= =?ISO-8859-1?Q?_br=FBl=E9e?=",
            "Re: Café crème brûlée",
        ),
        # A multi-byte character split across two encoded words (RFC 2047 §5 forbids it;
        # mailers do it anyway): the bytes are joined before decoding.
        ("=?UTF-8?B?w6k=?= =?UTF-8?B?4oKs?=", "é€"),
        ("=?UTF-8?B?5oqA?=\n =?UTF-8?B?5pyv?=", "技术"),
        ("=?utf-8*en?Q?language_tagged?=", "language tagged"),
        ("=?GB2312?B?1uzpRg==?=", "朱镕"),
        ("=?x-unknown?Q?Acreditaci=F3n?=", "Acreditación"),
        ("=?utf-8?B?!!!?= kept", "=?utf-8?B?!!!?= kept"),
        ("  lots   of\n\t  space  ", "lots of space"),
        ("Raw UTF-8: ¡hola!", "Raw UTF-8: ¡hola!"),
    ],
    ids=[
        "b",
        "q-two-words",
        "split-character",
        "folded-words",
        "rfc2231-language",
        "gb2312-label-gbk-text",
        "unknown-charset",
        "undecodable-word-kept",
        "whitespace",
        "rfc6532",
    ],
)
def test_r10_rfc2047_subjects_decode_to_the_intended_text(subject: str, expected: str) -> None:
    parsed = parse_message(message(f"From: a@x.test\nSubject: {subject}\n"))
    assert parsed.subject == expected
    assert_serializable(parsed)


def test_r10_html_only_body_gives_a_text_snippet_without_tags_scripts_or_styles() -> None:
    markup = (
        b"<!DOCTYPE html><html><head><title>Newsletter title</title>"
        b"<style>p { color: red }</style></head><body>"
        b"<!-- tracking comment --><SCRIPT type='text/javascript'>alert('x')</SCRIPT>"
        b"<p>Caf&eacute; &amp; bar&nbsp;menu</p><div>Second&#32;block</div>"
        b"<p>1 &lt; 2</p></body></html>"
    )
    parsed = parse_message(
        message("From: a@x.test\nContent-Type: text/html; charset=utf-8\n", markup)
    )
    assert parsed.has_html
    assert parsed.snippet == "Café & bar menu Second block 1 < 2"


def test_r10_plain_text_wins_over_html_in_multipart_alternative() -> None:
    body = (
        b"--b\r\nContent-Type: text/plain\r\n\r\nplain words\r\n"
        b"--b\r\nContent-Type: text/html\r\n\r\n<p>html words</p>\r\n--b--\r\n"
    )
    parsed = parse_message(
        message('From: a@x.test\nContent-Type: multipart/alternative; boundary="b"\n', body)
    )
    assert parsed.snippet == "plain words"
    assert parsed.has_html


def test_r10_snippet_is_whitespace_collapsed_and_at_most_200_characters() -> None:
    words = " ".join(f"word{i}" for i in range(500))
    body = words.replace(" ", " \r\n\t\u00a0 ").encode("utf-8")
    parsed = parse_message(
        message("From: a@x.test\nContent-Type: text/plain; charset=utf-8\n", body)
    )
    assert len(parsed.snippet) <= SNIPPET_LENGTH
    assert parsed.snippet == words[:SNIPPET_LENGTH].strip()
    assert "  " not in parsed.snippet


@pytest.mark.parametrize(
    ("disposition", "filename"),
    [
        ('attachment; filename="Übersicht.pdf"', "Übersicht.pdf"),
        ("attachment; filename*=UTF-8''%C3%9Cbersicht.pdf", "Übersicht.pdf"),
        ("attachment; filename*=gb2312''%D6%EC%E9%46.txt", "朱镕.txt"),
        ("attachment; filename*=x-unknown''Acreditaci%F3n.txt", "Acreditación.txt"),
        (
            "attachment; filename*0*=ISO-8859-1'fr'd%E9tail_;\r\n\tfilename*1*=long.pdf",
            "détail_long.pdf",
        ),
        ('attachment; filename="=?UTF-8?B?w5xiZXJzaWNodC5wZGY=?="', "Übersicht.pdf"),
        ('attachment; filename="C:\\\\Users\\\\dana\\\\offer.pdf"', "offer.pdf"),
        ('attachment; filename="../../etc/passwd"', "passwd"),
        ("attachment", None),
    ],
    ids=[
        "raw-utf8",
        "rfc2231-utf8",
        "rfc2231-gb2312-label-gbk-text",
        "rfc2231-unknown-charset",
        "rfc2231-continuations",
        "rfc2047-in-quotes",
        "windows-path",
        "traversal",
        "no-name",
    ],
)
def test_r10_rfc2231_and_rfc2047_attachment_filenames_decode(
    disposition: str, filename: str | None
) -> None:
    body = (
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\n"
        + f"Content-Disposition: {disposition}\r\n".encode()
        + b"Content-Transfer-Encoding: base64\r\n\r\nYWJj\r\n--b--\r\n"
    )
    parsed = parse_message(
        message('From: a@x.test\nContent-Type: multipart/mixed; boundary="b"\n', body)
    )
    (attachment,) = parsed.attachments
    assert attachment.filename == filename
    assert attachment.size == 3
    assert parsed.snippet == "see attached"
    assert_serializable(parsed)


def test_r10_an_attached_message_is_one_attachment_not_its_inner_parts() -> None:
    inner = (
        b"From: z@x.test\r\nSubject: inner\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n"
        b"--i\r\nContent-Type: text/plain\r\n\r\ninner text\r\n"
        b"--i\r\nContent-Type: image/png\r\n\r\nPNG\r\n--i--\r\n"
    )
    body = (
        b"--b\r\nContent-Type: text/plain\r\n\r\nouter text\r\n"
        b"--b\r\nContent-Type: message/rfc822\r\n"
        b"Content-Disposition: attachment; filename=forwarded.eml\r\n\r\n" + inner + b"--b--\r\n"
    )
    parsed = parse_message(
        message('From: a@x.test\nContent-Type: multipart/mixed; boundary="b"\n', body)
    )
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [
        ("forwarded.eml", "message/rfc822")
    ]
    assert parsed.attachments[0].size > 0
    assert parsed.snippet == "outer text"


@pytest.mark.parametrize(
    ("payload", "charset", "expected"),
    [
        ("朱镕先生".encode("gbk"), "gb2312", "朱镕先生"),
        ("朱镕先生".encode("gbk"), "GBK", "朱镕先生"),
        ("會議".encode("big5"), "big5", "會議"),
        ("研修".encode("iso2022_jp"), "ISO-2022-JP", "研修"),
        ("①㈱".encode("cp932"), "shift_jis", "①㈱"),
        ("Привет".encode("koi8_r"), "KOI8-R", "Привет"),
        ("15.000 €".encode("cp1252"), "iso-8859-1", "15.000 €"),
        ("Grüße".encode("latin-1"), "ISO-8859-15", "Grüße"),
        ("Acreditación".encode("cp1252"), "x-unknown", "Acreditación"),
        ("Grüße".encode(), None, "Grüße"),
        ("Grüße".encode("latin-1"), None, "Grüße"),
        ("Grüße".encode("latin-1"), "us-ascii", "Grüße"),
        (b"\xef\xbb\xbfBOM first", "utf-8", "BOM first"),
        (b"quoted", '"UTF-8"', "quoted"),
        (b"caf\xe9", "rot13", "café"),
        (b"caf\xe9", "base64", "café"),
        (b"caf\xe9", "zlib", "café"),
        (b"caf\xe9", "undefined", "café"),
        (b"caf\xe9", "utf-8\x00", "café"),
        (b"broken \xff utf-8", "utf-8", "broken \ufffd utf-8"),
        (b"", "gb2312", ""),
    ],
)
def test_r10_decode_text_reads_every_charset_label_and_never_raises(
    payload: bytes, charset: str | None, expected: str
) -> None:
    assert decode_text(payload, charset) == expected


@pytest.mark.parametrize(
    "charset", ["rot13", "base64", "zlib", "hex", "bz2", "uu", "undefined", "idna", "utf-8\x00"]
)
def test_r10_a_body_labelled_with_a_non_text_codec_still_parses(charset: str) -> None:
    raw = message(
        f'From: a@x.test\nSubject: s\nContent-Type: text/plain; charset="{charset}"\n', b"caf\xe9"
    )
    parsed = parse_message(raw)
    assert parsed.snippet == "café"
    assert parsed.parse_error is not None
    assert_serializable(parsed)


def test_r10_control_characters_never_reach_the_event() -> None:
    raw = b"From: Eve\x00 <e@x.test>\r\nSubject: a\x00b\x07c\r\n\r\nbody\x00text\x1b"
    parsed = parse_message(raw)
    assert parsed.subject == "abc"
    assert parsed.snippet == "bodytext"
    assert parsed.sender == Participant("e@x.test", "Eve")
    assert_serializable(parsed)


HOSTILE_INPUTS: dict[str, bytes] = {
    "empty": b"",
    "one-newline": b"\r\n",
    "no-header-separator": b"just some text without any header",
    "nul-bytes": b"\x00" * 1000,
    "random-1k": random.Random(1).randbytes(1024),
    "random-64k": random.Random(2).randbytes(65536),
    "headers-only": b"From: a@x.test\r\nSubject: s",
    "multipart-without-boundary": b"Content-Type: multipart/mixed\r\n\r\n--x\r\nhi\r\n",
    "multipart-nested-thousands-deep": b"From: a@x.test\r\nSubject: deep\r\n"
    + b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(3000)
    )
    + b"Content-Type: text/plain\r\n\r\ntext\r\n",
    "bad-base64-body": b"Content-Transfer-Encoding: base64\r\n\r\n!!!not*base64===",
    "bad-quoted-printable": b"Content-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n=",
    "html-open-script-forever": b"Content-Type: text/html\r\n\r\n" + b"<script" * 200_000,
    "html-unclosed-angles": b"Content-Type: text/html\r\n\r\n" + b"<" * 1_000_000 + b">x",
    "html-unclosed-comments": b"Content-Type: text/html\r\n\r\n" + b"<!--" * 200_000,
    "huge-header-line": b"Subject: " + b"x" * 1_000_000 + b"\r\n\r\nbody",
    "many-encoded-words": b"Subject: " + b"=?utf-8?B?w5w=?= " * 20_000 + b"\r\n\r\nbody",
    "many-recipients": b"".join(b"To: r%d@x.test\r\n" % i for i in range(5_000)) + b"\r\nbody",
}


@pytest.mark.parametrize("raw", HOSTILE_INPUTS.values(), ids=HOSTILE_INPUTS.keys())
def test_r10_hostile_input_never_raises_and_yields_serializable_fields(raw: bytes) -> None:
    assert_serializable(parse_message(raw))


def test_r10_a_body_too_deep_for_the_parser_still_keeps_the_headers() -> None:
    parsed = parse_message(HOSTILE_INPUTS["multipart-nested-thousands-deep"])
    assert parsed.sender == Participant("a@x.test", None)
    assert parsed.subject == "deep"
    assert parsed.parse_error is not None


def test_r10_a_five_megabyte_attachment_is_measured_not_refused() -> None:
    data = random.Random(3).randbytes(5 * 1024 * 1024)
    body = (
        b"--b\r\nContent-Type: text/plain\r\n\r\nthe big file\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment; filename=big.bin\r\n\r\n"
        + base64.encodebytes(data)
        + b"--b--\r\n"
    )
    parsed = parse_message(
        message('From: a@x.test\nContent-Type: multipart/mixed; boundary="b"\n', body)
    )
    assert [(a.filename, a.size) for a in parsed.attachments] == [("big.bin", len(data))]
    assert parsed.snippet == "the big file"
    assert parsed.parse_error is None


def test_r10_mutated_demo_messages_never_raise(mailbox: list[DemoMessage]) -> None:
    """A deterministic stand-in for property-based fuzzing (hypothesis is not installed):
    byte flips, truncations and spliced garbage over every demo message."""
    rng = random.Random(10)
    for item in mailbox:
        for _ in range(15):
            raw = bytearray(item.raw)
            operation = rng.randrange(3)
            if operation == 0:
                for _ in range(rng.randrange(1, 20)):
                    raw[rng.randrange(len(raw))] = rng.randrange(256)
            elif operation == 1:
                del raw[rng.randrange(len(raw)) :]
            else:
                at = rng.randrange(len(raw))
                raw[at:at] = rng.randbytes(rng.randrange(1, 200))
            assert_serializable(parse_message(bytes(raw)))


# --- IMAP FETCH answers (aioimaplib's split) -------------------------------------------------

RAW_1 = b"From: a@x.test\r\nSubject: one\r\n\r\nfirst\r\n"
RAW_2 = b"From: b@x.test\r\nSubject: two\r\n\r\nsecond\r\n"


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            [
                b"1 FETCH (UID 1 FLAGS (\\Seen) BODY[] {%d}" % len(RAW_1),
                bytearray(RAW_1),
                b")",
                b"Fetch completed (0.001 + 0.000 secs).",
            ],
            [FetchedMessage(1, ("\\Seen",), RAW_1)],
        ),
        (
            [
                b"1 FETCH (UID 5 FLAGS (\\Seen \\Answered $Label1) BODY[] {%d}" % len(RAW_1),
                bytearray(RAW_1),
                b")",
                b"2 FETCH (UID 9 FLAGS () BODY[] {%d}" % len(RAW_2),
                bytearray(RAW_2),
                b")",
                b"Fetch completed.",
            ],
            [
                FetchedMessage(5, ("\\Seen", "\\Answered", "$Label1"), RAW_1),
                FetchedMessage(9, (), RAW_2),
            ],
        ),
        (
            [
                b"3 FETCH (FLAGS (\\Flagged) BODY[] {%d}" % len(RAW_1),
                bytearray(RAW_1),
                b" UID 7)",
                b"Fetch completed.",
            ],
            [FetchedMessage(7, ("\\Flagged",), RAW_1)],
        ),
        (
            [
                b"3 FETCH (BODY[] {%d}" % len(RAW_1),
                bytearray(RAW_1),
                b" UID 7 FLAGS (\\Seen))",
                b"Fetch completed.",
            ],
            [FetchedMessage(7, ("\\Seen",), RAW_1)],
        ),
        (
            [
                b"4 FETCH (FLAGS (\\Deleted) UID 12)",
                b"1 FETCH (UID 1 BODY[] {0}",
                bytearray(b""),
                b")",
                b"Fetch completed.",
            ],
            [FetchedMessage(1, (), b"")],
        ),
        (
            [b"1 fetch (uid 3 flags (\\Seen) body[] {%d}" % len(RAW_1), bytearray(RAW_1), b")"],
            [FetchedMessage(3, ("\\Seen",), RAW_1)],
        ),
        (
            [
                b"1 FETCH (UID 1 BODY[] {%d}" % len(RAW_1),
                bytearray(RAW_1),
                b"2 FETCH (UID 2 BODY[] {%d}" % len(RAW_2),
                bytearray(RAW_2),
                b")",
            ],
            [FetchedMessage(1, (), RAW_1), FetchedMessage(2, (), RAW_2)],
        ),
        (
            [b"1 FETCH (UID 1 FLAGS (\\Seen \xff) BODY[] {3}", bytearray(b"abc"), b")"],
            [FetchedMessage(1, ("\\Seen", "\ufffd"), b"abc")],
        ),
        ([b"1 FETCH (FLAGS (\\Seen) BODY[] {3}", bytearray(b"abc"), b")"], []),
        ([b"Fetch completed."], []),
        ([], []),
    ],
    ids=[
        "one-message",
        "two-messages-one-without-flags",
        "uid-after-the-literal",
        "uid-and-flags-after-the-literal",
        "unsolicited-flag-update-skipped",
        "lower-case-keywords",
        "missing-close-line",
        "non-ascii-flag",
        "no-uid-skipped",
        "nothing-found",
        "empty",
    ],
)
def test_r10_imap_fetch_answers_yield_each_message_with_uid_flags_and_raw_bytes(
    lines: list[bytes | bytearray], expected: list[FetchedMessage]
) -> None:
    fetched = _parse_fetch(lines)
    assert fetched == expected
    assert all(type(m.raw) is bytes for m in fetched)


def test_r10_imap_fetch_keeps_a_literal_that_looks_like_protocol_text() -> None:
    tricky = b"1 FETCH (UID 99 FLAGS (\\Seen) BODY[] {5}\r\n)\r\n"
    lines: list[bytes | bytearray] = [
        b"1 FETCH (UID 4 BODY[] {%d}" % len(tricky),
        bytearray(tricky),
        b")",
    ]
    assert _parse_fetch(lines) == [FetchedMessage(4, (), tricky)]
