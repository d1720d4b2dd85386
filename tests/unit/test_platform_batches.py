"""The batch consumer's pure parts: which events of a poll reach the use case (every consumer is
idempotent, ARCHITECTURE §1), and which traces the poll's span links to (§2: traces cross
services in the W3C `traceparent` header)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import pytest
from opentelemetry.trace import format_span_id, format_trace_id

from mailsync_platform.consumer import ConsumedRecord, first_time_events, trace_links


@dataclass(frozen=True)
class Event:
    id: UUID
    name: str


A, B, C = (UUID(int=n) for n in (1, 2, 3))


@pytest.mark.parametrize(
    ("events", "new_ids", "applied"),
    [
        ([Event(A, "a"), Event(B, "b"), Event(C, "c")], {A, B, C}, ["a", "b", "c"]),
        ([Event(C, "c"), Event(A, "a"), Event(B, "b")], {A, B, C}, ["c", "a", "b"]),
        ([Event(A, "a"), Event(B, "b"), Event(C, "c")], {B}, ["b"]),
        ([Event(A, "a"), Event(B, "b")], set(), []),
        ([Event(A, "a"), Event(B, "b"), Event(A, "a again")], {A, B}, ["a", "b"]),
        ([Event(A, "a"), Event(A, "a again")], set(), []),
        ([], {A}, []),
    ],
    ids=[
        "all new, in order",
        "order is the poll's, not the ids'",
        "only the new ones",
        "all duplicates",
        "an id twice in one poll: its first occurrence",
        "an id twice, already processed",
        "empty poll",
    ],
)
def test_the_use_case_gets_each_first_time_event_once_in_poll_order(
    events: list[Event], new_ids: set[UUID], applied: list[str]
) -> None:
    assert [e.name for e in first_time_events(events, new_ids)] == applied


def _record(offset: int, headers: dict[str, str]) -> ConsumedRecord:
    return ConsumedRecord("crm.entities.v1", 0, offset, b"k", b"{}", headers)


def _traceparent(trace_id: int, span_id: int) -> str:
    return f"00-{format_trace_id(trace_id)}-{format_span_id(span_id)}-01"


def test_a_poll_links_each_distinct_record_trace_once_in_order() -> None:
    records = [
        _record(0, {"traceparent": _traceparent(7, 1)}),
        _record(1, {"traceparent": _traceparent(8, 2)}),
        _record(2, {"traceparent": _traceparent(7, 1)}),  # staged by the same transaction
        _record(3, {}),  # a producer without tracing
        _record(4, {"traceparent": "00-not-a-trace-01"}),
    ]
    links = trace_links(records)
    assert [(link.context.trace_id, link.context.span_id) for link in links] == [(7, 1), (8, 2)]
    assert all(link.context.is_remote for link in links)


def test_a_poll_links_at_most_as_many_traces_as_a_span_keeps() -> None:
    records = [_record(n, {"traceparent": _traceparent(n + 1, n + 1)}) for n in range(500)]
    links = trace_links(records)
    assert len(links) == 128
    assert links[0].context.trace_id == 1
