"""Structured JSON logs on stdout, one object per line.

Records carry the ids passed in `extra=` (account_id, thread_id, topic, offset...). Keys that
could hold secrets or message content are dropped here as a last line of defence; the code
never logs them in the first place.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
# Any key containing one of these words could hold a secret or message content.
_NEVER_LOGGED = (
    "password",
    "secret",
    "token",
    "credential",
    "body",
    "raw",
    "html",
    "text",
    "authorization",
    "cookie",
)


def _never_logged(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _NEVER_LOGGED)


def _json_safe(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # NaN and Infinity are not JSON
    if isinstance(value, str | int | float | bool | None):
        return value
    return repr(value)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        for key, value in vars(record).items():
            if key in _STANDARD_ATTRS or key.startswith("_") or _never_logged(key):
                continue
            # An extra never overwrites the formatter's own fields.
            entry[f"extra_{key}" if key in entry else key] = _json_safe(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, allow_nan=False)


def configure_logging(service: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiokafka is chatty about group rebalances at INFO; they are not our story.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
