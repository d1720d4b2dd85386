"""Ingest's rules as pure functions: what may be connected, which account is a user's default,
how settings change, and how a fetched message is described on `mail.ingested.v1`.

Invariants:
- a user has at most one default account, and it is never a disconnected one (R3);
- a stored blocklist holds only canonical entries (`name@domain` or `@domain`, the domain
  lower-cased ASCII/IDNA, the local part as written), each at most once, compared
  case-insensitively (R9).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from mailsync_contracts import (
    AccountSettings,
    EmailAddress,
    IngestedAttachment,
    UpdateAccountSettingsData,
    normalize_email_address,
)
from mailsync_mime.parsing import ParsedMessage, Participant

Plan = Literal["growth", "premium", "ultimate"]

# R1: how many accounts a user may connect on each plan, and whether team accounts are allowed.
PLAN_ACCOUNT_LIMITS: dict[str, int] = {"growth": 1, "premium": 3, "ultimate": 5}
PLANS_WITH_TEAM_ACCOUNTS = frozenset({"premium", "ultimate"})


@dataclass(frozen=True, slots=True)
class Refusal:
    code: Literal["plan_limit", "invalid_settings", "duplicate", "auth_failed"]
    reason: str


def refuse_connect(
    plan: str, account_type: str, connected_accounts: int, imap_host: str, security: str
) -> Refusal | None:
    """Why a connect request cannot be accepted, or None (R1, and no plaintext off-machine)."""
    limit = PLAN_ACCOUNT_LIMITS.get(plan)
    if limit is None:
        return Refusal("invalid_settings", f"unknown plan {plan!r}")
    if account_type == "team" and plan not in PLANS_WITH_TEAM_ACCOUNTS:
        return Refusal("plan_limit", f"the {plan} plan allows personal accounts only")
    if connected_accounts >= limit:
        return Refusal(
            "plan_limit", f"the {plan} plan allows {limit} connected account(s) per user"
        )
    if security == "plain" and not is_loopback(imap_host):
        return Refusal(
            "invalid_settings", "unencrypted IMAP is only allowed to a server on this machine"
        )
    return None


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine: `localhost` (host names are case-insensitive, a
    trailing dot is the same name) or a loopback address, IPv4-mapped IPv6 included."""
    if host.lower().removesuffix(".") == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


# R3: the states in which an account still belongs to its user and may be their default.
KEEPS_ACCOUNT = frozenset({"active", "reauth_required"})


@dataclass(frozen=True, slots=True)
class UserAccount:
    """One of a user's accounts, as far as choosing their default is concerned (R3)."""

    account_id: str
    state: str
    is_default: bool
    connected_at: datetime


def current_default(accounts: Iterable[UserAccount]) -> str | None:
    """The user's default account, or None; a disconnected account is never the default."""
    return next(
        (a.account_id for a in accounts if a.is_default and a.state != "disconnected"), None
    )


def default_on_connect(accounts: Iterable[UserAccount], connecting_account_id: str) -> bool:
    """R3: an account being connected becomes the default when the user has no other default:
    their first account, or the first one after all others were disconnected."""
    others = (a for a in accounts if a.account_id != connecting_account_id)
    return current_default(others) is None


def successor_default(accounts: Iterable[UserAccount], leaving_account_id: str) -> str | None:
    """R3: when the default account is disconnected, the user's oldest remaining account
    (active or reauth_required) becomes the default; None when no such account remains.
    Accounts connected at the same instant are ordered by id, so replicas agree."""
    remaining = [
        a for a in accounts if a.account_id != leaving_account_id and a.state in KEEPS_ACCOUNT
    ]
    if not remaining:
        return None
    return min(remaining, key=lambda a: (a.connected_at, a.account_id)).account_id


# RFC 1035 §2.3.1 / RFC 5890: an ASCII (A-label) host name label, 1–63 characters.
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")

VISIBILITIES_BY_ACCOUNT_TYPE: dict[str, frozenset[str]] = {
    # R14: personal accounts are shared or private, team accounts shared or team.
    "personal": frozenset({"shared", "private"}),
    "team": frozenset({"shared", "team"}),
}


def _is_mail_domain(domain: str) -> bool:
    labels = domain.split(".")
    return len(domain) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)


