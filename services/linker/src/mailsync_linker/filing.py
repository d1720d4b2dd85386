"""Filing mail into conversations and linking them to the CRM (R8, R11–R13, R15).

One use case for everything that brings a message into a mailbox: ingest's
`mail.message.ingested` and outbound's `mail.message.sent`. It takes a batch — the consumer
hands over hundreds of records at a time — and does per batch what would otherwise be a
dozen round trips per message: read what is known in a few set-based queries, decide in
memory message by message (a reply later in the same batch finds the thread an earlier
message of the batch created), write in a few statements, and stage one `mail.thread.updated`
per thread touched.

Invariants:
- idempotent: a message already filed for an account (same Message-ID, or same raw content
  when it has none) changes nothing but its mailbox places; ids of new threads and messages
  are derived from their natural keys, so a replay produces the same ones;
- a message a user deleted in the CRM is never filed again for that account (R18);
- one email in two mailboxes is one `messages` row with a membership per account.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from mailsync_contracts import (
    LinkCandidate,
    LinkChoiceNeededData,
    ThreadLinkChoiceNeeded,
    ThreadUpdated,
    ThreadUpdatedData,
)
from mailsync_contracts.topics import THREADS
from mailsync_linker import repository
from mailsync_linker.conversation import ThreadCandidate, subject_key, thread_by_subject
from mailsync_linker.domain import Address, Link
from mailsync_linker.linking import (
    ITEM_KINDS,
    PERSON_KINDS,
    ItemCandidate,
    LinkingMode,
    decide_items,
    person_links,
    replace_item_of_kind,
)
from mailsync_linker.repository import AccountFacts, Location, MessageRow
from mailsync_platform.database import DbConnection
from mailsync_platform.outbox import Publishable, stage_many

ThreadReason = str  # "new_message" | "links_changed" | "visibility_changed"


@dataclass(frozen=True, slots=True)
class Arrival:
    """One message arriving in one account's mailbox."""

    account: AccountFacts
    visibility: str
    message: MessageRow
    location: Location | None
    conversation_keys: tuple[str, ...]
    participants: tuple[Address, ...]
    outgoing: bool
    seen: bool
    related_items: tuple[tuple[str, str], ...] = ()

    @property
    def account_id(self) -> str:
        return self.account.account_id

    @property
    def key(self) -> tuple[str, str]:
        return (self.account.account_id, self.message.message_key)


def thread_id_for(account_id: str, message_key: str) -> UUID:
    """A new thread's id, from the account and the message that started it (replay-safe)."""
    return uuid5(NAMESPACE_URL, f"mailsync-thread:{account_id}:{message_key}")


def message_uid_for(account_id: str, message_key: str) -> UUID:
    """The id the read API and thread commands use for an account's copy of a message."""
    return uuid5(NAMESPACE_URL, f"mailsync-message:{account_id}:{message_key}")


@dataclass
class Outcome:
    """What a batch changed: threads to publish (with why) and choices to ask for."""

    reasons: dict[UUID, ThreadReason] = field(default_factory=dict)
    choices: list[tuple[UUID, tuple[ItemCandidate, ...]]] = field(default_factory=list)

    def touch(self, thread_id: UUID, reason: ThreadReason) -> None:
        # A new message is the stronger news: it is what the inbox shows first.
        if self.reasons.get(thread_id) != "new_message":
            self.reasons[thread_id] = reason


async def file_arrivals(conn: DbConnection, arrivals: Sequence[Arrival]) -> None:
    """File a batch of arrivals (in order) and stage what changed."""
    if not arrivals:
        return
    outcome = Outcome()
    await repository.save_accounts(conn, list({a.account_id: a.account for a in arrivals}.values()))
    await repository.insert_messages(conn, [a.message for a in arrivals])
    await repository.record_locations(conn, [a.location for a in arrivals if a.location])
    pairs = list({a.key for a in arrivals})
    deleted = await repository.deleted_keys(conn, pairs)
    filed = await repository.filed_keys(conn, pairs)
    fresh = [a for a in arrivals if a.key not in deleted and a.key not in filed]
    placed = await _file_into_threads(conn, fresh, outcome)
    by_company: dict[str, set[UUID]] = defaultdict(set)
    for arrival in fresh:
        by_company[arrival.account.company_id].add(placed[arrival.key])
    for company_id, thread_ids in by_company.items():
        await relink(conn, company_id, sorted(thread_ids), outcome, new_mail=True)
    await publish(conn, outcome)


