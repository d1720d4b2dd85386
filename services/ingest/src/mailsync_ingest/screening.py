"""Blocklist screening (R9): which synced messages stay out of the CRM.

A user blocks addresses (`name@x.com`) and whole domains (`@x.com`) to keep private or internal
mail out of the CRM. A message is screened only when its sender is blocked and no other
participant (To/Cc, ignoring the account's own addresses) is unblocked: one customer on a
thread is reason enough to keep it.

Invariants:
- addresses are compared case-insensitively, local part included, and domains IDN-normalised
  through `normalize_email_address` as everywhere else (`Ole@BÜCHER.de` is
  `ole@xn--bcher-kva.de`);
- `@x.com` blocks exactly the domain x.com, not its subdomains: screening silently hides mail,
  so a rule blocks only what its entry says. Subdomains are often other parties (a customer's
  `eu.x.com` is not a vendor's newsletter domain), and a user who means them can list them;
- no sender, an unreadable sender, or an empty blocklist never screens a message; an entry or a
  recipient that is not an address is ignored rather than an error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mailsync_contracts import normalize_email_address

_DOMAIN_MARK = "@"


@dataclass(frozen=True, slots=True)
class Blocklist:
    """Blocked addresses (`ole@x.com`) and domains (`x.com`), normalised and lower-cased."""

    addresses: frozenset[str]
    domains: frozenset[str]

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> Blocklist:
        """The blocklist of an account's settings: `name@x.com` or `@x.com`, as the user typed
        them; an entry that is neither (no domain, spaces, an invalid IDN) is skipped."""
        addresses: set[str] = set()
        domains: set[str] = set()
        for entry in entries:
            text = entry.strip()
            if text.startswith(_DOMAIN_MARK):
                _add_if_usable(domains, _comparable_domain(text.removeprefix(_DOMAIN_MARK)))
            else:
                _add_if_usable(addresses, _comparable_address(text))
        return cls(frozenset(addresses), frozenset(domains))

    def blocking_entry(self, address: str) -> str | None:
        """The entry that blocks `address` (`ole@x.com` or `@x.com`), or None."""
        comparable = _comparable_address(address)
        if comparable is None:
            return None
        if comparable in self.addresses:
            return comparable
        domain = comparable.rpartition("@")[2]
        return f"@{domain}" if domain in self.domains else None

    def blocks(self, address: str) -> bool:
        return self.blocking_entry(address) is not None


def _add_if_usable(entries: set[str], comparable: str | None) -> None:
    if comparable is not None:
        entries.add(comparable)


def _comparable_address(address: str) -> str | None:
    """`address` as R9 compares it: normalised, then lower-cased whole; None if unusable."""
    try:
        return normalize_email_address(address).lower()
    except ValueError:
        return None


def _comparable_domain(domain: str) -> str | None:
    """A domain as `_comparable_address` spells it after the `@`; None if unusable."""
    if "@" in domain:
        return None
    address = _comparable_address(f"blocked@{domain}")
    return None if address is None else address.rpartition("@")[2]


def screening_reason(
    sender: str | None,
    recipients: Iterable[str],
    own_addresses: Iterable[str],
    blocklist: Blocklist,
) -> str | None:
    """Why R9 screens a message from `sender` to `recipients` (To and Cc), or None to keep it.

    The account's own addresses do not count as participants either way, so a colleague-only
    thread from a blocked internal domain is screened, while one unblocked customer in Cc keeps
    the whole message.
    """
    if sender is None:
        return None
    blocked_by = blocklist.blocking_entry(sender)
    if blocked_by is None:
        return None
    others = _other_participants(recipients, own_addresses)
    if any(not blocklist.blocks(participant) for participant in others):
        return None
    reason = f"sender {sender.strip()} is blocked ({blocked_by})"
    return f"{reason}, and so is every other participant" if others else reason


def _other_participants(recipients: Iterable[str], own_addresses: Iterable[str]) -> list[str]:
    """Recipients that are addresses and not the account's own; unreadable ones (such as an
    empty `undisclosed-recipients:;` group) name nobody who could be unblocked."""
    own = {_comparable_address(address) for address in own_addresses}
    comparable = (_comparable_address(recipient) for recipient in recipients)
    return [address for address in comparable if address is not None and address not in own]
