"""A realistic mailbox for sync benchmarks, generated from a seed.

Realistic means shaped like a salesperson's INBOX of a few years: sizes spread log-normally
(median ≈ 14 KB, mean ≈ 35 KB, from 2 KB to a few MB: text-only mail stays small, the tail
is attachments); a mix of charsets (UTF-8, ISO-8859-1, Windows-1252, KOI8-R, GB2312, GBK,
Shift_JIS, ISO-2022-JP, Big5, US-ASCII) in bodies and in RFC 2047 encoded-words of names
and subjects, RFC 2231 file names; about a fifth HTML (multipart/alternative, newsletters
with List-Unsubscribe); about a fifth with attachments (PDF, PNG, JPEG, Office, calendar
invites as base64); conversations with In-Reply-To/References and localized reply prefixes;
Received/DKIM header blocks as real mail carries; a handful of broken messages (mislabeled
charset, missing closing boundary) as R10 expects.

Invariants:
- ``generate(count, seed=...)`` is a pure function of its arguments: the same bytes each run.
- Every message has a Message-ID of its own; line ends are CRLF; no line exceeds 998 octets
  (RFC 5322 §2.1.1).
- Messages come oldest first, dated over the two years before ``CORPUS_END``.
"""

from __future__ import annotations

import base64
import binascii
import math
import random
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from itertools import accumulate
from urllib.parse import quote

DEFAULT_SEED = 2026
CORPUS_END = datetime(2026, 11, 1, tzinfo=UTC)
MIN_SIZE = 2 * 1024
MAX_SIZE = 6 * 1024 * 1024
# Most sizes are log-normal: median e^μ ≈ 14 KB, mean e^(μ+σ²/2) ≈ 27 KB; a few messages
# carry a scan or a deck of 1 to 6 MB (log-uniform), which brings the mean to ≈ 35 KB.
_SIZE_MU = math.log(14_000)
_SIZE_SIGMA = 1.15
_HUGE_SHARE = 0.0025
_HUGE_SIZES = (1024 * 1024, 6 * 1024 * 1024)
# Above this target size a message carries its bulk as attachments, below as text.
_ATTACHMENT_THRESHOLD = 44 * 1024
_REPLY_SHARE = 0.45
_BULK_SHARE = 0.14
_PERSONAL_HTML_SHARE = 0.13
_SMALL_ATTACHMENT_SHARE = 0.07
_BROKEN_SHARE = 0.004


@dataclass(frozen=True, slots=True)
class CorpusMessage:
    """One generated message: its Message-ID (without angle brackets) and raw bytes."""

    message_id: str
    received_at: datetime
    seen: bool
    charset: str
    html: bool
    attachments: int
    raw: bytes


@dataclass(frozen=True, slots=True)
class _Language:
    charsets: tuple[tuple[str, str, str], ...]  # (MIME name, Python codec, transfer encoding)
    words: str  # space-separated
    names: tuple[tuple[str, str], ...]  # (display name, ASCII local part)
    domains: tuple[str, ...]
    subjects: tuple[str, ...]
    greeting: str
    closing: str
    reply_prefix: str
    wide: bool  # CJK: no spaces between words, about half as many characters per line
    weight: float


