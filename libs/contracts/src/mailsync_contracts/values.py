"""Value types shared by several event families.

Invariants:
- an `EmailAddress.email` has a non-empty local part kept exactly as written (local parts are
  case-sensitive by RFC 5321 §2.4, and rewriting them could change the mailbox) and a domain
  that is lower-cased and, when internationalised, in its ASCII (punycode) form, so the same
  mailbox written two ways compares equal with `match_key`;
- a `RawMessageRef` names a stored raw message by the lower-case hex sha256 of its bytes
  (claim-check: raw MIME never travels in a record).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from mailsync_contracts.envelope import ContractModel

EntityKind = Literal["person", "organization", "deal", "lead", "project", "user", "team"]
"""Every kind of CRM record mailsync hears about on `crm.entities.v1`."""

LinkKind = Literal["person", "organization", "deal", "lead", "project"]
"""The CRM items a thread can be linked to (R12, R13)."""

ChoosableKind = Literal["deal", "lead", "project"]
"""The items a thread links to at most one of, which may need the user's choice (R13)."""

Visibility = Literal["shared", "private", "team"]
"""R14: personal accounts use shared/private, team accounts shared/team."""

AccountType = Literal["personal", "team"]

LinkOrigin = Literal["auto", "manual"]


# What str.isspace() calls whitespace, plus the C0 controls and DEL: one regex pass rather than
# a Python loop over every character of every address the services validate.
_WHITESPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")


def normalize_email_address(address: str) -> str:
    """`local@domain` with the domain lower-cased and IDNA-encoded, the local part untouched.

    IDNA uses Python's codec (IDNA 2003 with nameprep, so "Straße.de" becomes "strasse.de"):
    the contract depends on pydantic alone, and every side normalises through this function,
    which is what makes comparisons agree. Raises `ValueError` for text that is not an address.
    """
    candidate = address.strip()
    if _WHITESPACE_OR_CONTROL.search(candidate):
        raise ValueError("an email address has no whitespace or control characters")
    # rpartition: a quoted local part may itself contain "@" (RFC 5321 §4.1.2).
    local, at, domain = candidate.rpartition("@")
    if not at or not local or not domain:
        raise ValueError("an email address is local-part@domain")
    # A trailing dot makes a domain absolute in DNS, it is the same mail domain.
    domain = domain.lower().removesuffix(".")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"the domain is not a valid (internationalised) domain: {exc}") from None
    return f"{local}@{ascii_domain}"


NormalizedEmail = Annotated[str, AfterValidator(normalize_email_address)]


class EmailAddress(ContractModel):
    """A participant of a message: its address (normalised, see module doc) and display name."""

    email: NormalizedEmail
    name: str | None = None

    @property
    def match_key(self) -> str:
        """What two addresses are compared by: the whole address, case-insensitively (R12)."""
        return self.email.lower()


class RawMessageRef(ContractModel):
    """Claim-check for a raw MIME message (or attachment) in the content-addressed raw store."""

    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    size: Annotated[int, Field(ge=0)]


class EntityLink(ContractModel):
    """A thread's link to a CRM item, and whether automation or a user made it (R13)."""

    kind: LinkKind
    entity_id: str
    origin: LinkOrigin


class ItemRef(ContractModel):
    """A CRM item named without saying who linked it (e.g. the deal a send was made from)."""

    kind: LinkKind
    entity_id: str


class MailboxLocation(ContractModel):
    """Where a message sits in its account's mailbox, as IMAP names it.

    RFC 3501 §2.3.1.1: a UID is only meaningful together with the folder's UIDVALIDITY.
    """

    folder: str
    uidvalidity: Annotated[int, Field(ge=1)]
    uid: Annotated[int, Field(ge=1)]
