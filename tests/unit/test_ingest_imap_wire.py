"""The IMAP answers the sync reads and the commands it writes (R7, R8), and its reconnect
pacing (no reconnect storms)."""

from __future__ import annotations

import asyncio

import pytest

from mailsync_ingest.adapters.imap import (
    ImapError,
    MessageSummary,
    _Fetch,
    _fetch_items,
    _folder_status,
    _message_id,
    _Protocol,
    compress_uid_set,
    expand_uid_set,
)
from mailsync_ingest.folder_sync import _any_message_id, _byte_budget_groups
from mailsync_ingest.sync import reconnect_delay


@pytest.mark.parametrize(
    ("text", "uids"),
    [
        ("7", [7]),
        ("1:3,7", [1, 2, 3, 7]),
        ("5:3", [3, 4, 5]),
        ("1:2,x,9", [1, 2, 9]),
        ("", []),
    ],
)
def test_r8_vanished_uid_sets_are_expanded(text: str, uids: list[int]) -> None:
    assert expand_uid_set(text) == uids


@pytest.mark.parametrize(
    ("uids", "text"),
    [([7], "7"), ([1, 2, 3, 7], "1:3,7"), ([9, 3, 2, 2, 1], "1:3,9"), ([4, 6, 8], "4,6,8")],
)
def test_uid_sets_are_compressed_into_ranges(uids: list[int], text: str) -> None:
    assert compress_uid_set(uids) == text
    assert expand_uid_set(text) == sorted(set(uids))


def test_r7_a_qresync_select_answer_gives_validity_next_modseq_count_and_vanished() -> None:
    lines = [
        b"FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
        b"OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.",
        b"12 EXISTS",
        b"0 RECENT",
        b"OK [UIDVALIDITY 1763900000] UIDs valid",
        b"OK [UIDNEXT 31] Predicted next UID",
        b"OK [HIGHESTMODSEQ 77] Highest",
        b"VANISHED (EARLIER) 3:5,9",
        b"[READ-ONLY] Examine completed (0.001 + 0.000 secs).",
    ]
    status = _folder_status(lines)
    assert status is not None
    assert (status.uidvalidity, status.uidnext, status.exists, status.highestmodseq) == (
        1763900000,
        31,
        12,
        77,
    )


def test_a_status_answer_counts_messages() -> None:
    lines = [b'"INBOX" (MESSAGES 4 UIDNEXT 9 UIDVALIDITY 3 HIGHESTMODSEQ 12)', b"Status done."]
    status = _folder_status(lines, messages=True)
    assert status is not None
    assert status.fingerprint == (3, 9, 4, 12)


def test_an_answer_without_uidvalidity_is_not_a_status() -> None:
    assert _folder_status([b"3 EXISTS", b"Select completed."]) is None


def test_summaries_read_size_flags_and_message_id_from_a_header_fields_literal() -> None:
    header = b"Message-ID:\r\n <abc.123@customer.test>\r\n\r\n"
    lines: list[bytes | bytearray] = [
        b"1 FETCH (UID 40 FLAGS (\\Seen) RFC822.SIZE 3512 BODY[HEADER.FIELDS (MESSAGE-ID)] {%d}"
        % len(header),
        bytearray(header),
        b")",
        b"2 FETCH (UID 41 FLAGS () RFC822.SIZE 10 BODY[HEADER.FIELDS (MESSAGE-ID)] {2}",
        bytearray(b"\r\n"),
        b")",
        b"Fetch completed.",
    ]
    items = _fetch_items(lines)
    assert [uid for uid, _, _ in items] == [40, 41]
    assert _message_id(items[0][2]) == "abc.123@customer.test", "folded header unfolded"
    assert _message_id(items[1][2]) is None


def test_r8_a_search_for_several_message_ids_nests_binary_ors_and_escapes_quotes() -> None:
    assert _any_message_id(["a@x"]) == 'HEADER Message-ID "<a@x>"'
    assert _any_message_id(["a@x", 'b"q@x', "c@x"]) == (
        'OR HEADER Message-ID "<a@x>" OR HEADER Message-ID "<b\\"q@x>" HEADER Message-ID "<c@x>"'
    )


def test_r4_bodies_are_fetched_in_groups_within_the_byte_budget() -> None:
    summaries = [MessageSummary(uid, (), size, None) for uid, size in enumerate([4, 4, 9, 1, 1], 1)]
    groups = _byte_budget_groups(summaries, budget=8)
    assert [[s.uid for s in group] for group in groups] == [[1, 2], [3], [4, 5]]


@pytest.mark.parametrize("attempt", [0, 1, 5, 20, 1000])
def test_reconnects_are_jittered_and_capped(attempt: int) -> None:
    delays = [reconnect_delay(attempt, base=1.0, cap=300.0) for _ in range(200)]
    ceiling = min(300.0, 2.0**attempt)
    assert all(0 <= d <= ceiling for d in delays)
    if attempt >= 5:
        # Full jitter: replicas that lost the server together do not return together.
        assert max(delays) - min(delays) > ceiling / 4


async def test_a_fetch_waits_exactly_until_the_current_item_closes_its_parenthesis() -> None:
    command = _Fetch("A1", "1:2", "(UID FLAGS BODY.PEEK[])", prefix="UID")
    command.append_to_resp(b"1 FETCH (UID 1 FLAGS (\\Seen) BODY[] {5}")
    assert command.wait_data()
    command.append_to_resp(bytearray(b"a(b(c"))  # a literal's parentheses do not count
    assert command.wait_data()
    command.append_to_resp(b")")
    assert not command.wait_data()
    # Many closed items before an open one: only the open one decides.
    for uid in range(2, 500):
        command.append_to_resp(f"{uid} FETCH (UID {uid} FLAGS ())".encode())
    command.append_to_resp(b"500 FETCH (UID 500 FLAGS (")
    assert command.wait_data()


async def test_a_command_sent_after_the_connection_died_fails_at_once_instead_of_timing_out() -> (
    None
):
    protocol = _Protocol(asyncio.get_running_loop(), None)
    protocol.connection_lost(None)
    with pytest.raises(ImapError, match="connection is lost"):
        protocol.send("A2 UID FETCH 1:5 (UID FLAGS BODY.PEEK[])")