_LANGUAGES: tuple[_Language, ...] = (
    _Language(
        charsets=(("UTF-8", "utf-8", "quoted-printable"), ("us-ascii", "ascii", "7bit")),
        words=(
            "the proposal pricing contract meeting next week we can review our team your "
            "budget renewal quarter please find attached invoice schedule call demo license "
            "seats discount follow up on thanks for time today agenda timeline integration "
            "rollout support questions let me know if works signed legal procurement "
            "approval pipeline forecast"
        ),
        names=(
            ("Olivia Bennett", "olivia.bennett"),
            ("James Carter", "james.carter"),
            ("Priya Raman", "priya.raman"),
            ("Michael O'Brien", "michael.obrien"),
            ("Sarah Kim", "sarah.kim"),
            ("Daniel Novak", "daniel.novak"),
            ("Emily Watson", "emily.watson"),
            ("Robert Chen", "robert.chen"),
        ),
        domains=("northwind.com", "contoso.co.uk", "acme-corp.com", "globex.io", "initech.us"),
        subjects=(
            "Proposal for {company}",
            "Meeting next week",
            "Invoice {n}",
            "Pricing question",
            "Contract renewal {year}",
            "Follow-up on our call",
            "Demo request",
            "Order #{n} shipped",
            "Quarterly business review",
            "Seats for the new team",
        ),
        greeting="Hi {name},",
        closing="Best regards,",
        reply_prefix="Re: ",
        wide=False,
        weight=0.40,
    ),
    _Language(
        charsets=(("UTF-8", "utf-8", "base64"),),
        words=(
            "naïve café Zürich São Paulo Kraków İstanbul résumé meeting contract pricing "
            "team délai crème Ørsted Łódź שלום תודה مرحبا شكرا προσφορά σύμβαση 👍 🙂 ✓ —"
        ),
        names=(
            ("Zoë Ørsted", "zoe.orsted"),
            ("Łukasz Wiśniewski", "lukasz.wisniewski"),
            ("Ayşe Yılmaz", "ayse.yilmaz"),
            ("Noa Ben-David", "noa.bendavid"),
            ("Γιώργος Παπαδόπουλος", "giorgos.p"),
            ("محمد العلي", "m.alali"),
        ),
        domains=("nordic-energy.dk", "wisla.pl", "anatolia.com.tr", "haifa-labs.co.il"),
        subjects=(
            "Café meeting in Zürich ☕",
            "Angebot / offer {n} ✓",
            "Προσφορά {n}",
            "עדכון חוזה {year}",
            "Kraków workshop — agenda",
            "Order {n} 👍",
        ),
        greeting="Hello {name},",
        closing="Kind regards —",
        reply_prefix="Re: ",
        wide=False,
        weight=0.15,
    ),
    _Language(
        charsets=(
            ("ISO-8859-1", "latin-1", "quoted-printable"),
            ("windows-1252", "cp1252", "quoted-printable"),
            ("windows-1252", "cp1252", "8bit"),
        ),
        words=(
            "Grüße Angebot über Straße Vertrag nächste Woche Bestellung Lieferung vielen "
            "Dank für Ihre Anfrage réunion façade déjà prochaine année très bientôt señor "
            "reunión mañana pedido envío Größe Kündigung Preisliste Rückfrage Termin "
            "bestätigen garçon Noël où à und die der le la el"
        ),
        names=(
            ("Jürgen Weiß", "juergen.weiss"),
            ("Françoise Lefèvre", "francoise.lefevre"),
            ("José Muñoz", "jose.munoz"),
            ("Björn Åkesson", "bjorn.akesson"),
            ("Günther Schäfer", "guenther.schaefer"),
            ("Inès Gaël", "ines.gael"),
        ),
        domains=("mueller-gmbh.de", "societe-lyon.fr", "madrid-sa.es", "wien-handel.at"),
        subjects=(
            "Angebot Nr. {n}",
            "Rückfrage zur Bestellung {n}",
            "Réunion de la semaine",
            "Devis {n} – façade",
            "Pedido {n} – envío mañana",
            "Vertragsverlängerung {year}",
        ),
        greeting="Guten Tag {name},",
        closing="Mit freundlichen Grüßen",
        reply_prefix="AW: ",
        wide=False,
        weight=0.17,
    ),
    _Language(
        charsets=(("KOI8-R", "koi8-r", "8bit"), ("KOI8-R", "koi8-r", "base64")),
        words=(
            "Здравствуйте коммерческое предложение договор встреча на следующей неделе цена "
            "заказ поставка спасибо пожалуйста подтвердите вложение компания клиент проект "
            "счёт вопрос время сроки оплата и в по мы вы наш ваш"
        ),
        names=(
            ("Ольга Смирнова", "olga.smirnova"),
            ("Дмитрий Иванов", "dmitry.ivanov"),
            ("Алексей Фёдоров", "alexey.fedorov"),
            ("Наталья Кузнецова", "natalia.k"),
        ),
        domains=("rostorg.ru", "sibir-trade.ru", "neva-group.ru"),
        subjects=(
            "Коммерческое предложение {n}",
            "Договор на {year} год",
            "Счёт {n}",
            "Встреча на следующей неделе",
            "Вопрос по заказу {n}",
        ),
        greeting="Здравствуйте, {name}!",
        closing="С уважением,",
        reply_prefix="Ответ: ",
        wide=False,
        weight=0.06,
    ),
    _Language(
        charsets=(("GB2312", "gb2312", "base64"), ("GBK", "gbk", "base64")),
        words=(
            "您好 报价 合同 会议 下周 产品 价格 订单 发货 谢谢 请 确认 附件 "
            "公司 客户 项目 我们 问题 时间 安排 付款 样品 质量 的 了 和 在"
        ),
        names=(
            ("王伟", "wang.wei"),
            ("李娜", "li.na"),
            ("张敏", "zhang.min"),
            ("刘洋", "liu.yang"),
        ),
        domains=("huaxin-tech.cn", "shenzhen-elec.com.cn", "163.com"),
        subjects=("报价单 {n}", "关于订单 {n} 的问题", "下周会议安排", "{year}年合同"),
        greeting="{name}，您好：",
        closing="此致 敬礼",
        reply_prefix="回复：",
        wide=True,
        weight=0.08,
    ),
    _Language(
        charsets=(("Shift_JIS", "shift_jis", "base64"), ("ISO-2022-JP", "iso2022_jp", "7bit")),
        words=(
            "お世話になっております 見積書 契約 会議 来週 製品 価格 注文 出荷 "
            "ありがとうございます 確認 添付 会社 お客様 案件 資料 日程 ご検討 "
            "よろしくお願いいたします の を に は"
        ),
        names=(
            ("田中 太郎", "taro.tanaka"),
            ("佐藤 花子", "hanako.sato"),
            ("鈴木 一郎", "ichiro.suzuki"),
            ("高橋 美咲", "misaki.takahashi"),
        ),
        domains=("tokyo-shoji.co.jp", "osaka-denki.jp", "nagoya-seiki.co.jp"),
        subjects=("お見積りの件（No.{n}）", "来週の打ち合わせについて", "{year}年度契約更新"),
        greeting="{name}様",
        closing="よろしくお願いいたします。",
        reply_prefix="Re: ",
        wide=True,
        weight=0.08,
    ),
    _Language(
        charsets=(("Big5", "big5", "base64"),),
        words=(
            "您好 報價 合約 會議 下週 產品 價格 訂單 出貨 謝謝 請 確認 附件 "
            "公司 客戶 專案 我們 問題 時間 安排 的 和"
        ),
        names=(("陳志明", "chen.zm"), ("林美玲", "lin.ml"), ("黃國華", "huang.gh")),
        domains=("taipei-trading.com.tw", "hsinchu-semi.com.tw"),
        subjects=("報價單 {n}", "關於訂單 {n}", "下週會議安排"),
        greeting="{name} 您好：",
        closing="敬祝 商祺",
        reply_prefix="回覆：",
        wide=True,
        weight=0.06,
    ),
)

