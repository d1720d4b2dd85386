"""Who may see and act on a thread (R2, R14–R16), as pure rules.

These functions are the definition; the read API's SQL implements the same predicates for
speed, and the property test holds the two to each other.

- A thread is managed (read in the inbox, archived, deleted, its visibility changed) by its
  account's owner, and for a team account by the account's members too (R2).
- `private` (personal accounts): the owner only. Not admins, not participants.
- `team` (team accounts): the account's members (and owner) only.
- `shared`: besides those who manage it, (a) a user whose own address is on the
  conversation sees it in their inbox (R16), and (b) a user who can see an item the thread is
  linked to sees it in that item's detail view and can open it from there (R14).
- Items: `company` is everyone in the company, `team` the owner and users sharing a team with
  the owner, `owner` the owner; admins see every item (but, per R14, no private mail).
  Persons and organizations carry no such setting in the CRM feed: they are `company` items.
- Nothing crosses companies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

VISIBILITIES_BY_ACCOUNT_TYPE: dict[str, frozenset[str]] = {
    "personal": frozenset({"shared", "private"}),
    "team": frozenset({"shared", "team"}),
}


def default_visibility(account_type: str, stamped: str | None) -> str:
    """R15: the account's default as it was when the mail was received; `shared` when unset.
    A stamp that does not fit the account type (e.g. `private` on a team inbox) falls back
    to the type's restricted choice rather than widening who sees the mail."""
    if stamped is not None and stamped in VISIBILITIES_BY_ACCOUNT_TYPE[account_type]:
        return stamped
    if stamped is None:
        return "shared"
    return "team" if account_type == "team" else "private"


def visibility_allowed(account_type: str, visibility: str) -> bool:
    return visibility in VISIBILITIES_BY_ACCOUNT_TYPE.get(account_type, frozenset())


@dataclass(frozen=True, slots=True)
class Viewer:
    """The acting user, with what their rights depend on."""

    company_id: str
    user_id: str
    is_admin: bool = False
    team_ids: frozenset[str] = frozenset()
    addresses: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ItemAccess:
    """A CRM item as visibility needs it; `owner_team_ids` are the teams of its owner."""

    kind: str
    item_id: str
    owner_user_id: str | None
    visible_to: str
    owner_team_ids: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ThreadAccess:
    """A thread as visibility needs it."""

    company_id: str
    owner_user_id: str
    account_type: str
    visibility: str
    member_user_ids: frozenset[str] = frozenset()
    participant_addresses: frozenset[str] = frozenset()
    items: tuple[ItemAccess, ...] = field(default_factory=tuple)


def can_see_item(viewer: Viewer, company_id: str, item: ItemAccess) -> bool:
    if viewer.company_id != company_id:
        return False
    if viewer.is_admin or item.owner_user_id == viewer.user_id:
        return True
    if item.visible_to == "company":
        return True
    if item.visible_to == "team":
        return bool(viewer.team_ids & item.owner_team_ids)
    return False


def manages(viewer: Viewer, thread: ThreadAccess) -> bool:
    """R2: the owner, and for a team account its members, manage the thread's mail."""
    if viewer.company_id != thread.company_id:
        return False
    if viewer.user_id == thread.owner_user_id:
        return True
    return thread.account_type == "team" and viewer.user_id in thread.member_user_ids


def in_inbox(viewer: Viewer, thread: ThreadAccess) -> bool:
    """R16: whether the thread belongs in the viewer's Sales Inbox (archived or not)."""
    if manages(viewer, thread):
        return True
    return (
        viewer.company_id == thread.company_id
        and thread.visibility == "shared"
        and bool(viewer.addresses & thread.participant_addresses)
    )


def in_item_history(viewer: Viewer, thread: ThreadAccess, item: ItemAccess) -> bool:
    """R14: whether the thread shows in `item`'s detail view for the viewer (it must be one
    of the thread's linked items)."""
    linked = {(i.kind, i.item_id) for i in thread.items}
    if (item.kind, item.item_id) not in linked or not can_see_item(viewer, thread.company_id, item):
        return False
    return thread.visibility == "shared" or manages(viewer, thread)


def can_open(viewer: Viewer, thread: ThreadAccess) -> bool:
    """Whether the conversation view may show the thread to the viewer: from their inbox, or
    from the detail view of an item they can see."""
    return in_inbox(viewer, thread) or any(
        in_item_history(viewer, thread, item) for item in thread.items
    )
