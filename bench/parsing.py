"""How fast ingest turns raw MIME into an event's fields, and how much memory it takes.

The corpus is what a sales mailbox holds, made deterministically (a fixed seed) so figures
compare across runs: about 35 KB a message on average; conversations in plain text or
plain+HTML, some with long quoted chains; one message in five a marketing HTML mail; one in
four with attachments (PDF, images, spreadsheets, base64); every charset a CRM meets (UTF-8,
windows-1252 labelled ISO-8859-1, GBK labelled GB2312, Big5, ISO-2022-JP, Shift_JIS, KOI8-R,
Arabic and Hebrew), RFC 2047 subjects and names, RFC 2231 filenames, a few damaged messages;
and the demo mailbox. `python -m bench.parsing --profile` shows where the time goes.
"""

from __future__ import annotations

import base64
import quopri
import random
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

from mailsync_devstack.demo_data import demo_mailbox
from mailsync_mime.parsing import parse_message

CORPUS_SIZE = 600
SEED = 35
ROUNDS = 3

# Words each language's text is drawn from; CJK text is drawn character by character.
_VOCABULARY = {
    "latin": "the proposal pricing contract delivery next week meeting thanks regards please "
    "find attached review schedule invoice update team call follow up quarter budget shipment "
    "order confirm agenda kickoff rollout",
    "german": "für Grüße Angebot Lieferung nächste Woche Rückfrage Maßnahme Bestätigung "
    "the proposal pricing contract delivery",
    "french": "réunion été déjà prévu à l'équipe coût détaillé reçu ça "
    "the proposal pricing contract delivery",
    "russian": "Коммерческое предложение по телематике автопарка спасибо документы",
    "arabic": "طلب عرض سعر لمعرض دبي التجاري شكرا جزيلا",
    "hebrew": "הצעת מחיר לפגישה בשבוע הבא תודה רבה",
    "chinese": "关于亚太区代理协议的报价我们已经收到您的邮件请查收附件谢谢朱镕喆会议时间确认",
    "traditional": "台灣區經銷商會議時間確認謝謝您的來信請查收附件",
    "japanese": "導入研修のスケジュールについてご確認をお願いいたします株式会社",
}
# (charset label written in the message, codec that wrote the bytes, language).
_CHARSETS: list[tuple[str, str, str]] = [
    ("utf-8", "utf-8", "latin"),
    ("utf-8", "utf-8", "german"),
    ("iso-8859-1", "cp1252", "german"),
    ("iso-8859-1", "cp1252", "french"),
    ("windows-1252", "cp1252", "french"),
    ("us-ascii", "ascii", "latin"),
    ("gb2312", "gbk", "chinese"),
    ("big5", "big5", "traditional"),
    ("iso-2022-jp", "iso2022_jp", "japanese"),
    ("shift_jis", "cp932", "japanese"),
    ("koi8-r", "koi8_r", "russian"),
    ("utf-8", "utf-8", "arabic"),
    ("utf-8", "utf-8", "hebrew"),
]
_CHARSET_WEIGHTS = [30, 8, 8, 5, 3, 10, 6, 3, 4, 2, 4, 3, 2]


def _text(rng: random.Random, language: str, length: int) -> str:
    vocabulary = _VOCABULARY[language]
    words = vocabulary.split()
    pieces: list[str] = []
    size = 0
    while size < length:
        if language in ("chinese", "traditional", "japanese"):
            start = rng.randrange(len(vocabulary) - 8)
            piece = vocabulary[start : start + rng.randrange(4, 8)] + "。"
        else:
            piece = " ".join(rng.choice(words) for _ in range(rng.randrange(6, 14))) + "."
        pieces.append(piece)
        size += len(piece)
        if rng.random() < 0.15:
            pieces.append("\n\n")
    return " ".join(pieces)


def _wrap(text: str, width: int = 76) -> str:
    lines: list[str] = []
    for paragraph in text.split("\n"):
        while len(paragraph) > width:
            cut = paragraph.rfind(" ", 0, width)
            cut = cut if cut > 0 else width
            lines.append(paragraph[:cut])
            paragraph = paragraph[cut:].lstrip(" ")
        lines.append(paragraph)
    return "\r\n".join(lines)


def _encoded_word(text: str, charset: str, codec: str) -> str:
    if text.isascii():
        return text
    data = text.encode(codec, "replace")
    return f"=?{charset}?B?{base64.b64encode(data).decode()}?="


