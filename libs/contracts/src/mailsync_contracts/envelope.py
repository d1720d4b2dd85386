"""The envelope every record value on every mailsync topic is wrapped in (ARCHITECTURE §2).

Field names are CloudEvents': `id`, `type`, `source`, `time`, plus `schema_version` and the
tenant `company_id`, and the event's `data`. Each event or command is a subclass that pins
`type` to a `Literal` and `data` to its payload model.

Invariants:
- models are frozen, and readers are tolerant: unknown fields are ignored (`extra="ignore"`),
  so a producer may add an optional field without breaking older consumers;
- `schema_version` is 1 for every type on a `.v1` topic; a breaking change is a new topic;
- every datetime is timezone-aware; a naive one is rejected rather than guessed at;
- the wire form is JSON by alias (`from`, not `from_`), written by `to_bytes()`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Generic, Literal, Self, TypeVar
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from mailsync_contracts.violations import (
    ContractViolation,
    envelope_type,
    explain,
    parse_envelope_object,
)


class ContractModel(BaseModel):
    """Base of every model in the contract: frozen, tolerant, JSON by alias."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        # Python code writes `from_=`, the wire says "from"; both are accepted when reading.
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        # Validation errors end up in logs and dead letters; inputs hold bodies and passwords.
        hide_input_in_errors=True,
    )


DataT = TypeVar("DataT", bound=BaseModel)

# Fields every producer writes even though the models give them defaults (so Python code need
# not repeat them); the JSON schema says so, because that is what a reader can rely on.
_ALWAYS_ON_THE_WIRE = ("type", "schema_version")


def _require_fields_written_by_every_producer(schema: dict[str, Any]) -> None:
    required = schema.setdefault("required", [])
    for name in _ALWAYS_ON_THE_WIRE:
        if name in schema.get("properties", {}) and name not in required:
            required.append(name)


class Envelope(ContractModel, Generic[DataT]):
    """One event or command as it travels on a topic.

    Subclasses declare `type: Literal["<dotted.name>"] = "<dotted.name>"` and parametrise
    `Envelope[TheirData]`. Build new ones with `build()`, which fills `id` and `time`.
    """

    model_config = ConfigDict(json_schema_extra=_require_fields_written_by_every_producer)

    id: UUID
    type: str
    source: str
    time: AwareDatetime
    schema_version: Literal[1] = 1
    company_id: str
    data: DataT

    @classmethod
    def type_name(cls) -> str:
        """The dotted type this class stands for, e.g. "mail.message.ingested"."""
        default = cls.model_fields["type"].default
        if not isinstance(default, str):
            raise TypeError(f"{cls.__name__} does not pin a `type`")
        return default

    @classmethod
    def build(
        cls,
        *,
        company_id: str,
        source: str,
        data: DataT,
        id: UUID | None = None,
        time: datetime | None = None,
    ) -> Self:
        """A new envelope: a fresh uuid4 `id` and `time` now in UTC unless given.

        Pass `id` when the event must be re-derivable (an idempotent producer replaying the
        same decision should publish the same id, so consumers deduplicate it).
        """
        return cls(
            id=id if id is not None else uuid4(),
            type=cls.type_name(),
            source=source,
            time=time if time is not None else datetime.now(UTC),
            company_id=company_id,
            data=data,
        )

    def to_bytes(self) -> bytes:
        """The record value: UTF-8 JSON by alias, every field written (defaults included)."""
        return self.model_dump_json(by_alias=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> Self:
        """Read a record value that must be this very type.

        Raises `ContractViolation` like `decode()`; a record of another type is "unknown_type"
        from this class's point of view.
        """
        expected = cls.type_name()
        envelope = parse_envelope_object(raw)
        actual = envelope_type(envelope)
        if actual != expected:
            raise ContractViolation(
                f"expected type {expected!r}, got {actual!r}", "unknown_type", actual
            )
        try:
            return cls.model_validate(envelope)
        except ValidationError as exc:
            raise ContractViolation(explain(exc, actual), "invalid", actual) from exc
