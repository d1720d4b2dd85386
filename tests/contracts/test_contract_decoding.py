"""`decode()`: every bad record is classified, explained, and never mistaken for an event.

Consumers dead-letter on `ContractViolation` and count by `kind` (ARCHITECTURE §2), so the
kind must be right: an unknown type is "unknown_type" even when the rest is garbage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mailsync_contracts import (
    ContractViolation,
    MessageIngested,
    ThreadUpdated,
    decode,
    topics,
)

GOLDEN = Path(__file__).parent / "golden"


def _golden(event_type: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((GOLDEN / f"{event_type}.json").read_bytes())
    return payload


def _encode(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def _violation(topic: str, raw: bytes | None) -> ContractViolation:
    with pytest.raises(ContractViolation) as caught:
        decode(topic, raw)
    return caught.value


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"From: jorg@example.com\r\nSubject: hi\r\n\r\nbody", id="raw MIME"),
        pytest.param(b'{"type": "mail.thread.archive"', id="truncated"),
        pytest.param(b"\xff\xfe\x00{", id="not UTF-8"),
        pytest.param(b"NaN", id="NaN is not JSON"),
        pytest.param(None, id="tombstone"),
    ],
)
def test_a_record_that_is_not_json_is_reported_as_not_json(raw: bytes | None) -> None:
    violation = _violation(topics.THREAD_COMMANDS, raw)

    assert violation.kind == "not_json"
    assert violation.reason


@pytest.mark.parametrize("payload", [[], "mail.thread.archive", 42, None])
def test_json_that_is_not_an_object_is_invalid(payload: Any) -> None:
    assert _violation(topics.THREAD_COMMANDS, _encode(payload)).kind == "invalid"


@pytest.mark.parametrize("type_value", [None, 7, ["mail.thread.archive"]])
def test_an_envelope_without_a_string_type_is_invalid(type_value: Any) -> None:
    payload = _golden("mail.thread.archive")
    payload["type"] = type_value

    violation = _violation(topics.THREAD_COMMANDS, _encode(payload))

    assert violation.kind == "invalid"
    assert "'type'" in violation.reason


def test_a_payload_missing_fields_is_invalid_and_the_reason_says_which() -> None:
    payload = _golden("mail.message.ingested")
    del payload["time"]
    del payload["data"]["raw"]

    violation = _violation(topics.INGESTED, _encode(payload))

    assert violation.kind == "invalid"
    assert violation.event_type == "mail.message.ingested"
    assert "time: Field required" in violation.reason
    assert "data.raw: Field required" in violation.reason


def test_an_invalid_payload_reason_never_quotes_the_input_r5() -> None:
    # R5: credentials are secret; reasons go to logs and to the dead-letter topic.
    payload = _golden("mail.account.connect")
    payload["data"]["imap"]["port"] = "correct horse battery staple"

    violation = _violation(topics.ACCOUNT_COMMANDS, _encode(payload))

    assert violation.kind == "invalid"
    assert "data.imap.port" in violation.reason
    assert "horse" not in violation.reason
    assert "horse" not in str(violation.__cause__)


def test_a_reason_lists_a_few_problems_and_counts_the_rest() -> None:
    violation = _violation(topics.INGESTED, _encode({"type": "mail.message.ingested", "data": {}}))

    assert violation.kind == "invalid"
    assert violation.reason.endswith("more")
    assert violation.reason.count(": Field required") == 5


def test_a_newer_schema_version_is_invalid_on_a_v1_topic() -> None:
    payload = _golden("mail.thread.updated")
    payload["schema_version"] = 2

    violation = _violation(topics.THREADS, _encode(payload))

    assert violation.kind == "invalid"
    assert "schema_version" in violation.reason


def test_an_unknown_type_is_reported_as_unknown_type_before_any_validation() -> None:
    violation = _violation(topics.THREADS, _encode({"type": "mail.thread.exploded"}))

    assert violation.kind == "unknown_type"
    assert violation.event_type == "mail.thread.exploded"
    assert "no topic has it" in violation.reason


def test_a_type_sent_to_the_wrong_topic_is_unknown_type_and_names_its_home() -> None:
    violation = _violation(topics.THREADS, (GOLDEN / "mail.thread.archive.json").read_bytes())

    assert violation.kind == "unknown_type"
    assert topics.THREAD_COMMANDS in violation.reason


def test_a_topic_outside_the_contract_is_reported_as_unknown_topic() -> None:
    raw = (GOLDEN / "mail.thread.updated.json").read_bytes()

    assert _violation("mail.threads.v2", raw).kind == "unknown_topic"


def test_decode_returns_the_concrete_event_class() -> None:
    event = decode(topics.THREADS, (GOLDEN / "mail.thread.updated.json").read_bytes())

    assert isinstance(event, ThreadUpdated)
    assert event.data.links[0].kind == "person"


def test_from_bytes_reads_its_own_type_and_refuses_another() -> None:
    raw = (GOLDEN / "mail.message.ingested.json").read_bytes()
    assert MessageIngested.from_bytes(raw).data.uid == 48211

    with pytest.raises(ContractViolation) as caught:
        ThreadUpdated.from_bytes(raw)
    assert caught.value.kind == "unknown_type"


def test_from_bytes_reports_broken_records_like_decode() -> None:
    with pytest.raises(ContractViolation) as not_json:
        MessageIngested.from_bytes(b"\x00")
    with pytest.raises(ContractViolation) as invalid:
        MessageIngested.from_bytes(_encode({"type": "mail.message.ingested"}))

    assert (not_json.value.kind, invalid.value.kind) == ("not_json", "invalid")
