"""Ingest's pure rules: what may be connected (R1, R3, no plaintext IMAP off-machine), and how a
parsed message becomes the contract's participants and attachments (R10, R12)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailsync_contracts import EmailAddress, IngestedAttachment, MessageIngested
from mailsync_devstack.demo_data import DEMO_OWNER_EMAIL, demo_mailbox
from mailsync_ingest.adapters.imap import FetchedMessage, ImapEndpoint
from mailsync_ingest.domain import (
    PLAN_ACCOUNT_LIMITS,
    Refusal,
    contract_addresses,
    contract_attachments,
    is_loopback,
    refuse_connect,
)
from mailsync_ingest.message_events import Place, ingested_event
from mailsync_ingest.repository import Account
from mailsync_mime.parsing import AttachmentInfo, ParsedMessage, Participant, parse_message

NOW = datetime(2025, 10, 20, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("plan", "account_type", "connected", "refused"),
    [
        ("growth", "personal", 0, False),
        ("growth", "personal", 1, True),
        ("growth", "team", 0, True),
        ("premium", "personal", 0, False),
        ("premium", "personal", 2, False),
        ("premium", "personal", 3, True),
        ("premium", "team", 2, False),
        ("premium", "team", 3, True),
        ("ultimate", "personal", 4, False),
        ("ultimate", "team", 4, False),
        ("ultimate", "personal", 5, True),
        ("ultimate", "team", 5, True),
        ("ultimate", "personal", 9, True),
    ],
)
def test_r1_plan_limits_decide_whether_another_account_may_connect(
    plan: str, account_type: str, connected: int, refused: bool
) -> None:
    refusal = refuse_connect(plan, account_type, connected, "imap.example.test", "tls")
    if refused:
        assert refusal is not None
        assert refusal.code == "plan_limit"
        assert plan in refusal.reason
    else:
        assert refusal is None


def test_r1_the_limits_are_growth_one_premium_three_ultimate_five() -> None:
    assert PLAN_ACCOUNT_LIMITS == {"growth": 1, "premium": 3, "ultimate": 5}


def test_r1_growth_refuses_a_team_account_saying_personal_accounts_only() -> None:
    assert refuse_connect("growth", "team", 0, "imap.example.test", "tls") == Refusal(
        "plan_limit", "the growth plan allows personal accounts only"
    )


def test_r1_the_limit_reason_names_how_many_accounts_the_plan_allows() -> None:
    refusal = refuse_connect("premium", "personal", 3, "imap.example.test", "tls")
    assert refusal is not None
    assert "3 connected account" in refusal.reason


@pytest.mark.parametrize("account_type", ["personal", "team"])
def test_r1_an_unknown_plan_is_invalid_settings_not_a_plan_limit(account_type: str) -> None:
    refusal = refuse_connect("enterprise", account_type, 0, "imap.example.test", "tls")
    assert refusal is not None
    assert refusal.code == "invalid_settings"
    assert "enterprise" in refusal.reason


def test_r3_the_first_account_of_a_user_is_accepted_on_every_plan() -> None:
    for plan in PLAN_ACCOUNT_LIMITS:
        assert refuse_connect(plan, "personal", 0, "imap.example.test", "tls") is None


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.0.0.53", True),
        ("::1", True),
        ("localhost", True),
        ("LocalHost", True),
        ("localhost.", True),
        ("::ffff:127.0.0.1", True),
        ("imap.example.test", False),
        ("10.0.0.5", False),
        ("192.168.1.10", False),
        ("0.0.0.0", False),
        ("::", False),
        ("::ffff:10.0.0.1", False),
        ("localhost.example.test", False),
        ("127.0.0.1.example.test", False),
        ("[::1]", False),
        ("", False),
    ],
)
def test_r1_plaintext_imap_is_only_allowed_to_this_machine(host: str, allowed: bool) -> None:
    assert is_loopback(host) is allowed
    refusal = refuse_connect("premium", "personal", 0, host, "plain")
    if allowed:
        assert refusal is None
    else:
        assert refusal is not None
        assert refusal.code == "invalid_settings"
        assert "unencrypted" in refusal.reason


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_r1_encrypted_imap_may_go_to_any_host(security: str) -> None:
    assert refuse_connect("premium", "personal", 0, "imap.example.test", security) is None


def test_r1_the_plan_limit_is_reported_before_the_transport_problem() -> None:
    refusal = refuse_connect("growth", "personal", 1, "imap.example.test", "plain")
    assert refusal is not None
    assert refusal.code == "plan_limit"


@pytest.mark.parametrize(
    ("participants", "accepted", "problems"),
    [
        ([Participant("a@x.test", "A")], [EmailAddress(email="a@x.test", name="A")], []),
        (
            [Participant("K@Kessler-Präzision.test", None)],
            [EmailAddress(email="K@xn--kessler-przision-4nb.test")],
            [],
        ),
        (
            [Participant("not an address", None), Participant("b@x.test", None)],
            [EmailAddress(email="b@x.test")],
            ["unusable address 'not an address'"],
        ),
        (
            [Participant('"two words"@x.test', None), Participant("a@bad..domain", None)],
            [],
            ["unusable address '\"two words\"@x.test'", "unusable address 'a@bad..domain'"],
        ),
        ([], [], []),
    ],
    ids=["plain", "idn-to-ace", "one-unusable", "all-unusable", "none"],
)
def test_r10_unusable_addresses_are_dropped_and_reported_not_fatal(
    participants: list[Participant], accepted: list[EmailAddress], problems: list[str]
) -> None:
    found: list[str] = []
    assert list(contract_addresses(participants, found)) == accepted
    assert found == problems


def test_r12_contract_addresses_keep_the_local_part_and_lower_case_the_domain() -> None:
    (address,) = contract_addresses([Participant("Sarah.OConnor@Northwind-Freight.test", "S")], [])
    assert address.email == "Sarah.OConnor@northwind-freight.test"
    assert address.match_key == "sarah.oconnor@northwind-freight.test"


def test_r10_attachments_become_contract_attachments_field_by_field() -> None:
    parsed = ParsedMessage(
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
        attachments=(
            AttachmentInfo("预计订单明细.csv", "text/csv", 58, None),
            AttachmentInfo(None, "image/png", 78, "logo@x.test"),
        ),
    )
    assert contract_attachments(parsed) == (
        IngestedAttachment(filename="预计订单明细.csv", content_type="text/csv", size=58),
        IngestedAttachment(
            filename=None, content_type="image/png", size=78, content_id="logo@x.test"
        ),
    )


ACCOUNT = Account(
    account_id="acc-1",
    company_id="company-1",
    user_id="user-1",
    email=DEMO_OWNER_EMAIL,
    provider=None,
    account_type="personal",
    member_user_ids=(),
    imap=ImapEndpoint("127.0.0.1", 1143, "plain"),
    username=DEMO_OWNER_EMAIL,
    sealed_password=b"",
    state="active",
    is_default=True,
)


@pytest.mark.parametrize(
    "raw",
    [
        *(m.raw for m in demo_mailbox(DEMO_OWNER_EMAIL, NOW)),
        b"",
        b"From: Eve\xff\x00 <eve@x.test>\r\nTo: b\xe4d <bad@\xff.test>\r\n\r\n\x00\xff",
    ],
    ids=[*(f"demo-{n:02d}" for n in range(1, 39)), "empty", "hostile-bytes"],
)
def test_r10_every_message_becomes_a_serializable_ingested_event(raw: bytes) -> None:
    """The whole path from bytes to the record value: a lone surrogate or NUL anywhere would
    stop the sync at serialization time, which R10 forbids."""
    event = ingested_event(
        ACCOUNT, Place("INBOX", "inbox", 7), FetchedMessage(1, ("\\Seen",), raw), "0" * 64
    )
    value = event.model_dump_json(by_alias=True).encode("utf-8")
    assert b"\\u0000" not in value
    assert MessageIngested.model_validate_json(value) == event


def test_r10_an_unusable_sender_is_reported_in_the_event_and_the_message_still_published() -> None:
    raw = b"From: broken\r\nTo: ok@x.test\r\nSubject: s\r\n\r\nbody"
    event = ingested_event(
        ACCOUNT, Place("INBOX", "inbox", 7), FetchedMessage(1, (), raw), "0" * 64
    )
    assert event.data.from_ is None
    assert [a.email for a in event.data.to] == ["ok@x.test"]
    assert event.data.subject == "s"


def test_r10_parse_message_is_what_the_event_reports() -> None:
    raw = b"From: a@x.test\r\nTo: nobody, b@x.test, c@bad..domain\r\nSubject: s\r\n\r\nbody"
    parsed = parse_message(raw)
    event = ingested_event(
        ACCOUNT, Place("INBOX", "inbox", 7), FetchedMessage(1, (), raw), "0" * 64
    )
    assert event.data.snippet == parsed.snippet
    assert [a.email for a in event.data.to] == ["b@x.test"]
    assert event.data.parse_error == (
        "unreadable To address 'nobody'; unusable address 'c@bad..domain'"
    )
