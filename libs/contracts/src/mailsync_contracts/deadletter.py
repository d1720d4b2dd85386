"""`mail.deadletter.v1`: records a consumer could not process, kept for inspection and replay.

Invariants:
- the original bytes survive exactly (`key_base64`, `value_base64`), whatever they were; the
  `_text` forms are UTF-8 with replacement characters, for people reading the topic;
- the record is keyed by the original key and its envelope `company_id` is the original's when
  that could be read, else "" (a record that is not JSON has no readable tenant);
- `error_kind` is free text on purpose: the dead-letter path is the last resort and must
  accept any kind a consumer reports ("not_json", "invalid", "unknown_type", "unknown_topic",
  "handler_failed", ...), never reject a record for a kind it has not heard of.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Annotated, Literal, Self
from uuid import NAMESPACE_URL, uuid5

from pydantic import AfterValidator, Field
from pydantic_core import from_json

from mailsync_contracts.envelope import ContractModel, Envelope


def _must_be_base64(text: str) -> str:
    try:
        base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64: {exc}") from None
    return text


Base64 = Annotated[str, AfterValidator(_must_be_base64)]


def _as_text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", errors="replace")


def _as_base64(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode("ascii")


class DeadLetterRecordedData(ContractModel):
    """Where the record was, what it held, and why it was set aside."""

    original_topic: str
    partition: Annotated[int, Field(ge=0)]
    offset: Annotated[int, Field(ge=0)]
    key: str | None = None
    key_base64: Base64 | None = None
    value_text: str | None = None
    value_base64: Base64 | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    error_kind: Annotated[str, Field(min_length=1)]
    error_message: str
    service: str

    def original_key(self) -> bytes | None:
        """The original key, byte for byte, for a replay."""
        return None if self.key_base64 is None else base64.b64decode(self.key_base64)

    def original_value(self) -> bytes | None:
        """The original value, byte for byte, for a replay."""
        return None if self.value_base64 is None else base64.b64decode(self.value_base64)


def _company_of(value: bytes | None) -> str:
    """The original envelope's company_id when it is readable at all, else ""."""
    if value is None:
        return ""
    try:
        parsed = from_json(value)
    except ValueError:
        return ""
    company = parsed.get("company_id") if isinstance(parsed, dict) else None
    return company if isinstance(company, str) else ""


class DeadLetterRecorded(Envelope[DeadLetterRecordedData]):
    type: Literal["mail.deadletter.recorded"] = "mail.deadletter.recorded"

    @classmethod
    def capture(
        cls,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        error_kind: str,
        error_message: str,
        service: str,
        headers: Mapping[str, str] | None = None,
    ) -> Self:
        """The dead letter for one consumed record; `service` is also the envelope's source.

        The id is derived from service and record position, so dead-lettering the same record
        again after a redelivery yields the same event, which readers deduplicate.
        """
        data = DeadLetterRecordedData(
            original_topic=topic,
            partition=partition,
            offset=offset,
            key=_as_text(key),
            key_base64=_as_base64(key),
            value_text=_as_text(value),
            value_base64=_as_base64(value),
            headers=dict(headers or {}),
            error_kind=error_kind,
            error_message=error_message,
            service=service,
        )
        position = f"mailsync-deadletter:{service}:{topic}:{partition}:{offset}"
        return cls.build(
            company_id=_company_of(value),
            source=service,
            data=data,
            id=uuid5(NAMESPACE_URL, position),
        )


DeadLetterEvent = DeadLetterRecorded