_COMPANIES = ("Northwind", "Contoso", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay")
_MAILERS = (
    "Microsoft Outlook 16.0",
    "Apple Mail (2.3774.300.61.1.2)",
    "Mozilla Thunderbird 128.3.1",
    "Roundcube Webmail/1.6.9",
    "Foxmail 7.2.25.228[cn]",
)
_TIMEZONES = (0, 1, 2, -5, -8, 3, 8, 9, 5.5)
_ATTACHMENT_KINDS: tuple[tuple[str, str, bytes, float], ...] = (
    # (content type, extension, magic bytes, weight)
    ("application/pdf", "pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", 0.45),
    ("image/png", "png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 0.18),
    ("image/jpeg", "jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", 0.15),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "xlsx",
        b"PK\x03\x04\x14\x00\x06\x00",
        0.12,
    ),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "docx",
        b"PK\x03\x04\x14\x00\x06\x00",
        0.10,
    ),
)
_FILE_STEMS = ("Angebot", "Rechnung", "quote", "contract", "報價單", "見積書", "договор", "scan")


class _TextPool:
    """Pre-wrapped lines of one language's filler text; bodies are slices of it."""

    def __init__(self, language: _Language, rng: random.Random) -> None:
        width = 36 if language.wide else 72
        separator = "" if language.wide else " "
        stop = "。" if language.wide else "."
        vocabulary = language.words.split()
        lines: list[str] = []
        while sum(len(line) for line in lines) < 96_000:
            for _ in range(rng.randint(2, 5)):
                words = rng.choices(vocabulary, k=rng.randint(6, 16))
                sentence = separator.join(words) + stop
                if not language.wide:
                    sentence = sentence[:1].upper() + sentence[1:]
                lines.extend(_wrap(sentence, width, language.wide))
            lines.append("")
        self.lines = lines
        self._ends = list(accumulate(len(line) + 1 for line in lines))

    def text(self, rng: random.Random, chars: int) -> str:
        """About ``chars`` characters of whole lines from a random place (wrapping around)."""
        out: list[str] = []
        start = rng.randrange(len(self.lines))
        while chars > 0:
            base = self._ends[start - 1] if start else 0
            end = bisect_left(self._ends, base + chars, lo=start)
            end = min(end + 1, len(self.lines))
            out.extend(self.lines[start:end])
            chars -= self._ends[end - 1] - base
            start = 0
        return "\n".join(out)


