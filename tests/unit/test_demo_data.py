"""The demo data `make run` seeds: a mailbox whose bytes exercise R10-R13 and a CRM arranged so
that every linking case shows up."""

from __future__ import annotations

import codecs
import email
import email.policy
import json
import re
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest

from mailsync_devstack.demo_data import (
    DEMO_COLLEAGUE_EMAIL,
    DEMO_OWNER_EMAIL,
    DemoMessage,
    demo_crm_entities,
    demo_mailbox,
    message_id,
    record_key,
)

NOW = datetime(2025, 10, 20, 15, 0, tzinfo=UTC)
COMPANY = "company-1"

_ITEM_FIELDS = {
    "kind",
    "id",
    "title",
    "status",
    "person_ids",
    "organization_id",
    "owner_user_id",
    "visible_to",
    "archived",
}
ENTITY_FIELDS = {
    "person": {"kind", "id", "name", "emails", "organization_id", "owner_user_id"},
    "organization": {"kind", "id", "name", "domains"},
    "deal": _ITEM_FIELDS,
    "lead": _ITEM_FIELDS,
    "project": _ITEM_FIELDS,
    "user": {
        "kind",
        "id",
        "name",
        "email",
        "alternative_emails",
        "linking_mode",
        "team_ids",
        "is_admin",
        "plan",
    },
    "team": {"kind", "id", "name", "member_user_ids"},
}
ITEM_STATUSES = {
    "deal": {"open", "won", "lost"},
    "lead": {"open", "converted", "archived"},
    "project": {"open", "completed", "canceled"},
}


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


@pytest.fixture(scope="module")
def mailbox() -> list[DemoMessage]:
    return demo_mailbox(DEMO_OWNER_EMAIL, NOW)


@pytest.fixture(scope="module")
def parsed(mailbox: list[DemoMessage]) -> dict[str, tuple[DemoMessage, EmailMessage]]:
    """Every demo message by its Message-ID."""
    return {str(parse(m.raw)["Message-ID"]): (m, parse(m.raw)) for m in mailbox}


@pytest.fixture(scope="module")
def entities() -> list[dict[str, Any]]:
    return [envelope["data"]["entity"] for envelope in demo_crm_entities(COMPANY, now=NOW)]


def demo(parsed: dict[str, tuple[DemoMessage, EmailMessage]], number: int) -> EmailMessage:
    return parsed[message_id(number)][1]


def first_text(message: EmailMessage, subtype: str = "plain") -> EmailMessage:
    for part in message.walk():
        if part.get_content_type() == f"text/{subtype}" and not part.is_attachment():
            assert isinstance(part, EmailMessage)
            return part
    raise AssertionError(f"no text/{subtype} part")


def addresses(message: EmailMessage) -> set[str]:
    """Every participant address (From/To/Cc/Bcc/Reply-To), lower-cased, IDN domains in ACE."""
    found: set[str] = set()
    for name in ("From", "To", "Cc", "Bcc", "Reply-To"):
        header = message[name]
        if header is None:
            continue
        for address in header.addresses:
            found.add(ace(address.addr_spec))
    return found


def ace(address: str) -> str:
    local, _, domain = address.lower().rpartition("@")
    return f"{local}@{domain.encode('idna').decode('ascii')}"


