"""Shared value types and the invariants payloads enforce, table-tested."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mailsync_contracts import (
    DeadLetterRecorded,
    EmailAddress,
    LinkChoiceNeededData,
    MailServer,
    MessageOpenedData,
    RequestGroupSendData,
    RequestSendData,
    SyncScope,
    ThreadDeletedData,
    normalize_email_address,
)


@pytest.mark.parametrize(
    ("written", "normalised"),
    [
        ("Jörg@Bücher.Example", "Jörg@xn--bcher-kva.example"),
        ("Maria.Silva@ACME-Sales.Example", "Maria.Silva@acme-sales.example"),
        ("joerg@XN--BCHER-KVA.EXAMPLE", "joerg@xn--bcher-kva.example"),
        ("joerg@bücher。example", "joerg@xn--bcher-kva.example"),
        ("ops@example.com.", "ops@example.com"),
        ("  spaced@example.com\t", "spaced@example.com"),
        ("用户@例子.广告", "用户@xn--fsqu00a.xn--4rr70v"),
        ('"team@desk"@Example.org', '"team@desk"@example.org'),
        ("root@[192.0.2.1]", "root@[192.0.2.1]"),
    ],
)
def test_r12_addresses_keep_the_local_part_and_normalise_the_domain(
    written: str, normalised: str
) -> None:
    assert EmailAddress(email=written).email == normalised
    assert normalize_email_address(written) == normalised


@pytest.mark.parametrize(
    "written",
    [
        "",
        "no-at-sign.example.com",
        "@example.com",
        "user@",
        "two words@example.com",
        "user@exa mple.com",
        "user@example..com",
        "user@" + "a" * 64 + ".com",
        "bell\x07@example.com",
    ],
)
def test_text_that_is_not_an_address_is_rejected(written: str) -> None:
    with pytest.raises(ValidationError):
        EmailAddress(email=written)


def test_r12_the_same_mailbox_written_two_ways_has_one_match_key() -> None:
    crm = EmailAddress(email="joerg@xn--bcher-kva.example")
    mail = EmailAddress(email="Joerg@Bücher.Example", name="Jörg Bäcker")

    assert crm.email != mail.email
    assert crm.match_key == mail.match_key


def test_r6_a_folders_sync_scope_names_at_least_one_folder() -> None:
    assert SyncScope().mode == "all"
    assert SyncScope(mode="folders", folders=("INBOX",)).folders == ("INBOX",)
    with pytest.raises(ValidationError, match="at least one folder"):
        SyncScope(mode="folders")


@pytest.mark.parametrize("port", [0, 65536])
def test_a_server_port_is_a_tcp_port(port: int) -> None:
    with pytest.raises(ValidationError):
        MailServer(host="imap.example.com", port=port, security="tls")


def _send(**changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "idempotency_key": "send-1",
        "user_id": "u-3",
        "to": [{"email": "joerg@example.com"}],
        "subject": "Angebot",
        "text_body": "Hallo",
    }
    return request | changes


def test_r3_a_send_without_an_account_means_the_default_account() -> None:
    assert RequestSendData.model_validate(_send()).account_id is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"to": []}, "at least one recipient", id="no recipient"),
        pytest.param({"text_body": None}, "html_body, text_body or template_id", id="nothing"),
        pytest.param({"idempotency_key": ""}, "idempotency_key", id="r20 empty key"),
    ],
)
def test_a_send_request_needs_a_key_a_recipient_and_content(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        RequestSendData.model_validate(_send(**changes))


def test_a_template_alone_is_enough_content_and_bcc_alone_is_a_recipient() -> None:
    request = _send(to=[], bcc=[{"email": "archive@example.com"}], text_body=None)

    assert RequestSendData.model_validate(request | {"template_id": "tpl-1"}).template_id == "tpl-1"


def _group(*addresses: str) -> dict[str, Any]:
    return {
        "idempotency_key": "group-1",
        "user_id": "u-3",
        "subject": "Webinar",
        "template_id": "tpl-webinar",
        "recipients": [
            {"address": {"email": address}, "personalisation": {"first_name": "X"}}
            for address in addresses
        ],
    }


def test_r22_a_group_send_personalises_each_recipient() -> None:
    group = RequestGroupSendData.model_validate(_group("a@example.com", "b@example.com"))

    assert [r.personalisation["first_name"] for r in group.recipients] == ["X", "X"]


def test_r22_a_group_send_lists_each_recipient_once_and_says_where_without_the_address() -> None:
    with pytest.raises(ValidationError, match=r"recipients\[1\] repeats") as caught:
        RequestGroupSendData.model_validate(_group("Anna@Example.com", "anna@EXAMPLE.com"))
    assert "anna@" not in str(caught.value).lower()


def test_r22_a_group_send_has_recipients() -> None:
    with pytest.raises(ValidationError):
        RequestGroupSendData.model_validate(_group())


def _hit(**changes: Any) -> dict[str, Any]:
    hit: dict[str, Any] = {
        "message_id": "ms.1@acme-sales.example",
        "account_id": "a-1",
        "user_id": "u-3",
        "machine": False,
        "reason": "human",
        "opened_at": "2025-03-14T09:58:40Z",
    }
    return hit | changes


@pytest.mark.parametrize(
    ("machine", "reason", "valid"),
    [
        (False, "human", True),
        (True, "image_proxy", True),
        (True, "sender_self_view", True),
        (True, "human", False),
        (False, "link_scanner", False),
    ],
)
def test_r24_a_hit_is_machine_exactly_when_its_reason_is_not_human(
    machine: bool, reason: str, valid: bool
) -> None:
    payload = _hit(machine=machine, reason=reason)
    if valid:
        assert MessageOpenedData.model_validate(payload).machine is machine
    else:
        with pytest.raises(ValidationError, match="human"):
            MessageOpenedData.model_validate(payload)


def test_r13_a_link_choice_offers_at_least_two_open_items() -> None:
    one = {"kind": "deal", "entity_id": "d-1", "title": None}
    thread = {"thread_id": "th-1", "account_id": "a-1", "owner_user_id": "u-3"}

    with pytest.raises(ValidationError):
        LinkChoiceNeededData.model_validate(thread | {"candidates": [one]})


def test_r19_a_deletion_by_a_user_names_them_and_one_from_the_mailbox_need_not() -> None:
    thread = {"thread_id": "th-1", "account_id": "a-1", "owner_user_id": "u-3"}

    assert ThreadDeletedData.model_validate(thread | {"origin": "mailbox"}).acting_user_id is None
    with pytest.raises(ValidationError, match="acting_user_id"):
        ThreadDeletedData.model_validate(thread | {"origin": "user"})


def _dead_letter(value: bytes | None, error_kind: str = "not_json") -> DeadLetterRecorded:
    return DeadLetterRecorded.capture(
        topic="mail.ingested.v1",
        partition=3,
        offset=1207,
        key=b"a-5521",
        value=value,
        error_kind=error_kind,
        error_message="record value is not JSON",
        service="linker",
        headers={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
    )


def test_a_dead_letter_keeps_the_original_bytes_exactly_and_a_readable_copy() -> None:
    value = b'{"subject": "caf\xe9"}\x00\xff'

    letter = _dead_letter(value)

    assert letter.data.original_value() == value
    assert letter.data.original_key() == b"a-5521"
    assert letter.data.value_text == '{"subject": "caf\ufffd"}\x00\ufffd'
    assert letter.data.key == "a-5521"
    assert letter.source == "linker"
    assert DeadLetterRecorded.from_bytes(letter.to_bytes()) == letter


def test_a_dead_letter_is_filed_under_the_original_company_when_it_can_be_read() -> None:
    readable = _dead_letter(b'{"company_id": "c-4812", "type": "mail.message.ingested"}')

    assert readable.company_id == "c-4812"
    assert _dead_letter(b"\x00 not json").company_id == ""
    assert _dead_letter(None).data.value_base64 is None


def test_dead_lettering_the_same_record_twice_yields_the_same_event_id() -> None:
    assert _dead_letter(b"x").id == _dead_letter(b"x").id
    assert (
        _dead_letter(b"x").id
        != DeadLetterRecorded.capture(
            topic="mail.ingested.v1",
            partition=3,
            offset=1208,
            key=None,
            value=b"x",
            error_kind="not_json",
            error_message="",
            service="linker",
        ).id
    )


def test_a_dead_letter_accepts_any_error_kind_a_consumer_reports() -> None:
    assert _dead_letter(b"{}", error_kind="handler_failed").data.error_kind == "handler_failed"