async def _file_into_threads(
    conn: DbConnection, arrivals: Sequence[Arrival], outcome: Outcome
) -> dict[tuple[str, str], UUID]:
    """Choose (or start) each arrival's thread and write memberships; returns the thread of
    each (account, message key)."""
    if not arrivals:
        return {}
    known = await repository.threads_by_conversation_key(
        conn, list({(a.account_id, k) for a in arrivals for k in a.conversation_keys})
    )
    candidates = await repository.subject_candidates(
        conn, list({(a.account_id, subject_key(a.message.subject)) for a in arrivals})
    )
    user_addresses = await _user_addresses(conn, {a.account.company_id for a in arrivals})
    placed: dict[tuple[str, str], UUID] = {}
    new_threads: dict[UUID, repository.NewThread] = {}
    memberships: list[repository.Membership] = []
    keys: list[tuple[str, str, UUID]] = []
    participants: list[repository.Participant] = []
    incoming_threads: list[UUID] = []
    for arrival in arrivals:
        if arrival.key in placed:
            continue  # the same message twice in one batch
        account, message = arrival.account, arrival.message
        subject = subject_key(message.subject)
        people = [p.key for p in arrival.participants if p.key]
        thread_id = _first_known(known, account.account_id, arrival.conversation_keys)
        if thread_id is None and subject:
            thread_id = thread_by_subject(
                candidates.get((account.account_id, subject), ()), people, message.sent_at
            )
        if thread_id is None:
            thread_id = thread_id_for(account.account_id, message.message_key)
            new_threads[thread_id] = repository.NewThread(
                thread_id,
                account.company_id,
                account.account_id,
                account.owner_user_id,
                account.account_type,
                message.subject,
                subject,
                arrival.visibility,
            )
        placed[arrival.key] = thread_id
        for key in arrival.conversation_keys:
            known.setdefault((account.account_id, key), thread_id)
            keys.append((account.account_id, key, thread_id))
        if subject:
            _remember_candidate(candidates, account.account_id, subject, thread_id, people, message)
        memberships.append(
            repository.Membership(
                account.account_id,
                message.message_key,
                message_uid_for(account.account_id, message.message_key),
                thread_id,
                account.company_id,
                message.sent_at,
                arrival.outgoing,
                unread=not (arrival.seen or arrival.outgoing),
            )
        )
        colleagues = user_addresses.get(account.company_id, set())
        own = account.email
        participants.extend(
            repository.Participant(
                thread_id,
                account.company_id,
                p.key,
                p.name,
                external=p.key != own and p.key not in colleagues,
            )
            for p in arrival.participants
            if p.key
        )
        if not arrival.outgoing:
            incoming_threads.append(thread_id)
        outcome.touch(thread_id, "new_message")
    await repository.create_threads(conn, list(new_threads.values()))
    await repository.add_memberships(conn, memberships)
    await repository.add_conversation_keys(conn, keys)
    await repository.add_participants(conn, participants)
    await repository.refresh_threads(conn, list(set(placed.values())), incoming_threads)
    await _link_related_items(conn, arrivals, placed)
    return placed


def _first_known(
    known: dict[tuple[str, str], UUID], account_id: str, keys: Iterable[str]
) -> UUID | None:
    for key in keys:
        thread_id = known.get((account_id, key))
        if thread_id is not None:
            return thread_id
    return None