def _wrap(sentence: str, width: int, wide: bool) -> list[str]:
    if wide:
        return [sentence[i : i + width] for i in range(0, len(sentence), width)]
    lines: list[str] = []
    current = ""
    for word in sentence.split(" "):
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        lines.append(current)
    return lines


def _encoded_words(text: str, charset: str, codec: str) -> str:
    """RFC 2047 B encoded-words of ``text``, each under 75 characters, folded; in UTF-8
    when ``codec`` cannot encode it (as mail clients do)."""
    if text.isascii():
        return text
    try:
        text.encode(codec)
    except UnicodeEncodeError:
        charset, codec = "UTF-8", "utf-8"
    words: list[str] = []
    chunk = ""
    for char in text:
        if len((chunk + char).encode(codec)) > 42:
            words.append(chunk)
            chunk = char
        else:
            chunk += char
    words.append(chunk)
    encoded = (base64.b64encode(w.encode(codec)).decode() for w in words)
    return "\n ".join(f"=?{charset}?B?{e}?=" for e in encoded)


def _address(display: str, email: str, charset: str, codec: str) -> str:
    if display.isascii():
        quoted = f'"{display}"' if any(c in display for c in "'.,") else display
        return f"{quoted} <{email}>"
    return f"{_encoded_words(display, charset, codec)} <{email}>"


def _transfer(data: bytes, encoding: str) -> bytes:
    if encoding == "base64":
        return base64.encodebytes(data)
    if encoding == "quoted-printable":
        return binascii.b2a_qp(data, istext=True)
    return data


@dataclass
class _Thread:
    subject: str
    language: _Language
    charset: tuple[str, str, str]
    contact: tuple[str, str]
    domain: str
    message_ids: list[str]


