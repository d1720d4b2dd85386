"""Re-sealing every stored mailbox password with the primary credentials key (R5), at start.

`MAILSYNC_CREDENTIALS_KEY` is a comma-separated list of Fernet keys: the first seals, every
one opens. Rotating the key, with no password re-entered and no sync interrupted:

1. Add the new key *after* the current one (`old,new`) and roll it out to every replica.
   Nothing is re-sealed yet (the primary is still `old`), but every replica can now open
   what the new key will seal. Skip this step only when all replicas restart at once.
2. Put the new key first (`new,old`) and roll it out. Each replica, as it starts, re-seals
   every password with `new` (this module). New connects and reauthentications seal with
   `new` as well.
3. Check the log line "credentials re-sealed" of a replica started in step 2: `unreadable`
   must be 0 (else some password was sealed with a key no longer configured, and that
   account needs a reauthenticate). Then remove the old key (`new`) and roll out.

The pass reads passwords in account-id pages and writes each page back in one statement that
replaces a password only if it still holds what was read (compare-and-set): replicas
starting together, a reauthenticate landing in between, or a crash halfway are all harmless,
and a password already sealed with the primary key is left as it is, so a pass over rotated
data writes nothing. Wiped passwords (disconnected accounts) are skipped. Failures are logged
and never stop the service from starting: every configured key still opens every password,
and the next start finishes the job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg

from mailsync_ingest import repository
from mailsync_ingest.credentials import CredentialCipher, CredentialsUnreadable

log = logging.getLogger(__name__)

PAGE_SIZE = 500


@dataclass(frozen=True, slots=True)
class ResealReport:
    examined: int
    resealed: int
    unreadable: int


async def reseal_credentials(
    pool: asyncpg.Pool, cipher: CredentialCipher, page_size: int = PAGE_SIZE
) -> ResealReport:
    """One pass over every stored password; see the module docstring."""
    examined = resealed = unreadable = 0
    after = ""
    while True:
        page = await repository.sealed_passwords_after(pool, after, page_size)
        if not page:
            break
        after = page[-1].account_id
        examined += len(page)
        stale: list[repository.SealedPassword] = []
        fresh: list[bytes] = []
        for stored in page:
            try:
                renewed = cipher.reseal(stored.sealed)
            except CredentialsUnreadable:
                unreadable += 1
                log.warning(
                    "stored credentials open with no configured key",
                    extra={"account_id": stored.account_id},
                )
                continue
            if renewed is not None:
                stale.append(stored)
                fresh.append(renewed)
        if stale:
            resealed += await repository.replace_sealed_passwords(pool, stale, fresh)
    return ResealReport(examined, resealed, unreadable)


async def reseal_at_start(pool: asyncpg.Pool, cipher: CredentialCipher) -> None:
    """The startup step: run a pass, log its outcome, never fail the start."""
    try:
        report = await reseal_credentials(pool, cipher)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning(
            "credentials not re-sealed; the next start tries again", extra={"error": repr(exc)}
        )
        return
    log.info(
        "credentials re-sealed",
        extra={
            "examined": report.examined,
            "resealed": report.resealed,
            "unreadable": report.unreadable,
        },
    )