def _remember_candidate(
    candidates: dict[tuple[str, str], list[ThreadCandidate]],
    account_id: str,
    subject: str,
    thread_id: UUID,
    people: list[str],
    message: MessageRow,
) -> None:
    """Make a thread filed earlier in this batch a subject-fallback candidate for later
    messages of the batch, as it will be for later batches."""
    found = candidates.setdefault((account_id, subject), [])
    for index, candidate in enumerate(found):
        if candidate.thread_id == thread_id:
            dates = [d for d in (candidate.first_message_at, message.sent_at) if d]
            ends = [d for d in (candidate.last_message_at, message.sent_at) if d]
            found[index] = ThreadCandidate(
                thread_id,
                candidate.participants | frozenset(people),
                min(dates) if dates else None,
                max(ends) if ends else None,
            )
            return
    found.append(ThreadCandidate(thread_id, frozenset(people), message.sent_at, message.sent_at))


async def _link_related_items(
    conn: DbConnection, arrivals: Sequence[Arrival], placed: dict[tuple[str, str], UUID]
) -> None:
    """A message sent from an item's detail view belongs to that item: the sender chose it,
    so the link counts as theirs (R13: manual links win, and replace the thread's other item
    of that kind, as a link made by hand does)."""
    for arrival in arrivals:
        if not arrival.related_items:
            continue
        thread_id = placed[arrival.key]
        current = list((await repository.link_states(conn, [thread_id]))[thread_id].links)
        for kind, item_id in arrival.related_items:
            chosen = Link(kind, item_id, "manual")
            current, removed = replace_item_of_kind(current, chosen)
            current = [*current, chosen]
            await repository.remove_links(conn, [(thread_id, link) for link in removed])
            await repository.add_links(conn, arrival.account.company_id, [(thread_id, chosen)])
            await repository.record_manual(conn, thread_id, kind, None)


async def _user_addresses(conn: DbConnection, companies: Iterable[str]) -> dict[str, set[str]]:
    return {company: await repository.user_addresses(conn, company) for company in companies}


async def relink(
    conn: DbConnection,
    company_id: str,
    thread_ids: Sequence[UUID],
    outcome: Outcome,
    *,
    new_mail: bool,
) -> None:
    """Bring the threads' person and organization links in line with their participants and
    the CRM (R12); with `new_mail`, also take R13's decisions about deals, leads, projects."""
    if not thread_ids:
        return
    states = await repository.thread_states(conn, thread_ids)
    link_states = await repository.link_states(conn, thread_ids)
    participants = await repository.external_participants_of(conn, thread_ids)
    emails = sorted({e for found in participants.values() for e in found})
    persons = await repository.persons_by_email(conn, company_id, emails)
    person_ids = sorted({p for ids in persons.values() for p in ids})
    organizations = await repository.organizations_of_persons(conn, company_id, person_ids)
    modes: dict[str, str] = {}
    items: dict[str, list[tuple[ItemCandidate, datetime]]] = {}
    if new_mail:
        owners = sorted({s.owner_user_id for s in states.values()})
        modes = await repository.linking_modes(conn, company_id, owners)
        items = await repository.open_items_of_persons(conn, company_id, person_ids)
    added: list[tuple[UUID, Link]] = []
    removed: list[tuple[UUID, Link]] = []
    choices: list[tuple[UUID, str, Sequence[str]]] = []
    for thread_id in thread_ids:
        state, links = states.get(thread_id), link_states.get(thread_id)
        if state is None or links is None:
            continue
        wanted = person_links(
            participants.get(thread_id, ()), persons, organizations, links.unlinked
        )
        current_auto = {
            (lk.kind, lk.entity_id)
            for lk in links.links
            if lk.kind in PERSON_KINDS and lk.origin == "auto"
        }
        present = {(lk.kind, lk.entity_id) for lk in links.links}
        wanted_keys = {(lk.kind, lk.entity_id) for lk in wanted}
        thread_added = [(thread_id, lk) for lk in wanted if (lk.kind, lk.entity_id) not in present]
        thread_removed = [
            (thread_id, Link(kind, entity_id))
            for kind, entity_id in sorted(current_auto - wanted_keys)
        ]
        if new_mail:
            matched = {p for e in participants.get(thread_id, ()) for p in persons.get(e, ())}
            item_links, asked = _decide_items(
                state, links, matched, items, modes.get(state.owner_user_id)
            )
            thread_added += [(thread_id, lk) for lk in item_links]
            for kind, candidates in asked:
                choices.append((thread_id, kind, [c.item_id for c in candidates]))
                outcome.choices.append((thread_id, candidates))
        if thread_added or thread_removed:
            outcome.touch(thread_id, "links_changed")
        added += thread_added
        removed += thread_removed
    await repository.add_links(conn, company_id, added)
    await repository.remove_links(conn, removed)
    await repository.save_choices(conn, choices)


