"""Mirroring the folders of one account over one IMAP session onto `mail.ingested.v1`.

Per folder, three moves:
- `catch_up`: SELECT (with QRESYNC when offered), start a new epoch when UIDVALIDITY changed
  (R7), ingest every UID above the cursor, and resolve the UIDs that vanished since the last
  pass: a message that is still somewhere else in the mailbox moved (R8: nothing published),
  one found nowhere (or only in Trash) was deleted (`mail.message.expunged`);
- `backfill`: the initial sync, newest first, downwards from where the first pass found the
  top, a bounded chunk at a time so new mail never waits for a 10,000-message history;
- fetching is two-phase: flags, size and Message-ID first, then bodies only for messages the
  account does not already have (moves, copies and UIDVALIDITY resyncs cost a header, not a
  body) and that are within the provider's size limit (larger ones: header only, flagged).

A message's identity is (Message-ID, size), or its content hash when it has no Message-ID:
two different messages sharing both a Message-ID and a byte size are, in practice, the same
message delivered twice, and merging them loses nothing a CRM shows.

Every batch is one transaction: the folder's rows, the staged events and the advanced cursor
commit together, fenced by the account's lease, so a crash or a lost lease replays at most the
uncommitted batch, and a replay publishes the same event ids (derived from the position).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import asyncpg

from mailsync_contracts import AccountSyncProgressed, SyncProgressData
from mailsync_contracts.topics import ACCOUNTS, INGESTED
from mailsync_ingest import mailbox_store
from mailsync_ingest.adapters.imap import (
    FetchedMessage,
    FolderStatus,
    ImapSession,
    MessageSummary,
)
from mailsync_ingest.folders import Folder, folders_a_message_can_move_to
from mailsync_ingest.mailbox_store import FolderCursor, Identity, NewRow, SeenMessage
from mailsync_ingest.message_events import Place, describe, expunged_event, screened_event
from mailsync_ingest.repository import Account
from mailsync_ingest.screening import Blocklist, screening_reason
from mailsync_ingest.settings import IngestSettings
from mailsync_mime.parsing import ParsedMessage, parse_message
from mailsync_platform.outbox import Publishable, stage, stage_many
from mailsync_rawstore import RawStore

log = logging.getLogger(__name__)

# Message-IDs searched for in one UID SEARCH (OR-ed), when telling a move from a delete.
_SEARCH_CHUNK = 20
# Processes parsing fetched messages, shared by every account of the replica: parsing is
# pure CPU, and off the event loop it overlaps the IMAP, Postgres and Kafka traffic.
_PARSERS = 2
_parsers: ProcessPoolExecutor | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one fetched message became: its row, and the event to publish (if any)."""

    row: NewRow
    event: Publishable | None


