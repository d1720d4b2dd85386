"""The envelope's promises: build helper, aware times, tolerant reading, immutability,
JSON by alias, and secrets that stay out of logs."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from mailsync_contracts import (
    EVENT_TYPES,
    TOPIC_OF_TYPE,
    ArchiveThread,
    ConnectAccount,
    ContractViolation,
    EmailAddress,
    MessageIngested,
    MessageIngestedData,
    RawMessageRef,
    ReauthenticateAccount,
    ReauthenticateAccountData,
    ThreadActionData,
    decode,
    topics,
)

GOLDEN = Path(__file__).parent / "golden"


def _golden(event_type: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((GOLDEN / f"{event_type}.json").read_bytes())
    return payload


def _archive_data() -> ThreadActionData:
    return ThreadActionData(thread_id="th-8f31", acting_user_id="u-3")


def _ingested_data(**changes: Any) -> MessageIngestedData:
    payload = _golden("mail.message.ingested")["data"] | changes
    return MessageIngestedData.model_validate(payload)


def test_build_fills_a_fresh_uuid4_id_the_type_and_the_current_utc_time() -> None:
    before = datetime.now(UTC)
    first = ArchiveThread.build(company_id="c-4812", source="crm", data=_archive_data())
    second = ArchiveThread.build(company_id="c-4812", source="crm", data=_archive_data())

    assert first.id.version == 4
    assert first.id != second.id
    assert first.type == "mail.thread.archive"
    assert first.schema_version == 1
    assert first.time.utcoffset() == timedelta(0)
    assert before <= first.time <= datetime.now(UTC)


def test_build_keeps_an_id_and_time_given_by_an_idempotent_producer() -> None:
    event_id = uuid.UUID("5f0c2f7e-1111-4c7a-9e5f-000000000001")
    at = datetime(2025, 3, 14, 10, 0, tzinfo=timezone(timedelta(hours=1)))

    event = ArchiveThread.build(
        company_id="c-4812", source="crm", data=_archive_data(), id=event_id, time=at
    )

    assert (event.id, event.time) == (event_id, at)
    assert json.loads(event.to_bytes())["time"] == "2025-03-14T10:00:00+01:00"


def test_a_naive_envelope_time_is_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        ArchiveThread.build(
            company_id="c-4812", source="crm", data=_archive_data(), time=datetime(2025, 3, 14)
        )


def test_a_naive_time_on_the_wire_is_rejected_by_decode() -> None:
    payload = _golden("mail.thread.archive")
    payload["time"] = "2025-03-14T09:26:53"

    with pytest.raises(ContractViolation) as caught:
        decode(topics.THREAD_COMMANDS, json.dumps(payload).encode())
    assert caught.value.kind == "invalid"
    assert "time: Input should have timezone info" in caught.value.reason


def test_a_naive_datetime_inside_the_payload_is_rejected() -> None:
    with pytest.raises(ValidationError, match="sent_at"):
        _ingested_data(sent_at="2025-03-14T10:24:01")


def test_unknown_fields_are_ignored_at_every_level_tolerant_reader() -> None:
    payload = _golden("mail.message.ingested")
    payload["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    payload["data"]["importance"] = "high"
    payload["data"]["from"]["avatar_url"] = "https://example.com/j.png"
    payload["data"]["raw"]["storage_class"] = "GLACIER"

    event = decode(topics.INGESTED, json.dumps(payload).encode())

    assert event == decode(topics.INGESTED, (GOLDEN / "mail.message.ingested.json").read_bytes())
    assert "importance" not in json.loads(event.to_bytes())["data"]


@pytest.mark.parametrize(
    ("model", "field", "value"),
    [
        pytest.param("envelope", "company_id", "c-1", id="envelope"),
        pytest.param("data", "subject", "changed", id="payload"),
        pytest.param("address", "email", "other@example.com", id="value type"),
    ],
)
def test_events_are_frozen_down_to_their_value_types(model: str, field: str, value: str) -> None:
    event = MessageIngested.from_bytes((GOLDEN / "mail.message.ingested.json").read_bytes())
    assert event.data.from_ is not None
    targets: dict[str, BaseModel] = {
        "envelope": event,
        "data": event.data,
        "address": event.data.from_,
    }

    with pytest.raises(ValidationError, match="frozen"):
        setattr(targets[model], field, value)


def test_lists_in_events_are_tuples_so_they_cannot_be_mutated_either() -> None:
    data = _ingested_data()

    assert isinstance(data.to, tuple)
    assert isinstance(data.references, tuple)


def test_the_sender_is_written_as_from_on_the_wire_and_read_by_either_name() -> None:
    sender = EmailAddress(email="joerg@bücher.example", name="Jörg")
    by_python_name = _ingested_data().model_copy(update={"from_": sender})
    by_wire_name = _ingested_data(**{"from": sender.model_dump()})
    event = MessageIngested.build(company_id="c-4812", source="ingest", data=by_wire_name)

    wire = json.loads(event.to_bytes())["data"]

    assert wire["from"] == {"email": "joerg@xn--bcher-kva.example", "name": "Jörg"}
    assert "from_" not in wire
    assert by_python_name.from_ == by_wire_name.from_ == sender


@pytest.mark.parametrize("event_type", ["mail.account.connect", "mail.account.reauthenticate"])
def test_a_password_never_shows_in_repr_or_str_but_travels_in_the_clear_r5(
    event_type: str,
) -> None:
    raw = (GOLDEN / f"{event_type}.json").read_bytes()
    password = _golden(event_type)["data"]["password"]
    event = decode(topics.ACCOUNT_COMMANDS, raw)
    assert isinstance(event, ConnectAccount | ReauthenticateAccount)

    assert password not in repr(event)
    assert password not in str(event)
    assert password not in repr(event.data.model_dump())
    assert event.data.password.get_secret_value() == password
    assert json.loads(event.to_bytes())["data"]["password"] == password


def test_a_secret_survives_model_dump_json_too_so_any_json_publisher_sends_it() -> None:
    data = ReauthenticateAccountData(account_id="a-1", username="maria", password="s3cret")

    assert json.loads(data.model_dump_json())["password"] == "s3cret"


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_event_class_pins_its_type_and_builds_with_it(event_type: str) -> None:
    cls = EVENT_TYPES[event_type]
    golden = decode(TOPIC_OF_TYPE[event_type], (GOLDEN / f"{event_type}.json").read_bytes())

    rebuilt = cls.build(company_id="c-4812", source=golden.source, data=golden.data)

    assert cls.type_name() == event_type
    assert rebuilt.type == event_type
    assert rebuilt.data == golden.data


def test_raw_message_refs_name_content_by_lowercase_sha256() -> None:
    ok = RawMessageRef(sha256="a" * 64, size=0)

    assert ok.size == 0
    for bad in ({"sha256": "A" * 64, "size": 1}, {"sha256": "a" * 63, "size": 1}):
        with pytest.raises(ValidationError):
            RawMessageRef.model_validate(bad)
    with pytest.raises(ValidationError):
        RawMessageRef(sha256="a" * 64, size=-1)