def _decide_items(
    state: repository.ThreadState,
    links: repository.LinkState,
    matched_persons: set[str],
    items: dict[str, list[tuple[ItemCandidate, datetime]]],
    mode: str | None,
) -> tuple[list[Link], list[tuple[str, tuple[ItemCandidate, ...]]]]:
    """R13 for one thread, from the open items of its matched persons."""
    # An owner the CRM has not told us about yet links automatically, the CRM's default.
    linking: LinkingMode = "manual" if mode == "manual" else "automatic"
    # Only items known before the thread began: one created later never pulls old mail in.
    candidates = [
        candidate
        for person in sorted(matched_persons)
        for candidate, known_since in items.get(person, ())
        if known_since <= state.created_at
    ]
    decisions = decide_items(
        linking,
        candidates,
        {lk.kind for lk in links.links if lk.kind in ITEM_KINDS},
        links.manual_kinds,
        links.asked,
    )
    to_link = [Link(d.kind, d.link.item_id) for d in decisions if d.link is not None]
    to_ask = [(d.kind, d.choose_between) for d in decisions if d.choose_between]
    return to_link, to_ask


async def publish(conn: DbConnection, outcome: Outcome) -> None:
    """Stage one `mail.thread.updated` per thread changed, then the choices to ask for."""
    if not outcome.reasons and not outcome.choices:
        return
    states = await repository.thread_states(conn, list(outcome.reasons))
    events: list[tuple[str, Publishable]] = []
    for thread_id, reason in outcome.reasons.items():
        state = states.get(thread_id)
        if state is not None:
            events.append((str(thread_id), thread_updated(state, reason)))
    for thread_id, candidates in outcome.choices:
        state = states.get(thread_id)
        if state is not None:
            events.append((str(thread_id), link_choice_needed(state, candidates)))
    await stage_many(conn, THREADS, events)


def thread_updated(state: repository.ThreadState, reason: ThreadReason) -> ThreadUpdated:
    """The thread's whole current state; consumers keep the latest per thread id."""
    # Validated from plain values: the database holds the same vocabulary the contract checks.
    data = ThreadUpdatedData.model_validate(
        {
            "thread_id": str(state.thread_id),
            "account_id": state.account_id,
            "owner_user_id": state.owner_user_id,
            "subject": state.subject,
            "message_count": state.message_count,
            "last_message_at": state.last_message_at,
            "participants": [{"email": p.email, "name": p.name} for p in state.participants],
            "links": [
                {"kind": lk.kind, "entity_id": lk.entity_id, "origin": lk.origin}
                for lk in state.links
            ],
            "visibility": state.visibility,
            "archived": state.archived,
            "reason": reason,
        }
    )
    return ThreadUpdated.build(company_id=state.company_id, source="linker", data=data)


def link_choice_needed(
    state: repository.ThreadState, candidates: Sequence[ItemCandidate]
) -> ThreadLinkChoiceNeeded:
    data = LinkChoiceNeededData(
        thread_id=str(state.thread_id),
        account_id=state.account_id,
        owner_user_id=state.owner_user_id,
        candidates=tuple(
            LinkCandidate.model_validate({"kind": c.kind, "entity_id": c.item_id, "title": c.title})
            for c in candidates
        ),
    )
    return ThreadLinkChoiceNeeded.build(company_id=state.company_id, source="linker", data=data)