class FolderSync:
    """The folder-level sync of one account, on one session, run by one task at a time."""

    def __init__(
        self,
        account: Account,
        session: ImapSession,
        pool: asyncpg.Pool,
        raw: RawStore,
        settings: IngestSettings,
        replica: str,
        events_staged: Callable[[], None],
    ) -> None:
        self._account = account
        self._session = session
        self._pool = pool
        self._raw = raw
        self._settings = settings
        self._replica = replica
        self._events_staged = events_staged
        self._blocklist = Blocklist.from_entries(account.settings.blocklist)
        self._backfilled: set[str] = set()
        limits = [account.max_message_bytes, settings.max_message_bytes]
        self._size_limit = min(limit for limit in limits if limit is not None)

    @property
    def account_id(self) -> str:
        return self._account.account_id

    async def cursor(self, folder: Folder) -> FolderCursor | None:
        async with self._pool.acquire() as conn:
            return await mailbox_store.get_cursor(conn, self.account_id, folder.name)

    # -- catching up -------------------------------------------------------------------------

    async def catch_up(self, folder: Folder, folders: Sequence[Folder]) -> FolderStatus:
        """Bring the folder up to date: new mail, UIDVALIDITY change, vanished messages."""
        cursor = await self.cursor(folder)
        known = None
        if cursor is not None and cursor.highestmodseq is not None:
            known = (cursor.uidvalidity, cursor.highestmodseq)
        status = await self._session.select(folder.name, known)
        fresh_epoch = cursor is None or cursor.uidvalidity != status.uidvalidity
        if cursor is None or fresh_epoch:
            cursor = await self._start_epoch(folder, cursor, status)
            self._backfilled.discard(folder.name)
        place = Place(folder.display_name, folder.role, status.uidvalidity)
        new = await self._session.uids_from(cursor.last_seen_uid + 1)
        for start in range(0, len(new), self._settings.fetch_batch):
            batch = new[start : start + self._settings.fetch_batch]
            cursor = await self._ingest(folder, place, cursor, batch, backfill=False)
        if not fresh_epoch:
            if known is not None and self._session.qresync:
                vanished: Sequence[int] = status.vanished
            else:
                vanished = await self._vanished_by_listing(folder, status)
            if vanished:
                await self._resolve_vanished(folder, place, vanished, folders)
        if status.highestmodseq != cursor.highestmodseq:
            cursor = replace(cursor, highestmodseq=status.highestmodseq)
            async with self._pool.acquire() as conn, conn.transaction():
                await mailbox_store.hold_lease(conn, self.account_id, self._replica)
                await mailbox_store.save_cursor(conn, self.account_id, folder.name, cursor)
        return status

    async def has_new_mail(self, folder: Folder) -> bool:
        """A last look before IDLE: mail that arrived while the previous commands ran was
        announced then (and not again), so it would otherwise wait for the next IDLE round."""
        cursor = await self.cursor(folder)
        if cursor is None:
            return True
        return bool(await self._session.uids_from(cursor.last_seen_uid + 1))

    async def _start_epoch(
        self, folder: Folder, old: FolderCursor | None, status: FolderStatus
    ) -> FolderCursor:
        """A folder seen for the first time, or whose UIDVALIDITY changed (R7): everything
        below UIDNEXT is history for the backfill, newest first."""
        uidnext = status.uidnext
        if uidnext is None:
            uidnext = max(await self._session.search("ALL"), default=0) + 1
        cursor = FolderCursor(
            uidvalidity=status.uidvalidity,
            last_seen_uid=uidnext - 1,
            backfill_floor=max(uidnext, 1),
        )
        async with self._pool.acquire() as conn, conn.transaction():
            await mailbox_store.hold_lease(conn, self.account_id, self._replica)
            if old is not None:
                retired = await mailbox_store.retire_epoch(
                    conn, self.account_id, folder.name, status.uidvalidity
                )
                log.warning(
                    "UIDVALIDITY changed; resyncing the folder",
                    extra={
                        "account_id": self.account_id,
                        "folder": folder.display_name,
                        "old_uidvalidity": old.uidvalidity,
                        "uidvalidity": status.uidvalidity,
                        "known_messages": retired,
                    },
                )
            await mailbox_store.save_cursor(conn, self.account_id, folder.name, cursor)
        return cursor

    async def _vanished_by_listing(self, folder: Folder, status: FolderStatus) -> list[int]:
        """Without QRESYNC: compare the UIDs we hold with the folder's, when the counts say
        something may have left."""
        async with self._pool.acquire() as conn:
            live = await mailbox_store.live_uids(
                conn, self.account_id, folder.name, status.uidvalidity
            )
        # Equal counts: nothing left (an arrival and a departure in the same pass cancel
        # out only until the next pass, whose SELECT counts them both).
        if not live or len(live) == status.exists:
            return []
        present = set(await self._session.search("ALL"))
        return sorted(live - present)

    # -- the initial sync --------------------------------------------------------------------

    async def backfill(self, folder: Folder, budget: int) -> bool:
        """Ingest up to `budget` not-yet-synced messages below the cursor, newest first;
        returns whether more remain. Publishes the folder's progress."""
        if folder.name in self._backfilled:
            return False
        cursor = await self.cursor(folder)
        if cursor is None or cursor.backfill_floor is None:
            return False
        if cursor.backfilled:
            self._backfilled.add(folder.name)
            return False
        status = await self._session.select(folder.name)
        if status.uidvalidity != cursor.uidvalidity:
            return True  # the next catch-up starts the new epoch
        criteria = f"UID 1:{cursor.backfill_floor - 1}"
        if self._account.settings.history_days is not None:
            since = datetime.now(UTC) - timedelta(days=self._account.settings.history_days)
            criteria += f" SINCE {since:%d-%b-%Y}"
        remaining = [u for u in await self._session.search(criteria) if u < cursor.backfill_floor]
        if cursor.backfill_total == 0 and cursor.backfill_done == 0:
            cursor = replace(cursor, backfill_total=len(remaining))
        place = Place(folder.display_name, folder.role, status.uidvalidity)
        chunk = sorted(remaining, reverse=True)[:budget]
        for start in range(0, len(chunk), self._settings.fetch_batch):
            batch = chunk[start : start + self._settings.fetch_batch]
            cursor = await self._ingest(folder, place, cursor, batch, backfill=True)
        done = len(chunk) == len(remaining)
        if done:
            cursor = replace(
                cursor,
                backfill_floor=1,
                backfill_total=max(cursor.backfill_total, cursor.backfill_done),
            )
        async with self._pool.acquire() as conn, conn.transaction():
            await mailbox_store.hold_lease(conn, self.account_id, self._replica)
            await mailbox_store.save_cursor(conn, self.account_id, folder.name, cursor)
            progress = AccountSyncProgressed.build(
                company_id=self._account.company_id,
                source="ingest",
                data=SyncProgressData(
                    account_id=self.account_id,
                    folder=folder.display_name,
                    done=cursor.backfill_done,
                    total=cursor.backfill_total,
                ),
            )
            await stage(conn, ACCOUNTS, self.account_id, progress)
        self._events_staged()
        if done:
            self._backfilled.add(folder.name)
        return not done

    # -- one batch ---------------------------------------------------------------------------

    async def _ingest(
        self,
        folder: Folder,
        place: Place,
        cursor: FolderCursor,
        uids: Sequence[int],
        *,
        backfill: bool,
    ) -> FolderCursor:
        """Fetch, store and describe a batch of UIDs; record and publish them in one
        transaction with the advanced cursor. Returns the new cursor."""
        summaries = await self._session.summaries(uids)
        async with self._pool.acquire() as conn:
            known = await mailbox_store.known_identities(
                conn, self.account_id, [_identity(s) for s in summaries if s.message_id]
            )
        outcomes: list[Outcome] = []
        wanted: list[MessageSummary] = []
        for summary in summaries:
            identity = _identity(summary) if summary.message_id else None
            if identity is not None and identity in known:
                outcomes.append(Outcome(_known_row(summary), None))
            else:
                wanted.append(summary)
        outcomes += await self._fetch_and_describe(place, wanted)
        if backfill:
            # Newest first on the topic too: the inbox fills from the top.
            outcomes.sort(key=lambda o: o.row.uid, reverse=True)
            advanced = replace(
                cursor,
                backfill_floor=min(uids),
                backfill_done=cursor.backfill_done + len(uids),
            )
        else:
            outcomes.sort(key=lambda o: o.row.uid)
            advanced = replace(cursor, last_seen_uid=max(cursor.last_seen_uid, max(uids)))
        async with self._pool.acquire() as conn, conn.transaction():
            await mailbox_store.hold_lease(conn, self.account_id, self._replica)
            new_uids = await mailbox_store.record_messages(
                conn, self.account_id, folder.name, place.uidvalidity, [o.row for o in outcomes]
            )
            staged = [
                (self.account_id, outcome.event)
                for outcome in outcomes
                if outcome.event is not None and outcome.row.uid in new_uids
            ]
            await stage_many(conn, INGESTED, staged)
            published = len(staged)
            await mailbox_store.save_cursor(conn, self.account_id, folder.name, advanced)
        if published:
            self._events_staged()
            log.info(
                "messages ingested",
                extra={
                    "account_id": self.account_id,
                    "folder": folder.display_name,
                    "count": published,
                    "backfill": backfill,
                },
            )
        return advanced

    async def _fetch_and_describe(
        self, place: Place, wanted: Sequence[MessageSummary]
    ) -> list[Outcome]:
        by_uid = {s.uid: s for s in wanted}
        small = [s for s in wanted if s.size <= self._size_limit]
        large = [s for s in wanted if s.size > self._size_limit]
        budget = self._settings.fetch_batch_bytes
        # Bodies within the byte budget, then headers of the too-large ones; each FETCH
        # answer is stored and parsed while the next one is on the wire.
        requests = [(group, False) for group in _byte_budget_groups(small, budget)]
        if large:
            requests.append((large, True))
        outcomes: list[Outcome] = []
        seen_in_batch: set[Identity] = set()
        seen_contents: set[str] = set()
        parsed_all: list[tuple[FetchedMessage, bool, str, ParsedMessage]] = []
        arriving = self._start_fetch(requests, 0)
        try:
            for index, (_, too_large) in enumerate(requests):
                assert arriving is not None
                messages = await arriving
                arriving = self._start_fetch(requests, index + 1)
                raws = [message.raw for message in messages]
                stored, read = await asyncio.gather(self._raw.put_many(raws), _parse_all(raws))
                parsed_all += [
                    (message, too_large, raw.sha256, fields)
                    for message, raw, fields in zip(messages, stored, read, strict=True)
                ]
        finally:
            if arriving is not None and not arriving.done():
                # Failing mid-batch: the error goes up and the session is dropped; the FETCH
                # still in flight is cancelled and its outcome consumed, never left pending.
                arriving.cancel()
                arriving.add_done_callback(_consume_outcome)
        async with self._pool.acquire() as conn:
            known = await mailbox_store.known_identities(
                conn,
                self.account_id,
                [
                    (parsed.message_id, by_uid[m.uid].size)
                    for m, _, _, parsed in parsed_all
                    if parsed.message_id
                ],
            )
            known_contents = await mailbox_store.known_contents(
                conn, self.account_id, [sha for _, _, sha, _ in parsed_all]
            )
        for message, too_large, sha256, parsed in parsed_all:
            size = by_uid[message.uid].size
            identity = (parsed.message_id, size) if parsed.message_id else None
            row = NewRow(message.uid, parsed.message_id, size, sha256, "ingested")
            duplicate = (
                identity in known or identity in seen_in_batch
                if identity is not None
                else sha256 in known_contents or sha256 in seen_contents
            )
            if identity is not None:
                seen_in_batch.add(identity)
            seen_contents.add(sha256)
            if duplicate:
                outcomes.append(Outcome(replace(row, outcome="known"), None))
                continue
            reason = screening_reason(
                parsed.sender.email if parsed.sender else None,
                [p.email for p in (*parsed.to, *parsed.cc)],
                [self._account.email],
                self._blocklist,
            )
            if reason is not None:
                event: Publishable = screened_event(
                    self._account, place, message.uid, parsed, reason
                )
                outcomes.append(Outcome(replace(row, outcome="screened"), event))
                continue
            event = describe(
                self._account,
                place,
                message,
                sha256,
                parsed,
                message_size=size,
                too_large=too_large,
            )
            outcomes.append(Outcome(row, event))
        return outcomes

    def _start_fetch(
        self, requests: Sequence[tuple[Sequence[MessageSummary], bool]], index: int
    ) -> asyncio.Task[list[FetchedMessage]] | None:
        """The FETCH of `requests[index]` (None past the end), started now; the session
        runs one at a time."""
        if index >= len(requests):
            return None
        group, header_only = requests[index]
        uids = [s.uid for s in group]
        if header_only:
            fetch = self._session.fetch(uids, header_only=True)
        else:
            fetch = self._session.fetch(uids, expected_bytes=sum(s.size for s in group))
        return asyncio.create_task(fetch)

    # -- moves and deletes (R8) --------------------------------------------------------------

    async def _resolve_vanished(
        self, folder: Folder, place: Place, uids: Sequence[int], folders: Sequence[Folder]
    ) -> None:
        async with self._pool.acquire() as conn:
            gone = await mailbox_store.seen_messages(
                conn, self.account_id, folder.name, place.uidvalidity, uids
            )
            moved_locally = {
                m.uid
                for m in gone
                if await mailbox_store.present_elsewhere(conn, self.account_id, folder.name, m)
            }
        undecided = [m for m in gone if m.uid not in moved_locally and m.outcome != "screened"]
        found = await self._found_elsewhere_on_server(folder, folders, undecided)
        expunged = [m for m in undecided if (m.message_id, m.size) not in found]
        async with self._pool.acquire() as conn, conn.transaction():
            await mailbox_store.hold_lease(conn, self.account_id, self._replica)
            await mailbox_store.mark_gone(
                conn, self.account_id, folder.name, place.uidvalidity, [m.uid for m in gone]
            )
            for message in expunged:
                await mailbox_store.mark_expunged(conn, self.account_id, message)
                event = expunged_event(
                    self._account, place, message.uid, message.message_id, message.raw_sha256
                )
                await stage(conn, INGESTED, self.account_id, event)
        if expunged:
            self._events_staged()
        log.info(
            "messages left a folder",
            extra={
                "account_id": self.account_id,
                "folder": folder.display_name,
                "moved": len(gone) - len(expunged),
                "expunged": len(expunged),
            },
        )

    async def _found_elsewhere_on_server(
        self, left: Folder, folders: Sequence[Folder], messages: Sequence[SeenMessage]
    ) -> set[tuple[str | None, int | None]]:
        """Which of these messages are still in a folder other than `left`, Trash and Junk:
        those moved out of scope (archived, filed) rather than deleted. Messages without a
        Message-ID cannot be searched for and count as deleted unless seen elsewhere."""
        pending = {m.message_id: m for m in messages if m.message_id and m.message_id.isascii()}
        found: set[tuple[str | None, int | None]] = set()
        for destination in folders_a_message_can_move_to(folders, left):
            if not pending:
                break
            await self._session.select(destination.name)
            ids = list(pending)
            for start in range(0, len(ids), _SEARCH_CHUNK):
                chunk = ids[start : start + _SEARCH_CHUNK]
                uids = await self._session.search(_any_message_id(chunk))
                for summary in await self._session.summaries(uids):
                    message = pending.get(summary.message_id or "")
                    if message is not None:
                        found.add((message.message_id, message.size))
                        del pending[summary.message_id or ""]
        return found


