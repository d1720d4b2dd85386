"""Ingest's rules as pure functions: what may be connected, and how a fetched message is
described on `mail.ingested.v1`."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from mailsync_contracts import EmailAddress, IngestedAttachment
from mailsync_ingest.parsing import ParsedMessage, Participant

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
