"""Keeping every connected mailbox mirrored onto `mail.ingested.v1`, shared among replicas.

Which replica syncs which account: Postgres leases. Each replica renews the leases it holds
every `lease_renew_seconds` and claims active accounts whose lease is free or expired
(`FOR UPDATE SKIP LOCKED`, so replicas claim side by side); a replica that dies stops
renewing and its accounts are claimed by the others once `lease_seconds` has passed (20 s +
one renewal round by default: under the 30 s the product allows). Every write of a sync is
fenced by the lease (`hold_lease` inside the transaction), so a replica that lost an account
while paused can no longer write for it. Leases were chosen over Kafka consumer-group
ownership of the account-command partitions because accounts are long-lived state, not a
stream: a partition would tie unrelated accounts' fate together, rebalances would stop every
account's IDLE at once, and the broker used locally (Tansu) takes half a session timeout per
group join; Postgres is already the source of truth for accounts and cursors.

Per account, one task and one IMAP connection (the product allows two; the second is never
needed because other folders are checked between IDLE rounds): list the folders, catch up
each folder in scope (R6), run the initial sync newest first a chunk at a time, then wait in
IDLE on the first folder in scope (the inbox) — re-issued every `idle_renew_seconds` and
interrupted every `poll_seconds` to STATUS-check the other folders — or sleep `poll_seconds`
where the server has no IDLE. A dropped connection reconnects with capped, fully jittered
exponential backoff; refused credentials stop the account with one `reauth_required` (R5).

An idle account costs tens of KiB; its sync burst (connect, catch-up, backfill) costs far
more, and glibc keeps what the burst freed unless asked. So after a round in which some
account went from a burst to waiting, the replica gives freed heap back (`malloc_trim`),
at most once per lease round.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import logging
import random
import uuid
from collections.abc import Callable

from mailsync_contracts import (
    AccountIdData,
    AccountReauthRequired,
    AccountSynced,
    ReauthRequiredData,
)
from mailsync_contracts.topics import ACCOUNTS
from mailsync_ingest import mailbox_store, repository
from mailsync_ingest.adapters.imap import (
    ImapAuthenticationFailed,
    ImapError,
    ImapSession,
    tls_context,
)
from mailsync_ingest.credentials import CredentialCipher, CredentialsUnreadable
from mailsync_ingest.folder_sync import FolderSync
from mailsync_ingest.folders import Folder, folders_to_sync, parse_list_response
from mailsync_ingest.mailbox_store import LeaseLost
from mailsync_ingest.presets import preset_by_name
from mailsync_ingest.repository import Account
from mailsync_ingest.settings import IngestSettings
from mailsync_platform.outbox import stage
from mailsync_platform.service import Runtime
from mailsync_rawstore import RawStore

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 5.0


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where the C library has none (musl, macOS)."""
    trim: Callable[[int], int] | None = getattr(ctypes.CDLL(None), "malloc_trim", None)
    return trim