async def _parse_all(raws: Sequence[bytes]) -> list[ParsedMessage]:
    """`parse_message` of each, in the parser processes (here when they are unavailable)."""
    global _parsers
    if not raws:
        return []
    if _parsers is None:
        # spawn: a fork of this process would copy its event loop and its threads' locks.
        _parsers = ProcessPoolExecutor(_PARSERS, mp_context=multiprocessing.get_context("spawn"))
    try:
        return await asyncio.get_running_loop().run_in_executor(_parsers, _parse_each, raws)
    except BrokenProcessPool:
        log.warning("a parser process died; parsing this batch here and restarting them")
        _parsers = None
        return _parse_each(raws)


def _parse_each(raws: Sequence[bytes]) -> list[ParsedMessage]:
    return [parse_message(raw) for raw in raws]


def _consume_outcome(task: asyncio.Task[list[FetchedMessage]]) -> None:
    if not task.cancelled():
        task.exception()


def _identity(summary: MessageSummary) -> Identity:
    return (summary.message_id or "", summary.size)


def _known_row(summary: MessageSummary) -> NewRow:
    return NewRow(summary.uid, summary.message_id, summary.size, None, "known")


def _byte_budget_groups(
    summaries: Sequence[MessageSummary], budget: int
) -> list[list[MessageSummary]]:
    """Split a batch so one FETCH answer stays within `budget` bytes (a single larger
    message goes alone)."""
    groups: list[list[MessageSummary]] = []
    current: list[MessageSummary] = []
    total = 0
    for summary in summaries:
        if current and total + summary.size > budget:
            groups.append(current)
            current, total = [], 0
        current.append(summary)
        total += summary.size
    if current:
        groups.append(current)
    return groups


def _any_message_id(message_ids: Sequence[str]) -> str:
    """`UID SEARCH` criteria matching any of the Message-IDs (RFC 3501 §6.4.4 OR is binary)."""
    terms = [f'HEADER Message-ID "{_escape(f"<{mid}>")}"' for mid in message_ids]
    criteria = terms[-1]
    for term in reversed(terms[:-1]):
        criteria = f"OR {term} {criteria}"
    return criteria


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
