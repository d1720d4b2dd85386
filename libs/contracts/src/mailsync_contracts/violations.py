"""Why a Kafka record does not honour the contract of its topic.

Every consumer turns a bad record into a dead letter instead of stopping (ARCHITECTURE §2), so
the failure has to be classified (`kind`, a metric label) and explained (`reason`, for the
dead-letter record and the log). Invariant: a reason never quotes the input, because record
values carry mail bodies and, on the account command topic, passwords.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ValidationError
from pydantic_core import from_json

ViolationKind = Literal["not_json", "invalid", "unknown_type", "unknown_topic"]

# A reason lists the first few problems; a payload wrong everywhere would otherwise yield a
# reason as long as the payload itself.
_MAX_LISTED_ERRORS = 5


class ContractViolation(Exception):
    """A record that cannot be read as an event of its topic.

    `kind` is one of "not_json", "invalid", "unknown_type", "unknown_topic"; `reason` says what is
    wrong in words an operator can act on; `event_type` is the record's `type` when it had one.
    """

    def __init__(self, reason: str, kind: ViolationKind, event_type: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind: ViolationKind = kind
        self.event_type = event_type

    def __repr__(self) -> str:
        return f"ContractViolation(kind={self.kind!r}, reason={self.reason!r})"


def parse_envelope_object(raw: bytes | None) -> dict[str, Any]:
    """Parse a record value into the JSON object an envelope must be.

    Raises `ContractViolation` "not_json" for anything that is not JSON text (including a null
    value and NaN, which the JSON grammar does not have), and "invalid" for JSON that is not an
    object.
    """
    if raw is None:
        raise ContractViolation("record has no value", "not_json")
    try:
        parsed = from_json(raw, allow_inf_nan=False)
    except ValueError as exc:
        raise ContractViolation(f"record value is not JSON: {exc}", "not_json") from None
    if not isinstance(parsed, dict):
        kind_of_value = type(parsed).__name__
        raise ContractViolation(
            f"record value is JSON but not an object (got {kind_of_value})", "invalid"
        )
    return parsed


def envelope_type(envelope: dict[str, Any]) -> str:
    """The envelope's `type`, or an "invalid" violation when it is missing or not a string."""
    value = envelope.get("type")
    if not isinstance(value, str):
        raise ContractViolation("envelope has no string field 'type'", "invalid")
    return value


def explain(error: ValidationError, event_type: str) -> str:
    """Summarise a validation error as `type ...: loc: message; ...`, never echoing the input."""
    problems = error.errors(include_input=False, include_url=False, include_context=False)
    parts = []
    for problem in problems[:_MAX_LISTED_ERRORS]:
        location = problem["loc"]
        if location and location[0] == event_type:
            # A discriminated union prefixes the tag, which only repeats the type.
            location = location[1:]
        where = ".".join(str(step) for step in location) or "(envelope)"
        parts.append(f"{where}: {problem['msg']}")
    hidden = len(problems) - _MAX_LISTED_ERRORS
    if hidden > 0:
        parts.append(f"and {hidden} more")
    return f"{event_type} does not match its schema: " + "; ".join(parts)
