"""Keeping every connected mailbox's INBOX mirrored onto `mail.ingested.v1`.

One task per active account. Each pass selects the folder, compares UIDVALIDITY with the
stored cursor, fetches every UID above the cursor in batches, stores the raw bytes in the raw
store, and in one transaction per batch records the messages, stages their events in the
outbox and advances the cursor. A crash anywhere resumes from the last committed batch; a
message fetched twice is recognised by its natural key (account, folder, uidvalidity, uid).

Scope of this first engine: INBOX only, polled every `poll_seconds`. IDLE, CONDSTORE/QRESYNC,
all folders, expunge/move detection and newest-first initial sync extend it (issue 3).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from uuid import NAMESPACE_URL, uuid5

from mailsync_contracts import (
    AccountReauthRequired,
    MessageIngested,
    MessageIngestedData,
    RawMessageRef,
    ReauthRequiredData,
)
from mailsync_contracts.topics import ACCOUNTS, INGESTED
from mailsync_ingest import repository
from mailsync_ingest.adapters.imap import (
    FetchedMessage,
    ImapAuthenticationFailed,
    ImapError,
    ImapSession,
)
from mailsync_ingest.credentials import CredentialCipher
from mailsync_ingest.domain import contract_addresses, contract_attachments
from mailsync_ingest.parsing import parse_message
from mailsync_ingest.repository import Account, FolderCursor
from mailsync_ingest.settings import IngestSettings
from mailsync_platform.outbox import stage
from mailsync_platform.service import Runtime
from mailsync_rawstore import RawStore

log = logging.getLogger(__name__)

INBOX = "INBOX"
MAX_RECONNECT_BACKOFF_SECONDS = 60.0


def ingested_event(
    account: Account, folder: str, uidvalidity: int, fetched: FetchedMessage, sha256: str
) -> MessageIngested:
    """The event for one fetched message; its id is derived from the message's mailbox
    position, so re-fetching the same message yields the same event id."""
    parsed = parse_message(fetched.raw)
    problems = list(parsed.parse_errors)
    sender = contract_addresses([parsed.sender] if parsed.sender else [], problems)
    data = MessageIngestedData(
        account_id=account.account_id,
        owner_user_id=account.user_id,
        account_email=account.email,
        folder=folder,
        folder_role="inbox" if folder == INBOX else "other",
        uidvalidity=uidvalidity,
        uid=fetched.uid,
        message_id=parsed.message_id,
        in_reply_to=parsed.in_reply_to,
        references=parsed.references,
        subject=parsed.subject,
        sent_at=parsed.sent_at,
        received_at=datetime.now(UTC),
        from_=sender[0] if sender else None,
        to=contract_addresses(parsed.to, problems),
        cc=contract_addresses(parsed.cc, problems),
        bcc=contract_addresses(parsed.bcc, problems),
        reply_to=contract_addresses(parsed.reply_to, problems),
        snippet=parsed.snippet,
        has_html=parsed.has_html,
        attachments=contract_attachments(parsed),
        flags=fetched.flags,
        raw=RawMessageRef(sha256=sha256, size=len(fetched.raw)),
        parse_error="; ".join(dict.fromkeys(problems)) or None,
        account_type="team" if account.account_type == "team" else "personal",
        member_user_ids=account.member_user_ids,
    )
    position = f"mailsync-ingest:{account.account_id}:{folder}:{uidvalidity}:{fetched.uid}"
    return MessageIngested.build(
        company_id=account.company_id, source="ingest", data=data, id=uuid5(NAMESPACE_URL, position)
    )


def describe(
    account: Account, folder: str, uidvalidity: int, fetched: FetchedMessage, sha256: str
) -> MessageIngested:
    """The message's event, or, when even that fails, a bare one that still points at the
    stored raw bytes and says why (R10: never dropped, never stopping the sync)."""
    try:
        event = ingested_event(account, folder, uidvalidity, fetched, sha256)
        event.to_bytes()  # what the outbox will do: fail here, for this message only
        return event
    except Exception as exc:
        log.warning(
            "message stored raw without its fields",
            extra={"account_id": account.account_id, "uid": fetched.uid, "error": repr(exc)},
        )
        bare = FetchedMessage(uid=fetched.uid, flags=fetched.flags, raw=b"")
        event = ingested_event(account, folder, uidvalidity, bare, sha256)
        data = event.data.model_copy(
            update={
                "raw": RawMessageRef(sha256=sha256, size=len(fetched.raw)),
                "parse_error": f"could not describe the message: {type(exc).__name__}",
            }
        )
        return event.model_copy(update={"data": data})


class MailboxSync:
    """Runs and supervises one sync task per active account."""

    def __init__(
        self, runtime: Runtime, settings: IngestSettings, cipher: CredentialCipher, raw: RawStore
    ) -> None:
        self._runtime = runtime
        self._settings = settings
        self._cipher = cipher
        self._raw = raw
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def supervise(self) -> None:
        """Start tasks for newly active accounts, stop tasks of accounts no longer active."""
        try:
            while True:
                try:
                    accounts = await repository.active_accounts(self._runtime.pool)
                except Exception:
                    log.exception("cannot list accounts; retrying")
                    accounts = None
                if accounts is not None:
                    self._reconcile(accounts)
                await asyncio.sleep(self._settings.poll_seconds)
        finally:
            for task in self._tasks.values():
                task.cancel()
            for task in self._tasks.values():
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _reconcile(self, accounts: list[Account]) -> None:
        active = {a.account_id: a for a in accounts}
        for account_id in list(self._tasks):
            task = self._tasks[account_id]
            if account_id not in active or task.done():
                task.cancel()
                del self._tasks[account_id]
        for account_id, account in active.items():
            if account_id not in self._tasks:
                self._tasks[account_id] = asyncio.create_task(
                    self.keep_synced(account), name=f"sync:{account_id}"
                )

    async def keep_synced(self, account: Account) -> None:
        backoff = self._settings.poll_seconds
        while True:
            try:
                password = self._cipher.open(account.sealed_password).get_secret_value()
                async with await ImapSession.open(
                    account.imap, account.username, password, self._settings.imap_timeout_seconds
                ) as session:
                    while True:
                        await self.sync_folder(session, account, INBOX)
                        backoff = self._settings.poll_seconds
                        await asyncio.sleep(self._settings.poll_seconds)
            except ImapAuthenticationFailed as exc:
                await self._require_reauth(account, str(exc))
                return
            except (ImapError, OSError, TimeoutError) as exc:
                log.warning(
                    "mailbox unreachable, will retry",
                    extra={"account_id": account.account_id, "error": str(exc)},
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sync failed, will retry", extra={"account_id": account.account_id})
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_RECONNECT_BACKOFF_SECONDS)

    async def sync_folder(self, session: ImapSession, account: Account, folder: str) -> int:
        """Publish every message above the folder's cursor; returns how many were new."""
        status = await session.select(folder)
        async with self._runtime.pool.acquire() as conn:
            cursor = await repository.get_cursor(conn, account.account_id, folder)
        if cursor is None or cursor.uidvalidity != status.uidvalidity:
            cursor = FolderCursor(status.uidvalidity, 0)
        uids = await session.uids_from(cursor.last_seen_uid + 1)
        published = 0
        for start in range(0, len(uids), self._settings.fetch_batch):
            batch = await session.fetch(uids[start : start + self._settings.fetch_batch])
            if not batch:
                continue
            events = []
            for fetched in batch:
                stored = await self._raw.put(fetched.raw)
                events.append(
                    (fetched, describe(account, folder, status.uidvalidity, fetched, stored.sha256))
                )
            async with self._runtime.pool.acquire() as conn, conn.transaction():
                for fetched, event in events:
                    is_new = await repository.record_message(
                        conn,
                        account.account_id,
                        folder,
                        status.uidvalidity,
                        fetched.uid,
                        event.data.message_id,
                        event.data.raw.sha256,
                    )
                    if is_new:
                        await stage(conn, INGESTED, account.account_id, event)
                        published += 1
                cursor = FolderCursor(status.uidvalidity, batch[-1].uid)
                await repository.save_cursor(conn, account.account_id, folder, cursor)
            self._runtime.events_staged()
        if published:
            log.info(
                "messages ingested",
                extra={"account_id": account.account_id, "folder": folder, "count": published},
            )
        return published

    async def _require_reauth(self, account: Account, reason: str) -> None:
        """R5: one event when the provider refuses the credentials, and the sync stops."""
        async with self._runtime.pool.acquire() as conn, conn.transaction():
            if await repository.set_state(conn, account.account_id, "reauth_required"):
                event = AccountReauthRequired.build(
                    company_id=account.company_id,
                    source="ingest",
                    data=ReauthRequiredData(account_id=account.account_id, reason=reason),
                )
                await stage(conn, ACCOUNTS, account.account_id, event)
        self._runtime.events_staged()
        log.warning("credentials refused; sync stopped", extra={"account_id": account.account_id})