class _Generator:
    def __init__(self, seed: int, owner: str) -> None:
        self.rng = random.Random(seed)
        self.owner = owner
        self.owner_name = "Dana Seller"
        self.pools = {language: _TextPool(language, self.rng) for language in _LANGUAGES}
        self.threads: list[_Thread] = []
        self.id_tag = f"{self.rng.getrandbits(48):012x}"
        self.ratios: dict[tuple[_Language, tuple[str, str, str]], float] = {}

    def size(self) -> int:
        if self.rng.random() < _HUGE_SHARE:
            low, high = (math.log(size) for size in _HUGE_SIZES)
            return int(math.exp(self.rng.uniform(low, high)))
        drawn = self.rng.lognormvariate(_SIZE_MU, _SIZE_SIGMA)
        return int(min(max(drawn, MIN_SIZE), MAX_SIZE))

    def message(self, index: int, when: datetime) -> CorpusMessage:
        rng = self.rng
        target = self.size()
        reply_to: _Thread | None = None
        if self.threads and rng.random() < _REPLY_SHARE:
            # Replies cluster on recent conversations.
            recent = self.threads[-200:]
            reply_to = recent[-1 - min(int(rng.expovariate(0.05)), len(recent) - 1)]
        bulk = reply_to is None and rng.random() < _BULK_SHARE
        if reply_to is not None:
            thread = reply_to
        else:
            language = rng.choices(_LANGUAGES, weights=[lang.weight for lang in _LANGUAGES])[0]
            thread = _Thread(
                subject=rng.choice(language.subjects).format(
                    company=rng.choice(_COMPANIES), n=rng.randint(1000, 99999), year=when.year
                ),
                language=language,
                charset=rng.choice(language.charsets),
                contact=rng.choice(language.names),
                domain=rng.choice(language.domains),
                message_ids=[],
            )
            if not bulk:  # nobody answers a newsletter
                self.threads.append(thread)
        language = thread.language
        charset, codec, transfer = thread.charset
        domain = thread.domain
        display, local = thread.contact
        sender = f"{local}@{domain}"
        if bulk:
            display, sender = f"{rng.choice(_COMPANIES)} News", f"newsletter@{domain}"
        message_id = f"{self.id_tag}.{index}.{rng.getrandbits(32):08x}@{domain}"
        html = bulk or rng.random() < _PERSONAL_HTML_SHARE
        broken = rng.random() < _BROKEN_SHARE
        offset = timezone(timedelta(hours=rng.choice(_TIMEZONES)))

        subject = thread.subject
        if reply_to is not None:
            subject = language.reply_prefix + subject
        headers = self._trace_headers(when, domain, sender)
        headers += [
            f"From: {_address(display, sender, charset, codec)}",
            f"To: {_address(self.owner_name, self.owner, charset, codec)}",
        ]
        if rng.random() < 0.25:
            cc_display, cc_local = rng.choice(language.names)
            headers.append(f"Cc: {_address(cc_display, cc_local + '@' + domain, charset, codec)}")
        headers += [
            f"Subject: {_encoded_words(subject, charset, codec)}",
            f"Date: {format_datetime(when.astimezone(offset))}",
            f"Message-ID: <{message_id}>",
        ]
        if thread.message_ids:
            references = thread.message_ids[-10:]
            headers.append(f"In-Reply-To: <{references[-1]}>")
            headers.append("References: " + "\n ".join(f"<{ref}>" for ref in references))
        headers.append("MIME-Version: 1.0")
        if bulk:
            headers.append(f"List-Unsubscribe: <https://{domain}/u/{rng.getrandbits(64):x}>")
            headers.append("Precedence: bulk")
        else:
            headers.append(f"X-Mailer: {rng.choice(_MAILERS)}")
        thread.message_ids.append(message_id)

        header_bytes = sum(len(h) + 1 for h in headers)
        budget = max(target - header_bytes, 400)
        attachments: list[tuple[str, str, bytes]] = []
        if budget > _ATTACHMENT_THRESHOLD:
            body_budget = rng.randint(1_500, 6_000)
            attachments = self._attachments(budget - body_budget, rng.randint(1, 3))
            budget = body_budget
        elif budget > 8_000 and rng.random() < _SMALL_ATTACHMENT_SHARE:
            small = rng.randint(2_000, budget // 2)
            attachments = self._attachments(small, 1, calendar=rng.random() < 0.3)
            budget -= small

        greeting = language.greeting.format(name=self.owner_name.split()[0])
        # An HTML message spends its budget on the text part and an HTML part ~1.8x as big.
        text_budget = budget / (2.8 if html else 1.0) - 150
        text = self._text(thread, text_budget / self._bytes_per_char(thread), greeting, reply_to)
        if broken and codec != "utf-8":
            charset, codec = "UTF-8", "utf-8"  # declared UTF-8 below, bytes stay 8-bit
            body_codec = thread.charset[1] if thread.charset[1] != "ascii" else "latin-1"
            encoded_text = text.encode(body_codec, "replace")
        else:
            encoded_text = text.encode(codec, "replace")
        body = self._body(encoded_text, text, charset, codec, transfer, html, attachments, broken)
        raw = ("\n".join(headers) + "\n").encode("ascii") + body
        return CorpusMessage(
            message_id=message_id,
            received_at=when,
            seen=rng.random() < 0.8,
            charset=charset,
            html=html,
            attachments=len(attachments),
            raw=raw.replace(b"\n", b"\r\n"),
        )

    def _trace_headers(self, when: datetime, domain: str, sender: str) -> list[str]:
        rng = self.rng
        owner_domain = self.owner.rsplit("@", 1)[1]
        hops = [
            f"Received: from mx{rng.randint(1, 9)}.{domain} (mx.{domain} [203.0.113."
            f"{rng.randint(1, 254)}])\n\tby mail.{owner_domain} with ESMTPS id "
            f"{rng.getrandbits(40):x}\n\tfor <{self.owner}>; {format_datetime(when)}"
            for _ in range(rng.randint(1, 3))
        ]
        body_hash = base64.b64encode(rng.randbytes(32)).decode()
        signature = base64.b64encode(rng.randbytes(256)).decode()
        dkim = (
            f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain}; s=s1;\n"
            f"\th=from:to:subject:date:message-id; bh={body_hash};\n"
            "\tb=" + "\n\t  ".join(signature[i : i + 70] for i in range(0, len(signature), 70))
        )
        return [
            f"Return-Path: <{sender}>",
            *hops,
            dkim,
            f"Authentication-Results: mail.{owner_domain}; dkim=pass header.d={domain};"
            f"\n\tspf=pass smtp.mailfrom={domain}",
        ]

    def _bytes_per_char(self, thread: _Thread) -> float:
        """Encoded (charset, then transfer encoding) bytes per character of the language."""
        key = (thread.language, thread.charset)
        if key not in self.ratios:
            _, codec, transfer = thread.charset
            sample = "\n".join(self.pools[thread.language].lines[:400])
            self.ratios[key] = len(_transfer(sample.encode(codec), transfer)) / len(sample)
        return self.ratios[key]

    def _text(
        self, thread: _Thread, chars_budget: float, greeting: str, reply_to: _Thread | None
    ) -> str:
        language = thread.language
        chars = max(int(chars_budget), 60)
        pool = self.pools[language]
        # A reply is a short text of its own over the quoted conversation.
        own = min(chars, self.rng.randint(200, 1_500)) if reply_to is not None else chars
        parts = [greeting, "", pool.text(self.rng, own), "", language.closing, self.owner_name]
        if own < chars:
            quoted = pool.text(self.rng, chars - own)
            parts += ["", "> " + quoted.replace("\n", "\n> ")]
        return "\n".join(parts)

    def _attachments(
        self, budget: int, count: int, *, calendar: bool = False
    ) -> list[tuple[str, str, bytes]]:
        rng = self.rng
        if calendar:
            event = (
                "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//mailsync bench//EN\nMETHOD:REQUEST\n"
                f"BEGIN:VEVENT\nUID:{rng.getrandbits(64):x}\nSUMMARY:Call\n"
                + "DESCRIPTION:"
                + "x" * min(budget, 4000)
                + "\nEND:VEVENT\nEND:VCALENDAR\n"
            )
            return [("text/calendar; method=REQUEST", "invite.ics", event.encode())]
        found = []
        shares = [rng.random() + 0.2 for _ in range(count)]
        for share in shares:
            content_type, extension, magic, _ = rng.choices(
                _ATTACHMENT_KINDS, weights=[k[3] for k in _ATTACHMENT_KINDS]
            )[0]
            size = max(int(budget * share / sum(shares) / 1.37), 256)
            name = f"{rng.choice(_FILE_STEMS)}_{rng.randint(1, 999)}.{extension}"
            found.append((content_type, name, magic + rng.randbytes(size - len(magic))))
        return found

    def _body(
        self,
        encoded_text: bytes,
        text: str,
        charset: str,
        codec: str,
        transfer: str,
        html: bool,
        attachments: list[tuple[str, str, bytes]],
        broken: bool,
    ) -> bytes:
        rng = self.rng
        text_part = (
            f'Content-Type: text/plain; charset="{charset}"\n'
            f"Content-Transfer-Encoding: {transfer}\n\n"
        ).encode() + _transfer(encoded_text, transfer)
        body_part = text_part
        if html:
            paragraphs = "".join(
                f'<p style="margin:0 0 12px;font-family:Arial,sans-serif">{p}</p>\n'
                for p in text.split("\n\n")
            )
            markup = (
                f'<!DOCTYPE html>\n<html><head><meta charset="{charset}">\n'
                "<style>td{padding:4px 8px}.footer{color:#888;font-size:11px}</style></head>\n"
                f'<body><table width="100%" cellpadding="0"><tr><td>\n{paragraphs}'
                '</td></tr></table>\n<div class="footer">You receive this mail because ...'
                "</div></body></html>\n"
            )
            html_transfer = "base64" if transfer == "base64" else "quoted-printable"
            html_part = (
                f'Content-Type: text/html; charset="{charset}"\n'
                f"Content-Transfer-Encoding: {html_transfer}\n\n"
            ).encode() + _transfer(markup.encode(codec, "replace"), html_transfer)
            body_part = _multipart("alternative", [text_part, html_part], rng, broken=False)
        if not attachments:
            return body_part
        parts = [body_part]
        for content_type, name, blob in attachments:
            if name.isascii():
                disposition = f'attachment; filename="{name}"'
                type_name = f'name="{name}"'
            else:
                # RFC 2231 for the disposition, an RFC 2047 name= as Outlook also sends.
                disposition = f"attachment;\n filename*=UTF-8''{quote(name)}"
                type_name = f'name="{_encoded_words(name, "UTF-8", "utf-8")}"'
            parts.append(
                (
                    f"Content-Type: {content_type};\n {type_name}\n"
                    f"Content-Disposition: {disposition}\n"
                    "Content-Transfer-Encoding: base64\n\n"
                ).encode()
                + base64.encodebytes(blob)
            )
        return _multipart("mixed", parts, rng, broken=broken)


def _multipart(subtype: str, parts: list[bytes], rng: random.Random, *, broken: bool) -> bytes:
    boundary = f"----=_Part_{rng.getrandbits(64):016x}"
    out = [f'Content-Type: multipart/{subtype};\n boundary="{boundary}"\n\n'.encode()]
    out.append(b"This is a multi-part message in MIME format.\n")
    for part in parts:
        out.append(f"\n--{boundary}\n".encode())
        out.append(part)
    if not broken:  # a broken one lacks its closing boundary
        out.append(f"\n--{boundary}--\n".encode())
    return b"".join(out)


def generate(
    count: int, *, seed: int = DEFAULT_SEED, owner: str = "dana@example.test"
) -> Iterator[CorpusMessage]:
    """``count`` messages addressed to ``owner``, oldest first; same arguments, same bytes."""
    generator = _Generator(seed, owner)
    span = timedelta(days=730).total_seconds()
    start = CORPUS_END - timedelta(seconds=span)
    # Arrival times: uniform over the span, sorted, so gaps are exponential as in real mail.
    offsets = sorted(generator.rng.random() * span for _ in range(count))
    for index, offset in enumerate(offsets):
        when = (start + timedelta(seconds=offset)).replace(microsecond=0)
        yield generator.message(index, when)
