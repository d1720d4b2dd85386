"""The benchmark mailbox (bench/mailbox_corpus.py) keeps the promises its figures rest on: the
same seed gives the same bytes, messages are well-formed where they mean to be, the charsets
and shapes are all there, and ingest's parser reads every one of them (R10)."""

from __future__ import annotations

from bench.mailbox_corpus import generate

from mailsync_mime.parsing import parse_message

CHARSETS = {
    "UTF-8",
    "us-ascii",
    "ISO-8859-1",
    "windows-1252",
    "KOI8-R",
    "GB2312",
    "GBK",
    "Shift_JIS",
    "ISO-2022-JP",
    "Big5",
}


def test_the_benchmark_mailbox_is_the_same_for_the_same_seed() -> None:
    first = [message.raw for message in generate(120, seed=11)]
    assert first == [message.raw for message in generate(120, seed=11)]
    assert first != [message.raw for message in generate(120, seed=12)]


def test_the_benchmark_mailbox_is_crlf_with_unique_ids_every_charset_html_and_attachments() -> None:
    messages = list(generate(600))
    assert len({message.message_id for message in messages}) == len(messages)
    for message in messages:
        assert b"\n" not in message.raw.replace(b"\r\n", b"")
        assert max(len(line) for line in message.raw.split(b"\r\n")) <= 998  # RFC 5322 §2.1.1
    assert {message.charset for message in messages} == CHARSETS
    assert 0.1 < sum(message.html for message in messages) / len(messages) < 0.3
    assert 0.1 < sum(message.attachments > 0 for message in messages) / len(messages) < 0.3
    assert sum(b"\r\nIn-Reply-To: " in message.raw for message in messages) > len(messages) / 4
    dates = [message.received_at for message in messages]
    assert dates == sorted(dates)


def test_r10_ingest_reads_id_sender_and_subject_of_every_benchmark_message() -> None:
    for message in generate(300):
        parsed = parse_message(message.raw)
        assert parsed.message_id == message.message_id
        assert parsed.sender is not None
        assert parsed.subject
        assert "=?" not in parsed.subject