def _body_part(text: str, charset: str, codec: str, subtype: str, rng: random.Random) -> bytes:
    data = text.encode(codec, "replace").replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")
    if codec == "iso2022_jp" or data.isascii():
        encoding, body = "7bit", data
    elif rng.random() < 0.5:
        encoding, body = "quoted-printable", quopri.encodestring(data).replace(b"\n", b"\r\n")
        body = body.replace(b"\r\r\n", b"\r\n")
    elif rng.random() < 0.5:
        encoding, body = "base64", base64.encodebytes(data).replace(b"\n", b"\r\n")
    else:
        encoding, body = "8bit", data
    return (
        f"Content-Type: text/{subtype}; charset={charset}\r\n"
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
    ).encode() + body


def _html(text: str, rng: random.Random, newsletter: bool) -> str:
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    style = "<style>td{font-family:Arial;color:#333} .btn{background:#0a66c2}</style>"
    cells = "".join(
        f'<tr><td style="padding:12px 24px;font-size:14px;line-height:20px">{p}</td></tr>'
        for p in paragraphs
    )
    tracking = "".join(
        f'<img src="https://t.example.test/o/{rng.getrandbits(64):x}.gif" width="1" height="1">'
        for _ in range(3 if newsletter else 0)
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Mail</title>"
        f"{style if newsletter else ''}</head><body>"
        f'<table role="presentation" width="100%" cellpadding="0" cellspacing="0">{cells}'
        f"</table>{tracking}</body></html>"
    )


