"""R10: the hostile corpus (tests/support/nasty_mime.py) parses to what each message shows, and
the parser's fast structure reader reads every message exactly as the stdlib parser does.

The fast reader (`_read_structure`) finds MIME delimiters without the stdlib's line-by-line
walk and leaves anything unusual to the stdlib parser; whatever it accepts must give the same
`ParsedMessage` as the stdlib reading, which these tests check over the nasty corpus, the demo
mailbox, the benchmark's mailbox, and thousands of mutations of them.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import asdict
from datetime import UTC, datetime

import pytest
from bench.parsing import corpus as bench_corpus

from mailsync_devstack.demo_data import demo_mailbox
from mailsync_mime import parsing
from mailsync_mime.parsing import SNIPPET_LENGTH, ParsedMessage, parse_message
from tests.support.nasty_mime import NASTY_MESSAGES, NastyMessage

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
NOW = datetime(2025, 10, 20, 15, 0, tzinfo=UTC)


def assert_serializable(parsed: ParsedMessage) -> None:
    """Every string is valid Unicode without C0 controls: JSON, UTF-8 and Postgres take it."""
    encoded = json.dumps(asdict(parsed), default=str, ensure_ascii=False).encode("utf-8")
    assert b"\\u0000" not in encoded

    def walk(value: object) -> None:
        if isinstance(value, str):
            assert not _CONTROL.search(value), value
            value.encode("utf-8")
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(asdict(parsed))
    assert len(parsed.snippet) <= SNIPPET_LENGTH


def test_r10_the_nasty_corpus_covers_every_hostile_shape_the_issue_lists() -> None:
    assert len(NASTY_MESSAGES) >= 15
    for shape in [
        "unknown-charset",
        "gbk-text-labelled-gb2312",
        "windows-1252-labelled-iso-8859-1",
        "multipart-never-closed",
        "raw-utf-8-headers",
        "raw-latin-1-headers",
        "message-rfc822-three-deep",
        "one-megabyte-header",
        "five-thousand-headers",
        "nul-bytes",
        "bare-lf",
        "bare-cr",
        "empty-message",
        "headers-without-body",
        "rfc2231-continuations",
        "hebrew-subject",
        "arabic-subject",
        "base64-with-garbage",
        "quoted-printable-broken",
        "iso-2022-jp",
        "unparseable-date",
        "duplicate-message-id",
    ]:
        assert any(name.startswith(shape) for name in NASTY_MESSAGES), shape


@pytest.mark.parametrize("nasty", NASTY_MESSAGES.values(), ids=NASTY_MESSAGES.keys())
def test_r10_every_nasty_message_parses_to_what_it_shows_or_says_why_not(
    nasty: NastyMessage,
) -> None:
    parsed = parse_message(nasty.raw)
    assert_serializable(parsed)
    expected = nasty.expected
    if expected.subject is not None:
        assert parsed.subject == expected.subject
    if expected.sender is not None:
        assert parsed.sender is not None
        assert parsed.sender.email == expected.sender
    if expected.snippet is not None:
        assert parsed.snippet.startswith(expected.snippet)
        assert bool(parsed.snippet) == bool(expected.snippet)
    if expected.filenames is not None:
        assert tuple(a.filename for a in parsed.attachments) == expected.filenames
    if expected.message_id is not None:
        assert parsed.message_id == expected.message_id
    if expected.parse_error is None:
        assert parsed.parse_error is None
    else:
        assert parsed.parse_error is not None
        assert expected.parse_error in parsed.parse_error


def test_r10_an_unparseable_date_gives_no_sent_at_and_no_failure() -> None:
    parsed = parse_message(NASTY_MESSAGES["unparseable-date"].raw)
    assert parsed.sent_at is None
    assert parsed.snippet == "soon"


def test_r10_the_forwarded_chain_is_one_attachment_measured_whole() -> None:
    nasty = NASTY_MESSAGES["message-rfc822-three-deep"]
    (attachment,) = parse_message(nasty.raw).attachments
    assert attachment.content_type == "message/rfc822"
    assert attachment.size > 0


def test_r10_cjk_and_right_to_left_nasty_messages_lose_no_character() -> None:
    for name in (
        "gbk-text-labelled-gb2312",
        "hebrew-subject-right-to-left",
        "arabic-subject-right-to-left",
        "iso-2022-jp",
        "rfc2231-continuations-in-several-charsets",
    ):
        parsed = parse_message(NASTY_MESSAGES[name].raw)
        shown = [parsed.subject, parsed.snippet, *(a.filename or "" for a in parsed.attachments)]
        assert not any("\ufffd" in text for text in shown), name


def _mutations(messages: list[bytes], seed: int, per_message: int) -> list[bytes]:
    """Byte flips, truncations, spliced garbage, and line-level damage (duplicated, dropped or
    CR-stripped lines: boundaries and headers in the wrong place)."""
    rng = random.Random(seed)
    mutated: list[bytes] = []
    for original in filter(None, messages):  # nothing to mutate in an empty message
        for _ in range(per_message):
            raw = bytearray(original)
            operation = rng.randrange(4)
            if operation == 0:
                for _ in range(rng.randrange(1, 20)):
                    raw[rng.randrange(len(raw))] = rng.randrange(256)
            elif operation == 1:
                del raw[rng.randrange(len(raw)) :]
            elif operation == 2:
                at = rng.randrange(len(raw))
                raw[at:at] = rng.randbytes(rng.randrange(1, 200))
            else:
                lines = bytes(raw).split(b"\n")
                for _ in range(rng.randrange(1, 4)):
                    if not lines:
                        break
                    at, source = rng.randrange(len(lines)), rng.randrange(len(lines))
                    damage = rng.randrange(3)
                    if damage == 0:
                        lines.insert(at, lines[source])
                    elif damage == 1:
                        del lines[at]
                    else:
                        lines[at] = lines[at].replace(b"\r", b"")
                raw = bytearray(b"\n".join(lines))
            mutated.append(bytes(raw))
    return mutated


def _both_readings(
    raw: bytes, monkeypatch: pytest.MonkeyPatch
) -> tuple[ParsedMessage, ParsedMessage]:
    fast = parse_message(raw)
    with monkeypatch.context() as patched:
        patched.setattr(parsing, "_read_structure", lambda raw: None)
        stdlib = parse_message(raw)
    return fast, stdlib


@pytest.fixture(scope="module")
def realistic() -> list[bytes]:
    demo = [m.raw for m in demo_mailbox("dana@demo-sales.test", NOW)]
    nasty = [m.raw for m in NASTY_MESSAGES.values()]
    return [*bench_corpus(), *demo, *nasty]


def test_r10_the_fast_structure_reader_reads_the_realistic_mailbox_as_the_stdlib_does(
    realistic: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    accepted = 0
    for raw in realistic:
        fast, stdlib = _both_readings(raw, monkeypatch)
        assert fast == stdlib
        accepted += parsing._read_structure(raw) is not None
    # The reader must carry the load, not decline it: only damaged and message/* mail goes on
    # to the stdlib parser.
    assert accepted >= 0.9 * len(realistic)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_r10_the_fast_structure_reader_reads_damaged_mail_as_the_stdlib_does(
    realistic: list[bytes], monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    sample = random.Random(seed).sample(realistic, 120)
    for raw in _mutations(sample, seed, per_message=8):
        fast, stdlib = _both_readings(raw, monkeypatch)
        assert fast == stdlib, raw[:300]
        assert_serializable(fast)


def test_r10_the_fast_structure_reader_reads_bare_lf_mail_as_the_stdlib_does(
    realistic: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    for raw in realistic[::4]:
        unix = raw.replace(b"\r\n", b"\n")
        fast, stdlib = _both_readings(unix, monkeypatch)
        assert fast == stdlib


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        # A delimiter may carry trailing white space (RFC 2046 §5.1.1).
        ("multipart/mixed; boundary=b", "--b  \n\nno headers\n--b--\t\n"),
        # `--b` followed by more than white space is body text, not a delimiter.
        ("multipart/mixed; boundary=b", "--b\n\nfirst\n--bx\nstill first\n--b--\n"),
        # Doubled delimiters, a preamble and an epilogue.
        ("multipart/mixed; boundary=b", "preamble\n--b\n--b\n\ntext\n--b--\nepilogue\n--b\n"),
        # An inner boundary that extends the outer one.
        (
            "multipart/mixed; boundary=b",
            "--b\nContent-Type: multipart/alternative; boundary=b2\n\n"
            "--b2\n\ninner\n--b2--\n--b--\n",
        ),
        # An outer delimiter inside an inner part: the inner multipart is never closed.
        (
            "multipart/mixed; boundary=o",
            "--o\nContent-Type: multipart/alternative; boundary=i\n\n"
            "--i\n\ninner\n--o\n\nouter\n--o--\n",
        ),
        # A part whose headers run into the next delimiter.
        ("multipart/mixed; boundary=b", "--b\nContent-Type: text/plain\n--b--\n"),
        # A part whose first line is a continuation, a colon, or an mbox line.
        ("multipart/mixed; boundary=b", "--b\n folded\n\ntext\n--b--\n"),
        ("multipart/mixed; boundary=b", "--b\n: no name\n\ntext\n--b--\n"),
        ("multipart/mixed; boundary=b", "--b\nFrom x@y.test\n\ntext\n--b--\n"),
        # The close delimiter first.
        ("multipart/mixed; boundary=b", "--b--\n--b\n\ntext\n"),
        # Base64 transfer encoding on the container (RFC 2045 §6.4 forbids it).
        ("multipart/mixed; boundary=b\nContent-Transfer-Encoding: base64", "--b\n\nx\n--b--\n"),
        ("multipart/digest; boundary=b", "--b\n\nFrom: a@x.test\n\nx\n--b--\n"),
        ("multipart/mixed; boundary=", "--\n\nx\n----\n"),
        ("text/plain", "no trailing newline"),
    ],
)
@pytest.mark.parametrize("line_end", ["\r\n", "\n"])
def test_r10_the_fast_structure_reader_agrees_with_the_stdlib_on_delimiter_corner_cases(
    content_type: str, body: str, line_end: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = f"From: a@x.test\nSubject: corner\nContent-Type: {content_type}\n\n{body}"
    raw = text.replace("\n", line_end).encode()
    fast, stdlib = _both_readings(raw, monkeypatch)
    assert fast == stdlib