def blocklist_entry(entry: str) -> str:
    """R9: the canonical form of one blocked address (`name@x.com`) or domain (`@x.com`).

    The domain is lower-cased and IDNA-encoded the way every mailsync address is
    (`normalize_email_address`), the local part is kept as written. Raises `ValueError` for
    anything else: display names, several addresses, domain literals, empty parts.
    """
    text = entry.strip()
    if text.startswith("@"):
        # The same normalisation as a full address, so "@Bücher.de" matches "x@bücher.de".
        domain = normalize_email_address(f"blocked{text}").rpartition("@")[2]
        if "@" in text[1:] or not _is_mail_domain(domain):
            raise ValueError("a blocked domain is @ followed by a host name")
        return f"@{domain}"
    address = normalize_email_address(text)
    local, _, domain = address.rpartition("@")
    # RFC 5321 §4.1.2: "@" belongs in a local part only inside quotes.
    if "@" in local and not (len(local) > 1 and local[0] == local[-1] == '"'):
        raise ValueError("a blocked address has one @ outside quotes")
    if not _is_mail_domain(domain):
        raise ValueError("a blocked address ends in @ and a host name")
    return address


def canonical_blocklist(entries: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """R9: (the usable entries in canonical form, each once and in the order given — compared
    case-insensitively —, the entries that are neither `name@domain` nor `@domain`)."""
    kept: dict[str, str] = {}
    unusable: list[str] = []
    for entry in entries:
        try:
            canonical = blocklist_entry(entry)
        except ValueError:
            unusable.append(entry)
            continue
        kept.setdefault(canonical.lower(), canonical)
    return tuple(kept.values()), tuple(unusable)


@dataclass(frozen=True, slots=True)
class SettingsChange:
    """The account's settings after an update, and why any part of the update was not
    applied (in words for people; they may quote the offending input)."""

    settings: AccountSettings
    not_applied: tuple[str, ...] = ()


def merge_settings(
    current: AccountSettings, update: UpdateAccountSettingsData, account_type: str
) -> SettingsChange:
    """Apply an `update_settings` command: every non-null field replaces the stored one.

    Unusable parts are dropped and the rest applied, rather than refusing the command: a
    blocklist entry that is not `name@domain`/`@domain` is left out of the list (R9), and a
    default visibility the account type does not have (R14) leaves the stored one. The
    published settings are the effective ones, so the CRM sees what was kept.
    """
    changes: dict[str, object] = {}
    not_applied: list[str] = []
    if update.sync_scope is not None:
        changes["sync_scope"] = update.sync_scope
    if update.history_days is not None:
        changes["history_days"] = update.history_days
    if update.mirror_archive is not None:
        changes["mirror_archive"] = update.mirror_archive
    if update.mirror_delete is not None:
        changes["mirror_delete"] = update.mirror_delete
    if update.default_visibility is not None:
        allowed = VISIBILITIES_BY_ACCOUNT_TYPE.get(account_type, frozenset())
        if update.default_visibility in allowed:
            changes["default_visibility"] = update.default_visibility
        else:
            not_applied.append(
                f"visibility {update.default_visibility!r} is not one of a {account_type}"
                f" account's ({', '.join(sorted(allowed))})"
            )
    if update.blocklist is not None:
        blocklist, unusable = canonical_blocklist(update.blocklist)
        changes["blocklist"] = blocklist
        not_applied += [
            f"blocklist entry {entry!r} is neither name@domain nor @domain" for entry in unusable
        ]
    # model_validate, not model_copy: the merged settings are checked like any input.
    merged = AccountSettings.model_validate({**dict(current), **changes})
    return SettingsChange(merged, tuple(not_applied))


def connected_count(accounts: Sequence[UserAccount]) -> int:
    """R1: the accounts that count against the plan limit (every one not disconnected)."""
    return sum(1 for a in accounts if a.state != "disconnected")


def contract_addresses(
    participants: Iterable[Participant], problems: list[str]
) -> tuple[EmailAddress, ...]:
    """Participants the contract accepts; an unusable address is reported, not fatal (R10)."""
    accepted: list[EmailAddress] = []
    for participant in participants:
        try:
            accepted.append(EmailAddress(email=participant.email, name=participant.name))
        except ValueError:
            problems.append(f"unusable address {participant.email!r}")
    return tuple(accepted)


def contract_attachments(parsed: ParsedMessage) -> tuple[IngestedAttachment, ...]:
    return tuple(
        IngestedAttachment(
            filename=a.filename, content_type=a.content_type, size=a.size, content_id=a.content_id
        )
        for a in parsed.attachments
    )
