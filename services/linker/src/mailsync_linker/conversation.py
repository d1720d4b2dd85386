"""Which conversation a message belongs to (R11), as pure rules.

A message joins the thread that already knows one of its Message-IDs (its own, In-Reply-To,
References) or its provider thread id. Failing that, it joins a recent thread of the same
account with the same normalized subject that shares at least two participants with it
(everyone counts here, the account's own address too: a one-to-one exchange has exactly two).
The fallback is bounded in time, because "Meeting" or "Invoice" recur between the same
people for unrelated reasons; within `SUBJECT_FALLBACK_WINDOW` of the thread's messages a
repeated subject is taken to be the same conversation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

SUBJECT_FALLBACK_WINDOW = timedelta(days=30)
SHARED_PARTICIPANTS_FOR_FALLBACK = 2

# Reply and forward markers in the languages mail is written in, with optional counters
# ("Re[2]:", "RE^3:") and full-width colons (CJK mailers): RFC 5322 §3.6.5 names only "Re:",
# real mailers translate it.
_MARKERS = (
    "re",
    "fw",
    "fwd",
    "aw",  # German Antwort
    "wg",  # German Weitergeleitet
    "sv",  # Scandinavian svar
    "vs",  # Finnish vastaus
    "vl",  # Finnish välitetty
    "antw",  # Dutch
    "doorst",  # Dutch doorgestuurd
    "tr",  # French transféré
    "ref",
    "rv",  # Spanish reenviado
    "enc",  # Portuguese encaminhado
    "res",  # Portuguese resposta
    "odp",  # Polish odpowiedź
    "pd",  # Polish przekazanie dalej
    "rif",  # Italian riferimento
    "παρ",  # Greek
    "απ",
    "ответ",  # Russian
    "отв",
    "пересл",
    "回复",  # Chinese (simplified)
    "回覆",  # Chinese (traditional)
    "答复",
    "转发",
    "轉寄",
    "转寄",
    "返信",  # Japanese
    "転送",
    "회신",  # Korean
    "전달",
)
_PREFIX = re.compile(
    r"^\s*(?:\[[^\]]{0,40}\]\s*)*(?:"
    + "|".join(sorted((re.escape(m) for m in _MARKERS), key=len, reverse=True))
    + r")\s*(?:\[\d+\]|\^\d+|\(\d+\))?\s*[:：]\s*",
    re.IGNORECASE,
)
_SPACE = re.compile(r"\s+")


def subject_key(subject: str) -> str:
    """The subject without reply/forward markers and list tags, case- and space-folded, as
    two messages of one conversation share it: "RE: AW: [ext] Quote" → "quote"."""
    rest = subject
    while True:
        stripped = _PREFIX.sub("", rest, count=1)
        if stripped == rest:
            break
        rest = stripped
    rest = re.sub(r"^\s*(?:\[[^\]]{0,40}\]\s*)+", "", rest)
    return _SPACE.sub(" ", rest).strip().casefold()


@dataclass(frozen=True, slots=True)
class ThreadCandidate:
    """A recent thread of the same account with the same subject key."""

    thread_id: UUID
    participants: frozenset[str]
    first_message_at: datetime | None
    last_message_at: datetime | None


def thread_by_subject(
    candidates: Iterable[ThreadCandidate], participants: Iterable[str], sent_at: datetime | None
) -> UUID | None:
    """R11 fallback: the candidate sharing at least two participants with the message and
    within the window of its messages; the most recently active one when several qualify.

    A message without a date, or a thread without dated messages, is never matched this way:
    the window cannot be checked, and guessing would merge unrelated conversations."""
    if sent_at is None:
        return None
    people = set(participants)
    best: ThreadCandidate | None = None
    for candidate in candidates:
        if len(people & candidate.participants) < SHARED_PARTICIPANTS_FOR_FALLBACK:
            continue
        if candidate.first_message_at is None or candidate.last_message_at is None:
            continue
        if not (
            candidate.first_message_at - SUBJECT_FALLBACK_WINDOW
            <= sent_at
            <= candidate.last_message_at + SUBJECT_FALLBACK_WINDOW
        ):
            continue
        if best is None or (best.last_message_at or sent_at) < candidate.last_message_at:
            best = candidate
    return best.thread_id if best else None


def provider_thread_key(provider_thread_id: str | None) -> str | None:
    """How a provider's thread id (Gmail X-GM-THRID) is remembered beside Message-IDs."""
    if not provider_thread_id or not provider_thread_id.strip():
        return None
    return f"thread:{provider_thread_id.strip()}"


def conversation_keys(referenced: Sequence[str], provider_thread_id: str | None) -> list[str]:
    """Everything a message's thread is found by, most specific first: the provider's own
    thread id when there is one, then the referenced Message-IDs (R11)."""
    provider = provider_thread_key(provider_thread_id)
    return [provider, *referenced] if provider else list(referenced)