def open_items(entities: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Open deals/leads/projects of every person, by person id."""
    result: dict[str, list[str]] = {e["id"]: [] for e in entities if e["kind"] == "person"}
    for item in entities:
        if item["kind"] in ITEM_STATUSES and item["status"] == "open":
            for person_id in item["person_ids"]:
                result[person_id].append(item["id"])
    return result


def test_every_demo_message_is_crlf_bytes_the_stdlib_parser_opens(
    mailbox: list[DemoMessage],
) -> None:
    for message in mailbox:
        assert isinstance(message.raw, bytes)
        assert re.search(rb"(?<!\r)\n", message.raw) is None, message.description
        parts = list(parse(message.raw).walk())
        assert parts, message.description


def test_every_demo_message_has_a_message_id_a_date_and_a_from(mailbox: list[DemoMessage]) -> None:
    for message in mailbox:
        parsed = parse(message.raw)
        assert parsed["Message-ID"], message.description
        assert parsed["Date"].datetime.tzinfo is not None, message.description
        assert parsed["From"].addresses, message.description


def test_message_ids_are_unique_numbered_and_the_same_on_every_seed(
    mailbox: list[DemoMessage],
) -> None:
    ids = [str(parse(m.raw)["Message-ID"]) for m in mailbox]
    assert ids == [message_id(number) for number in range(1, len(mailbox) + 1)]
    assert all(re.fullmatch(r"<demo-\d{2}@demo-sales\.test>", i) for i in ids)
    assert demo_mailbox(DEMO_OWNER_EMAIL, NOW) == mailbox


def test_the_mailbox_holds_a_few_weeks_of_mail_dated_relative_to_now(
    mailbox: list[DemoMessage],
) -> None:
    assert 30 <= len(mailbox) <= 45
    assert {m.folder for m in mailbox} == {"INBOX", "Sent", "Archive"}
    for message in mailbox:
        sent_at = parse(message.raw)["Date"].datetime
        assert NOW - timedelta(days=30) <= sent_at < NOW, message.description
    later = demo_mailbox(DEMO_OWNER_EMAIL, NOW + timedelta(days=7))
    assert parse(later[0].raw)["Date"].datetime == parse(mailbox[0].raw)["Date"].datetime + (
        timedelta(days=7)
    )


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        demo_mailbox(DEMO_OWNER_EMAIL, datetime(2025, 10, 20, 15, 0))


def test_the_owners_replies_are_filed_in_sent_and_sent_holds_only_the_owners_mail() -> None:
    owner = "someone.else@example.test"
    for message in demo_mailbox(owner, NOW):
        from_owner = parse(message.raw)["From"].addresses[0].addr_spec == owner
        assert from_owner == (message.folder == "Sent"), message.description


@pytest.mark.parametrize(
    ("number", "subject"),
    [
        (6, "Angebot für die Nachrüstung der CNC-Linie"),
        (9, "Wartungsvertrag 2025 – Rückfragen"),
        (10, "Intégration caisse : réunion de lancement"),
        (14, "关于亚太区代理协议的报价"),
        (16, "回复: 关于亚太区代理协议的报价"),
        (17, "台灣區經銷商會議時間確認"),
        (18, "導入研修のスケジュールについて"),
        (20, "Re: 導入研修のスケジュールについて"),
        (21, "Коммерческое предложение по телематике автопарка"),
        (23, "Запрос документов для тендера"),
        (24, "طلب عرض سعر لمعرض دبي التجاري"),
        (26, "Solicitud de demostración para Grupo Olivares"),
        (28, "Feria de Valencia: ¡encantado de conoceros!"),
        (38, "展位预订确认通知"),
    ],
)
def test_r10_subjects_decode_to_the_intended_text(
    parsed: dict[str, tuple[DemoMessage, EmailMessage]], number: int, subject: str
) -> None:
    assert str(demo(parsed, number)["Subject"]) == subject


@pytest.mark.parametrize(
    ("number", "name"),
    [
        (6, "Jürgen Keßler"),
        (10, "Élodie Marchand"),
        (14, "王伟"),
        (17, "陳美玲"),
        (18, "佐藤 健"),
        (21, "Алексей Смирнов"),
        (24, "أحمد الفارسي"),
        (26, "Lucía Fernández"),
    ],
)
def test_r10_encoded_display_names_decode_to_the_intended_text(
    parsed: dict[str, tuple[DemoMessage, EmailMessage]], number: int, name: str
) -> None:
    assert demo(parsed, number)["From"].addresses[0].display_name == name


@pytest.mark.parametrize(
    ("number", "charset", "phrase"),
    [
        (6, "iso-8859-1", "Mit freundlichen Grüßen"),
        (9, "iso-8859-15", "12.500 € pro Jahr"),
        (13, "iso-8859-1", "N° TVA intracommunautaire"),
        (14, "gb2312", "亚太区代理协议"),
        (16, "gbk", "张喆"),
        (17, "big5", "經銷商會議"),
        (18, "iso-2022-jp", "導入研修の日程"),
        (21, "koi8-r", "телематике автопарка"),
        (23, "koi8-r", "сертификаты соответствия"),
        (24, "utf-8", "معرض الخليج"),
        (26, "windows-1252", "15.000 € anuales"),
        (28, "utf-8", "¡Encantado de conoceros"),
    ],
)
def test_r10_bodies_decode_in_their_declared_charset(
    parsed: dict[str, tuple[DemoMessage, EmailMessage]], number: int, charset: str, phrase: str
) -> None:
    body = first_text(demo(parsed, number))
    assert body.get_content_charset() == charset
    assert phrase in body.get_content()


def test_r10_the_set_covers_every_charset_the_rules_name(mailbox: list[DemoMessage]) -> None:
    declared: set[str] = set()
    for message in mailbox:
        for part in parse(message.raw).walk():
            charset = part.get_content_charset()
            if charset:
                declared.add(charset)
        head = message.raw.split(b"\r\n\r\n", 1)[0]
        declared |= {
            m.lower() for m in re.findall(r"=\?([^?*]+)\?[BQbq]\?", head.decode("latin-1"))
        }
    assert {"iso-8859-1", "gb2312", "gbk", "big5", "iso-2022-jp", "koi8-r", "utf-8"} <= declared
    unknown = set()
    for label in declared:
        try:
            codecs.lookup(label)
        except LookupError:
            unknown.add(label)
    assert unknown == {"x-unknown"}


def test_r10_subjects_and_names_use_both_rfc2047_encodings(mailbox: list[DemoMessage]) -> None:
    heads = b"".join(m.raw.split(b"\r\n\r\n", 1)[0] for m in mailbox)
    assert b"=?ISO-2022-JP?B?" in heads
    assert b"=?ISO-8859-1?Q?" in heads
    assert b"=?KOI8-R?Q?" in heads


def test_r10_rfc2231_filenames_decode_to_the_intended_text(mailbox: list[DemoMessage]) -> None:
    filenames = {
        part.get_filename()
        for message in mailbox
        for part in parse(message.raw).walk()
        if part.get_filename()
    }
    assert {
        "Angebot_Nachrüstung_Kessler.pdf",
        "Cahier_des_charges_détaillé_boutiques_Lyon_Bordeaux_v3.pdf",
        "预计订单明细.csv",
        "Перечень документов.pdf",
    } <= filenames
    raw = b"".join(m.raw for m in mailbox)
    assert b"filename*=UTF-8''Angebot_Nachr%C3%BCstung_Kessler.pdf" in raw
    assert b"filename*0*=ISO-8859-1'fr'" in raw
    assert b"filename*1*=" in raw
    assert b"filename*=GBK''" in raw


def test_r10_attachments_include_pdfs_csvs_and_an_inline_image_named_by_content_id(
    parsed: dict[str, tuple[DemoMessage, EmailMessage]],
) -> None:
    kinds: Counter[str] = Counter()
    for _, message in parsed.values():
        for part in message.walk():
            if part.is_attachment():
                kinds[part.get_content_type()] += 1
    assert kinds["application/pdf"] >= 4
    assert kinds["text/csv"] >= 3
    pdf = next(p for p in demo(parsed, 5).walk() if p.get_content_type() == "application/pdf")
    payload = pdf.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert payload.startswith(b"%PDF-1.4")
    assert payload.endswith(b"%%EOF\n")

    first = demo(parsed, 2)
    image = next(p for p in first.walk() if p.get_content_type() == "image/png")
    assert image.get_content_disposition() == "inline"
    content_id = str(image["Content-ID"]).strip("<>")
    assert f"cid:{content_id}" in first_text(first, "html").get_content()
    png = image.get_payload(decode=True)
    assert isinstance(png, bytes)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_r10_multipart_alternative_offers_text_and_html(
    parsed: dict[str, tuple[DemoMessage, EmailMessage]],
) -> None:
    alternatives = [
        message
        for _, message in parsed.values()
        for part in message.walk()
        if part.get_content_type() == "multipart/alternative"
    ]
    assert len(alternatives) >= 6
    for message in alternatives:
        first_text(message, "plain")
        html = first_text(message, "html")
        assert f'<meta charset="{html.get_content_charset()}">' in html.get_content().lower()


def test_r10_arabic_mail_is_right_to_left_in_utf8(
    parsed: dict[str, tuple[DemoMessage, EmailMessage]],
) -> None:
    arabic = demo(parsed, 24)
    html = first_text(arabic, "html")
    assert html.get_content_charset() == "utf-8"
    assert 'dir="rtl"' in html.get_content()
    assert "دبي" in html.get_content()


def test_r10_a_multipart_without_its_closing_boundary_still_opens(
    parsed: dict[str, tuple[DemoMessage, EmailMessage]],
) -> None:
    broken = demo(parsed, 35)
    assert any(type(d).__name__ == "CloseBoundaryNotFoundDefect" for d in broken.defects)
    assert broken["From"].addresses[0].addr_spec == "j.whitaker@northwind-freight.test"
    assert "delivery notes" in first_text(broken).get_content()


def test_r10_undeclared_8bit_bytes_still_open(
    mailbox: list[DemoMessage], parsed: dict[str, tuple[DemoMessage, EmailMessage]]
) -> None:
    raw = mailbox[35].raw
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Subject: Ihre Bestellbest\xe4tigung" in head
    assert b"MIME-Version" not in head
    assert b"Content-Type" not in head
    assert b"Gr\xfc\xdfen" in body
    undeclared = demo(parsed, 36)
    assert undeclared["From"].addresses[0].addr_spec == "bestellung@buerobedarf-schaefer.test"


def test_r10_an_unknown_charset_label_is_kept_on_bytes_no_codec_knows(
    parsed: dict[str, tuple[DemoMessage, EmailMessage]],
) -> None:
    body = first_text(demo(parsed, 37))
    assert body.get_content_charset() == "x-unknown"
    payload = body.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert "acreditación" in payload.decode("windows-1252")


def test_r10_a_gbk_body_labelled_gb2312_needs_the_gbk_superset(
    parsed: dict[str, tuple[DemoMessage, EmailMessage]],
) -> None:
    body = first_text(demo(parsed, 38))
    assert body.get_content_charset() == "gb2312"
    payload = body.get_payload(decode=True)
    assert isinstance(payload, bytes)
    with pytest.raises(UnicodeDecodeError):
        payload.decode("gb2312")
    assert "朱镕" in payload.decode("gbk")


def test_r11_replies_reference_their_parents_message_id(
    parsed: dict[str, tuple[DemoMessage, EmailMessage]],
) -> None:
    replies = 0
    for _, message in parsed.values():
        parent_id = message["In-Reply-To"]
        if parent_id is None:
            continue
        replies += 1
        parent = parsed[str(parent_id)][1]
        references = str(message["References"]).split()
        parent_references = str(parent["References"]).split() if parent["References"] else []
        assert references == [*parent_references, str(parent_id)]
        assert parent["Date"].datetime < message["Date"].datetime
    assert replies >= 12


def test_r11_threads_of_three_and_four_messages_are_chained(
    parsed: dict[str, tuple[DemoMessage, EmailMessage]],
) -> None:
    roots = Counter(
        str(message["References"]).split()[0] if message["References"] else message_id_
        for message_id_, (_, message) in parsed.items()
    )
    sizes = sorted(roots.values(), reverse=True)
    assert sizes[0] == 4
    assert sum(1 for size in sizes if size >= 3) >= 5


def test_r11_a_reply_without_references_shares_subject_and_participants(
    parsed: dict[str, tuple[DemoMessage, EmailMessage]],
) -> None:
    original, reply = demo(parsed, 28), demo(parsed, 29)
    assert reply["In-Reply-To"] is None
    assert reply["References"] is None
    assert str(reply["Subject"]) == "Re: " + str(original["Subject"])
    assert addresses(reply) == addresses(original)


def test_r12_every_crm_person_appears_in_the_mailbox_under_a_crm_address(
    mailbox: list[DemoMessage], entities: list[dict[str, Any]]
) -> None:
    participants = set().union(*(addresses(parse(m.raw)) for m in mailbox))
    for person in (e for e in entities if e["kind"] == "person"):
        assert participants & {ace(address) for address in person["emails"]}, person["id"]


def test_r12_an_idn_address_travels_in_ace_form_and_a_case_variant_still_matches(
    parsed: dict[str, tuple[DemoMessage, EmailMessage]],
) -> None:
    katrin = demo(parsed, 9)["From"].addresses[0].addr_spec
    assert katrin == "katrin.vogel@xn--kessler-przision-4nb.test"
    assert katrin.rpartition("@")[2].encode("ascii").decode("idna") == "kessler-präzision.test"
    assert demo(parsed, 4)["From"].addresses[0].addr_spec == "Sarah.OConnor@Northwind-Freight.test"


def test_r12_unknown_senders_and_the_colleague_match_no_crm_person(
    parsed: dict[str, tuple[DemoMessage, EmailMessage]], entities: list[dict[str, Any]]
) -> None:
    person_addresses = {ace(a) for e in entities if e["kind"] == "person" for a in e["emails"]}
    for number in (30, 31, 32, 33, 34, 36, 37, 38):
        others = addresses(demo(parsed, number)) - {DEMO_OWNER_EMAIL}
        assert others, number
        assert not others & person_addresses, number
    assert demo(parsed, 30)["From"].addresses[0].addr_spec == DEMO_COLLEAGUE_EMAIL


def test_crm_envelopes_have_the_shape_of_the_contract_sketch() -> None:
    for envelope in demo_crm_entities(COMPANY, now=NOW):
        assert set(envelope) == {
            "id", "type", "source", "time", "schema_version", "company_id", "data",
        }  # fmt: skip
        assert uuid.UUID(envelope["id"])
        assert envelope["type"] == "crm.entity.upserted"
        assert envelope["source"] == "crm"
        assert envelope["time"] == "2025-10-20T15:00:00Z"
        assert envelope["schema_version"] == 1
        assert envelope["company_id"] == COMPANY
        assert set(envelope["data"]) == {"entity"}
        entity = envelope["data"]["entity"]
        assert set(entity) == ENTITY_FIELDS[entity["kind"]]
        if entity["kind"] in ITEM_STATUSES:
            assert entity["status"] in ITEM_STATUSES[entity["kind"]]
        json.dumps(envelope)


def test_crm_ids_are_unique_and_read_kind_dash_number(entities: list[dict[str, Any]]) -> None:
    ids = [e["id"] for e in entities]
    assert len(ids) == len(set(ids))
    for entity in entities:
        prefix = "org" if entity["kind"] == "organization" else entity["kind"]
        assert re.fullmatch(rf"{prefix}-\d+", entity["id"])


def test_record_key_is_kind_colon_id_for_upserts_and_deletes() -> None:
    envelopes = demo_crm_entities(COMPANY, now=NOW)
    keys = [record_key(envelope) for envelope in envelopes]
    assert {"person:person-3", "deal:deal-2", "team:team-1"} <= set(keys)
    assert len(keys) == len(set(keys))
    deleted = {"data": {"kind": "deal", "entity_id": "deal-9"}}
    assert record_key(deleted) == "deal:deal-9"


def test_crm_event_ids_are_stable_per_company_and_differ_between_companies() -> None:
    first = [e["id"] for e in demo_crm_entities(COMPANY, now=NOW)]
    again = [e["id"] for e in demo_crm_entities(COMPANY, now=NOW + timedelta(hours=1))]
    other = [e["id"] for e in demo_crm_entities("company-2", now=NOW)]
    assert first == again
    assert not set(first) & set(other)
    assert len(set(first)) == len(first)


def test_crm_references_point_at_entities_published_before_them(
    entities: list[dict[str, Any]],
) -> None:
    seen: set[tuple[str, str]] = set()
    for entity in entities:
        for field, kind in (("organization_id", "organization"), ("owner_user_id", "user")):
            if entity.get(field) is not None and entity["kind"] != "team":
                assert (kind, entity[field]) in seen, (entity["id"], field)
        for person_id in entity.get("person_ids", []):
            assert ("person", person_id) in seen, entity["id"]
        seen.add((entity["kind"], entity["id"]))
    teams = {e["id"]: e for e in entities if e["kind"] == "team"}
    for user in (e for e in entities if e["kind"] == "user"):
        for team_id in user["team_ids"]:
            assert user["id"] in teams[team_id]["member_user_ids"]


def test_the_demo_company_has_a_salesperson_a_colleague_and_a_team(
    entities: list[dict[str, Any]],
) -> None:
    kinds = Counter(e["kind"] for e in entities)
    assert kinds == {
        "user": 2, "team": 1, "organization": 8, "person": 15, "deal": 7, "lead": 2, "project": 1,
    }  # fmt: skip
    users = {e["email"]: e for e in entities if e["kind"] == "user"}
    assert users[DEMO_OWNER_EMAIL]["id"] == "user-1"
    assert users[DEMO_OWNER_EMAIL]["linking_mode"] == "automatic"
    assert DEMO_COLLEAGUE_EMAIL in users


def test_every_person_email_domain_belongs_to_their_organization(
    entities: list[dict[str, Any]],
) -> None:
    organizations = {e["id"]: e for e in entities if e["kind"] == "organization"}
    for person in (e for e in entities if e["kind"] == "person"):
        domains = {d.lower() for d in organizations[person["organization_id"]]["domains"]}
        for address in person["emails"]:
            assert address.rpartition("@")[2].lower() in domains, person["id"]


def test_deals_are_mostly_open_with_one_won_and_one_lost(entities: list[dict[str, Any]]) -> None:
    statuses = Counter(e["status"] for e in entities if e["kind"] == "deal")
    assert statuses["won"] == 1
    assert statuses["lost"] == 1
    assert statuses["open"] > statuses["won"] + statuses["lost"]


def test_r13_exactly_one_person_has_two_open_deals(entities: list[dict[str, Any]]) -> None:
    open_deals = Counter(
        person_id
        for e in entities
        if e["kind"] == "deal" and e["status"] == "open"
        for person_id in e["person_ids"]
    )
    assert [p for p, count in open_deals.items() if count >= 2] == ["person-3"]
    assert open_deals["person-3"] == 2


def test_r13_persons_are_arranged_for_auto_link_choice_and_no_link(
    entities: list[dict[str, Any]],
) -> None:
    items = open_items(entities)
    assert items["person-1"] == ["deal-1"]
    assert items["person-3"] == ["deal-2", "deal-3"]
    assert items["person-4"] == ["deal-3"]
    assert items["person-9"] == ["project-1"], "the won deal-6 must not count"
    assert items["person-14"] == ["lead-1"]
    assert items["person-11"] == [], "only a lost deal"
    assert items["person-15"] == [], "only an archived lead"
    assert sum(1 for found in items.values() if len(found) == 1) >= 5
    assert sum(1 for found in items.values() if not found) >= 4


def test_crm_envelopes_decode_on_the_crm_entities_topic_without_losing_a_field() -> None:
    from mailsync_contracts import CrmEntityUpserted, decode

    for envelope in demo_crm_entities(COMPANY, now=NOW):
        event = decode("crm.entities.v1", json.dumps(envelope, ensure_ascii=False).encode())
        assert isinstance(event, CrmEntityUpserted)
        assert str(event.id) == envelope["id"]
        assert event.company_id == COMPANY
        # The tolerant reader ignores unknown fields: a misspelt one would vanish silently.
        assert event.data.entity.model_dump(mode="json") == envelope["data"]["entity"]