def _attachment(rng: random.Random, charset: str, codec: str, language: str) -> bytes:
    kind = rng.choice(["pdf", "png", "xlsx", "csv", "docx"])
    size = int(rng.lognormvariate(9.45, 0.9))  # median ~13 KB, long tail
    size = min(size, 600_000)
    content_type = {
        "pdf": "application/pdf",
        "png": "image/png",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "csv": "text/csv",
        "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    }[kind]
    stem = _text(rng, language, 12).split(".")[0].strip()[:24] or "document"
    filename = f"{stem}.{kind}"
    if kind == "csv":
        data = "\r\n".join(
            ",".join(str(rng.randrange(10_000)) for _ in range(8)) for _ in range(size // 40)
        ).encode()
    else:
        data = rng.randbytes(size)
    if filename.isascii():
        disposition = f'attachment; filename="{filename}"'
    elif rng.random() < 0.5:
        encoded = "".join(
            chr(b) if chr(b).isalnum() and b < 128 else f"%{b:02X}"
            for b in filename.encode(codec, "replace")
        )
        disposition = f"attachment;\r\n filename*={charset}''{encoded}"
    else:
        disposition = f'attachment; filename="{_encoded_word(filename, charset, codec)}"'
    return (
        f'Content-Type: {content_type}; name="{filename if filename.isascii() else "file"}"\r\n'
        f"Content-Disposition: {disposition}\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    ).encode() + base64.encodebytes(data).replace(b"\n", b"\r\n")


def _multipart(subtype: str, parts: list[bytes], boundary: str, *, close: bool = True) -> bytes:
    out = [f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode()]
    for part in parts:
        out.append(f"--{boundary}\r\n".encode() + part + b"\r\n")
    if close:
        out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out)


def _message(rng: random.Random, n: int, now: datetime) -> bytes:
    charset, codec, language = rng.choices(_CHARSETS, _CHARSET_WEIGHTS)[0]
    roll = rng.random()
    kind = (
        "newsletter"
        if roll < 0.20
        else "attachments"
        if roll < 0.45
        else "alternative"
        if roll < 0.75
        else "plain"
    )
    subject = _text(rng, language, 30).split(".")[0][:60]
    name = _text(rng, language, 10).split(".")[0][:20]
    sent = now - timedelta(minutes=rng.randrange(60 * 24 * 90))
    headers = [
        f"Received: from mx{rng.randrange(9)}.example.test (mx.example.test [192.0.2.{n % 250}])"
        f"\r\n\tby imap.example.test with ESMTPS id {rng.getrandbits(48):x}; "
        f"{sent.strftime('%a, %d %b %Y %H:%M:%S +0000')}",
        "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.test; s=s1;\r\n\t"
        f"h=from:to:subject:date:message-id; bh={base64.b64encode(rng.randbytes(32)).decode()};"
        f"\r\n\tb={base64.b64encode(rng.randbytes(256)).decode()}",
        f"From: {_encoded_word(name, charset, codec)} <sender{n % 97}@customer{n % 13}.test>",
        f"To: Dana Whitfield <dana@demo-sales.test>, ops{n % 5}@demo-sales.test",
        f"Subject: {'Re: ' if rng.random() < 0.4 else ''}{_encoded_word(subject, charset, codec)}",
        f"Date: {sent.strftime('%a, %d %b %Y %H:%M:%S +0000')}",
        f"Message-ID: <bench-{n}-{rng.getrandbits(40):x}@customer.test>",
        "MIME-Version: 1.0",
    ]
    if rng.random() < 0.4:
        references = " ".join(f"<ref-{n}-{i}@customer.test>" for i in range(rng.randrange(1, 6)))
        headers += [f"In-Reply-To: <ref-{n}-0@customer.test>", f"References: {references}"]
    if rng.random() < 0.3:
        headers.append(f"Cc: Ops <ops@customer{n % 13}.test>, finance@demo-sales.test")
    if kind == "newsletter":
        headers.append(f"List-Unsubscribe: <https://news.example.test/u/{rng.getrandbits(64):x}>")
    head = "\r\n".join(headers).encode("ascii") + b"\r\n"

    length = int(rng.lognormvariate(7.6, 0.8))  # median ~2 KB of text
    text = _wrap(_text(rng, language, length))
    if rng.random() < 0.3:  # a quoted reply chain
        quoted = _wrap(_text(rng, language, length * 2))
        text += "\r\n\r\n" + "\r\n".join("> " + line for line in quoted.split("\r\n"))
    if kind == "plain":
        body = _body_part(text, charset, codec, "plain", rng)
    elif kind == "alternative":
        body = _multipart(
            "alternative",
            [
                _body_part(text, charset, codec, "plain", rng),
                _body_part(_html(text, rng, False), charset, codec, "html", rng),
            ],
            f"alt-{n}",
        )
    elif kind == "newsletter":
        long_text = _text(rng, language, int(rng.lognormvariate(9.8, 0.5)))
        html_part = _body_part(_html(long_text, rng, True), "utf-8", "utf-8", "html", rng)
        if rng.random() < 0.5:
            body = html_part
        else:
            plain = _body_part(_wrap(long_text), "utf-8", "utf-8", "plain", rng)
            body = _multipart("alternative", [plain, html_part], f"news-{n}")
    else:
        inner = _multipart(
            "alternative",
            [
                _body_part(text, charset, codec, "plain", rng),
                _body_part(_html(text, rng, False), charset, codec, "html", rng),
            ],
            f"alt-{n}",
        )
        attachments = [
            _attachment(rng, charset, codec, language) for _ in range(rng.choice([1, 1, 1, 2, 3]))
        ]
        # One attachment message in twenty is cut off before its closing boundary.
        body = _multipart("mixed", [inner, *attachments], f"mix-{n}", close=rng.random() > 0.05)
    return head + body


def corpus() -> list[bytes]:
    """The benchmark's messages: the generated mailbox, then the demo mailbox."""
    now = datetime(2025, 10, 20, 15, 0, tzinfo=UTC)
    rng = random.Random(SEED)
    generated = [_message(rng, n, now) for n in range(CORPUS_SIZE)]
    return generated + [m.raw for m in demo_mailbox("dana@demo-sales.test", now)]


def run() -> dict[str, float]:
    messages = corpus()
    total_bytes = sum(len(raw) for raw in messages) * ROUNDS
    started = time.perf_counter()
    for _ in range(ROUNDS):
        for raw in messages:
            parse_message(raw)
    elapsed = time.perf_counter() - started
    tracemalloc.start()
    peak = 0
    for raw in messages[:100]:
        tracemalloc.reset_peak()
        parse_message(raw)
        peak = max(peak, tracemalloc.get_traced_memory()[1])
    tracemalloc.stop()
    count = len(messages) * ROUNDS
    return {
        "messages": count,
        "average_message_kib": total_bytes / count / 1024,
        "messages_per_second": count / elapsed,
        "mib_per_second": total_bytes / elapsed / 2**20,
        "peak_kib_while_parsing_one_message": peak / 1024,
    }


def profile() -> None:
    import cProfile
    import pstats

    messages = corpus()
    profiler = cProfile.Profile()
    profiler.enable()
    for raw in messages:
        parse_message(raw)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    if "--profile" in sys.argv:
        profile()
    else:
        for key, value in run().items():
            print(f"parsing  {key:38s} {value:12.1f}")
