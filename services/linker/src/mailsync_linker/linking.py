"""What a thread links to (R12, R13), as pure rules.

Persons and organizations follow from the participants: they are recomputed whenever the
thread or the CRM changes, so a person created after the mail arrived still gets it (the
order records arrive in does not change the outcome). Deals, leads and projects are a
decision taken when mail arrives, never afterwards:

- only for owners in automatic linking mode;
- per kind, at most one item (one deal, one lead, one project);
- candidates are the open, unarchived items of the matched persons that the linker knew
  before the thread began, so an item created later never pulls old mail in;
- exactly one candidate links; several ask the owner to choose (once per set of
  candidates); none leaves the thread with its persons and organizations;
- a kind the user linked or unlinked by hand is left alone by automation for good.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from typing import Literal

from mailsync_linker.domain import Link

ITEM_KINDS: tuple[str, ...] = ("deal", "lead", "project")
PERSON_KINDS: tuple[str, ...] = ("person", "organization")

LinkingMode = Literal["automatic", "manual"]


@dataclass(frozen=True, slots=True)
class ItemCandidate:
    """An item a matched person is on, as the read model knows it."""

    kind: str
    item_id: str
    title: str | None


@dataclass(frozen=True, slots=True)
class ItemDecision:
    """What automation does for one kind: link one item, ask for a choice, or nothing."""

    kind: str
    link: ItemCandidate | None = None
    choose_between: tuple[ItemCandidate, ...] = ()


def person_links(
    participants: Iterable[str],
    persons_by_email: Mapping[str, Iterable[str]],
    organization_of_person: Mapping[str, str | None],
    unlinked: Set[tuple[str, str]] = frozenset(),
) -> list[Link]:
    """Each matched person and their organization (R12), except what a user unlinked."""
    links: dict[tuple[str, str], Link] = {}
    for participant in participants:
        for person_id in sorted(persons_by_email.get(participant, ())):
            if ("person", person_id) not in unlinked:
                links.setdefault(("person", person_id), Link("person", person_id))
            organization_id = organization_of_person.get(person_id)
            if organization_id and ("organization", organization_id) not in unlinked:
                links.setdefault(
                    ("organization", organization_id), Link("organization", organization_id)
                )
    return list(links.values())


def decide_items(
    mode: LinkingMode,
    candidates: Iterable[ItemCandidate],
    linked_kinds: Set[str],
    manual_kinds: Set[str],
    asked: Mapping[str, frozenset[str]],
) -> list[ItemDecision]:
    """R13 for a thread a message just arrived in.

    `linked_kinds`: kinds the thread already has an item of (later messages inherit it);
    `manual_kinds`: kinds a user linked or unlinked by hand; `asked`: per kind, the item ids
    the owner was last asked to choose between (not asked again for the same set)."""
    if mode != "automatic":
        return []
    by_kind: dict[str, dict[str, ItemCandidate]] = {}
    for candidate in candidates:
        by_kind.setdefault(candidate.kind, {})[candidate.item_id] = candidate
    decisions: list[ItemDecision] = []
    for kind in ITEM_KINDS:
        found = by_kind.get(kind)
        if not found or kind in linked_kinds or kind in manual_kinds:
            continue
        ordered = tuple(found[item_id] for item_id in sorted(found))
        if len(ordered) == 1:
            decisions.append(ItemDecision(kind, link=ordered[0]))
        elif asked.get(kind) != frozenset(found):
            decisions.append(ItemDecision(kind, choose_between=ordered))
    return decisions


def replace_item_of_kind(current: Iterable[Link], new: Link) -> tuple[list[Link], list[Link]]:
    """R13 "a thread links to at most one deal" (one lead, one project): linking `new` by
    hand removes the other item of its kind. Returns (kept, removed)."""
    kept: list[Link] = []
    removed: list[Link] = []
    for link in current:
        if link.kind == new.kind and link.kind in ITEM_KINDS and link.entity_id != new.entity_id:
            removed.append(link)
        else:
            kept.append(link)
    return kept, removed
