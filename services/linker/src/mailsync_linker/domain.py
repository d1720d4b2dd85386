"""The linker's identity rules as pure functions: how addresses compare and who on a message is
a customer (R12), and which identifiers name a message and its conversation (R11). No I/O
here; the rules of threading, linking and visibility have modules of their own
(`conversation`, `linking`, `visibility`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

from mailsync_contracts import normalize_email_address


@dataclass(frozen=True, slots=True)
class Address:
    """An email address as the linker compares it: the whole address lower-cased (R12).

    Domains arrive IDN-normalized from the contract; local parts are compared
    case-insensitively too, because every large provider treats them so and a CRM user types
    "Anna@" and "anna@" interchangeably.
    """

    email: str
    name: str | None = None

    @property
    def key(self) -> str:
        return address_key(self.email)


@functools.lru_cache(maxsize=65_536)
def address_key(email: str) -> str:
    """What two addresses are compared by (R12): the whole address lower-cased, its domain in
    ASCII (punycode) form, so `a@Bücher.example` and `A@xn--bcher-kva.example` are one.

    Cached: a poll names the same few hundred addresses over and over, and IDNA encoding
    was the largest cost of filing one."""
    try:
        return normalize_email_address(email).lower()
    except ValueError:  # not an address the contract accepts: compare it as written
        return email.strip().lower()


def match_keys(addresses: Iterable[str]) -> list[str]:
    """CRM addresses in the form mail participants arrive in: IDN domains in ASCII (punycode),
    the whole address lower-cased (R12). Text that is not an address matches nothing."""
    keys: list[str] = []
    for address in addresses:
        try:
            keys.append(normalize_email_address(address).lower())
        except ValueError:
            continue
    return list(dict.fromkeys(keys))


@dataclass(frozen=True, slots=True)
class Link:
    kind: str
    entity_id: str
    origin: str = "auto"


def external_participants(
    addresses: Iterable[Address], own_addresses: Iterable[str]
) -> list[Address]:
    """Participants minus the account's own addresses and colleagues, first mention wins (R12)."""
    excluded = {address_key(a) for a in own_addresses}
    seen: dict[str, Address] = {}
    for address in addresses:
        key = address.key
        if not key or key in excluded or key in seen:
            continue
        seen[key] = Address(key, address.name)
    return list(seen.values())


def message_key(message_id: str | None, raw_sha256: str) -> str:
    """A message's identity within an account: Message-ID when present, else its content.

    A blank Message-ID is no identity: keying on it would make every such message one."""
    normalized = _normalized_id(message_id)
    if normalized:
        return f"mid:{normalized}"
    return f"sha256:{raw_sha256}"


def _normalized_id(message_id: str | None) -> str:
    """RFC 5322 §3.6.4 msg-id without its angle brackets, compared case-insensitively."""
    if message_id is None:
        return ""
    return message_id.strip().removeprefix("<").removesuffix(">").strip().lower()


def referenced_ids(
    message_id: str | None, in_reply_to: str | None, references: Iterable[str]
) -> list[str]:
    """The Message-IDs that tie a message to a conversation, newest reference first (R11)."""
    ordered = [in_reply_to, *reversed(list(references)), message_id]
    normalized = (_normalized_id(m) for m in ordered)
    return list(dict.fromkeys(m for m in normalized if m))