def give_back_freed_memory() -> None:
    """Return to the system the heap that freed objects left behind: without it, about a
    fifth of what a thousand initial syncs added to RSS stays there, unused."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def reconnect_delay(attempt: int, base: float, cap: float) -> float:
    """Full jitter (AWS architecture blog, "Exponential Backoff And Jitter"): a server restart
    does not bring every account back in the same second."""
    return random.uniform(0, min(cap, base * 2 ** min(attempt, 30)))


def _stop_if_asked() -> None:
    """Raise `CancelledError` when this task was asked to stop, even if a library swallowed
    the cancellation on its way up (aioimaplib awaits `asyncio.wait_for`, which on Python 3.11
    can return a result instead of raising, CPython gh-86296): `Task.cancelling()` still
    counts the request. Without this, a sync outlives its replica and retries forever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class MailboxSync:
    """Holds this replica's account leases and runs one `AccountSync` per leased account."""

    def __init__(
        self, runtime: Runtime, settings: IngestSettings, cipher: CredentialCipher, raw: RawStore
    ) -> None:
        self._runtime = runtime
        self._settings = settings
        self._cipher = cipher
        self._raw = raw
        self.replica = f"ingest-{uuid.uuid4()}"
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._accounts: dict[str, Account] = {}
        self._burst_ended = False

    def _note_burst_ended(self) -> None:
        self._burst_ended = True

    async def supervise(self) -> None:
        try:
            while True:
                try:
                    await self._round()
                except Exception:
                    log.exception("cannot renew or claim accounts; retrying")
                if self._burst_ended:
                    self._burst_ended = False
                    give_back_freed_memory()
                await asyncio.sleep(self._settings.lease_renew_seconds)
        finally:
            await self._stop_all()

    async def _round(self) -> None:
        pool = self._runtime.pool
        settings = self._settings
        held = await mailbox_store.renew_leases(pool, self.replica, settings.lease_seconds)
        room = settings.max_accounts_per_replica - len(held)
        held += await mailbox_store.claim_accounts(pool, self.replica, settings.lease_seconds, room)
        accounts = await repository.accounts_by_ids(pool, held)
        self._reconcile({a.account_id: a for a in accounts if a.state == "active"})

    def _reconcile(self, active: dict[str, Account]) -> None:
        for account_id in list(self._tasks):
            task = self._tasks[account_id]
            # A changed account (settings, credentials) restarts its sync with the new ones.
            if active.get(account_id) != self._accounts[account_id] or task.done():
                task.cancel()
                del self._tasks[account_id], self._accounts[account_id]
        for account_id, account in active.items():
            if account_id not in self._tasks:
                sync = AccountSync(
                    account,
                    self._runtime,
                    self._settings,
                    self._cipher,
                    self._raw,
                    self.replica,
                    self._note_burst_ended,
                )
                self._accounts[account_id] = account
                self._tasks[account_id] = asyncio.create_task(sync.run(), name=f"sync:{account_id}")

    async def _stop_all(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        if self._tasks:
            # Bounded: a task stuck in a library's cleanup must not hold up the shutdown.
            await asyncio.wait(self._tasks.values(), timeout=STOP_GRACE_SECONDS)
        held = list(self._accounts)
        self._tasks.clear()
        self._accounts.clear()
        with contextlib.suppress(Exception):
            # Hand the accounts over now rather than after the lease expires.
            await asyncio.shield(
                mailbox_store.release_leases(self._runtime.pool, self.replica, held)
            )


class AccountSync:
    """The sync of one account: its connection, its folders, its waiting."""

    def __init__(
        self,
        account: Account,
        runtime: Runtime,
        settings: IngestSettings,
        cipher: CredentialCipher,
        raw: RawStore,
        replica: str,
        burst_ended: Callable[[], None],
    ) -> None:
        """`burst_ended` is called each time the sync goes from catching up or backfilling
        to waiting for a change."""
        self._account = account
        self._runtime = runtime
        self._settings = settings
        self._cipher = cipher
        self._raw = raw
        self._replica = replica
        self._burst_ended = burst_ended
        preset = preset_by_name(account.provider) if account.provider else None
        self._conventions = preset.folders if preset else None
        self._synced_announced = False

    @property
    def account_id(self) -> str:
        return self._account.account_id

    async def run(self) -> None:
        attempt = 0
        while True:
            _stop_if_asked()
            try:
                password = self._cipher.open(self._account.sealed_password).get_secret_value()
                async with await ImapSession.open(
                    self._account.imap,
                    self._account.username,
                    password,
                    self._settings.imap_timeout_seconds,
                    tls_context(self._settings.imap_ca_file),
                ) as session:
                    attempt = 0
                    await self._keep_synced(session)
            except (ImapAuthenticationFailed, CredentialsUnreadable) as exc:
                await self._require_reauth(str(exc))
                return
            except LeaseLost:
                log.info("account taken over by another replica", extra=self._log_extra())
                return
            except (ImapError, OSError, TimeoutError) as exc:
                log.warning(
                    "mailbox unreachable, will retry",
                    extra={**self._log_extra(), "error": str(exc)},
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sync failed, will retry", extra=self._log_extra())
            _stop_if_asked()
            delay = reconnect_delay(
                attempt, self._settings.reconnect_base_seconds, self._settings.reconnect_max_seconds
            )
            attempt += 1
            await asyncio.sleep(delay)

    async def _keep_synced(self, session: ImapSession) -> None:
        settings = self._settings
        loop = asyncio.get_running_loop()
        folders_sync = FolderSync(
            self._account,
            session,
            self._runtime.pool,
            self._raw,
            settings,
            self._replica,
            self._runtime.events_staged,
        )
        listed_at = -float("inf")
        folders: list[Folder] = []
        targets: list[Folder] = []
        checked_at: dict[str, float] = {}
        fingerprints: dict[str, tuple[int, int | None, int, int | None]] = {}
        pushed = True
        bursting = True  # a fresh connection catches up first
        while True:
            _stop_if_asked()
            now = loop.time()
            if now - listed_at >= settings.folders_refresh_seconds:
                folders = parse_list_response(await session.list_folders(), self._conventions)
                targets = folders_to_sync(folders, self._account.settings.sync_scope)
                listed_at = now
                if not targets:
                    log.warning("no folder in the sync scope", extra=self._log_extra())
            pushed_folder = targets[0] if targets and session.has("IDLE") else None
            # Other folders first, the pushed one last: it stays selected for IDLE.
            for folder in reversed(targets):
                is_pushed = folder is pushed_folder
                due = now - checked_at.get(folder.name, -float("inf")) >= settings.poll_seconds
                if not (due or (is_pushed and pushed)):
                    continue
                if not is_pushed:
                    status = await session.status(folder.name)
                    if fingerprints.get(folder.name) == status.fingerprint:
                        checked_at[folder.name] = now
                        continue
                status = await folders_sync.catch_up(folder, folders)
                fingerprints[folder.name] = status.fingerprint
                checked_at[folder.name] = now
            backfilling = False
            for folder in targets:
                if await folders_sync.backfill(folder, settings.backfill_chunk):
                    backfilling = True
                    break
            if backfilling:
                pushed = bursting = True
                continue
            await self._announce_synced()
            if bursting:
                bursting = False
                self._burst_ended()
            pushed = await self._wait_for_change(session, folders_sync, pushed_folder, checked_at)

    async def _wait_for_change(
        self,
        session: ImapSession,
        folders_sync: FolderSync,
        pushed_folder: Folder | None,
        checked_at: dict[str, float],
    ) -> bool:
        """Until the pushed folder changes (True) or other folders are due (False)."""
        settings = self._settings
        if pushed_folder is None:
            await asyncio.sleep(settings.poll_seconds)
            return True
        if session.selected != pushed_folder.name:
            await session.select(pushed_folder.name)
        if await folders_sync.has_new_mail(pushed_folder):
            return True
        now = asyncio.get_running_loop().time()
        next_due = min(
            (at + settings.poll_seconds for name, at in checked_at.items()),
            default=now + settings.poll_seconds,
        )
        wait = max(0.05, min(settings.idle_renew_seconds, next_due - now))
        return await session.idle(wait)

    async def _announce_synced(self) -> None:
        """`mail.account.synced` once, when the first complete initial sync is done."""
        if self._synced_announced:
            return
        self._synced_announced = True
        async with self._runtime.pool.acquire() as conn, conn.transaction():
            if not await mailbox_store.mark_initial_sync_done(conn, self.account_id):
                return
            event = AccountSynced.build(
                company_id=self._account.company_id,
                source="ingest",
                data=AccountIdData(account_id=self.account_id),
            )
            await stage(conn, ACCOUNTS, self.account_id, event)
        self._runtime.events_staged()
        log.info("initial sync complete", extra=self._log_extra())

    async def _require_reauth(self, reason: str) -> None:
        """R5: one event when the provider refuses the credentials, and the sync stops."""
        async with self._runtime.pool.acquire() as conn, conn.transaction():
            # Only for the credentials this task tried: a reauthenticate that landed since
            # then is not undone by this stale refusal.
            if await repository.require_reauth(
                conn, self.account_id, self._account.sealed_password
            ):
                event = AccountReauthRequired.build(
                    company_id=self._account.company_id,
                    source="ingest",
                    data=ReauthRequiredData(account_id=self.account_id, reason=reason),
                )
                await stage(conn, ACCOUNTS, self.account_id, event)
        self._runtime.events_staged()
        log.warning("credentials refused; sync stopped", extra=self._log_extra())

    def _log_extra(self) -> dict[str, str]:
        return {"account_id": self.account_id}
