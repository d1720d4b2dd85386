"""What happens in a real mailbox reaches the CRM, every service in its own process: mail
from a customer with one open deal lands linked to it (R12, R13); filing it in Archive in the
mail client changes nothing in the CRM, deleting it there deletes it here (R8); archiving
from the CRM goes over the command topic and comes back as `mail.thread.archived` with the
message's mailbox place (R17)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from mailsync_contracts import (
    ArchiveThread,
    CrmDeal,
    CrmEntityUpserted,
    CrmEntityUpsertedData,
    ThreadActionData,
)
from mailsync_contracts.topics import CRM_ENTITIES, THREAD_COMMANDS, THREADS
from mailsync_devstack.services import ServiceFleet
from mailsync_devstack.stack import LocalStack
from tests.e2e.test_walking_skeleton import Scenario, _connect_and_seed, _thread_for
from tests.support.topics import TopicWatcher, TopicWriter

pytestmark = pytest.mark.e2e

# How long "nothing happens" is watched for after a move in the mailbox: several ingest polls
# (0.5 s in the fleet) and IDLE pushes.
QUIET_SECONDS = 4.0


def _deal(s: Scenario) -> tuple[str, CrmEntityUpserted]:
    deal = CrmDeal(
        id=f"deal-{s.company_id}",
        title="40 seats",
        status="open",
        person_ids=(s.person_id,),
        organization_id=s.org_id,
    )
    event = CrmEntityUpserted.build(
        company_id=s.company_id, source="crm", data=CrmEntityUpsertedData(entity=deal)
    )
    return f"deal:{deal.id}", event


def _deletions(watcher: TopicWatcher, s: Scenario) -> list[Any]:
    return [
        e
        for e in watcher.events(THREADS)
        if e.type in ("mail.thread.deleted", "mail.message.deleted")
        and e.data.account_id == s.account_id
    ]


async def _deal_known(db: asyncpg.Connection, s: Scenario) -> None:
    for _ in range(150):
        if await db.fetchval(
            "SELECT true FROM linker.crm_entities WHERE company_id = $1 AND kind = 'deal'",
            s.company_id,
        ):
            return
        await asyncio.sleep(0.2)
    raise AssertionError("the linker never stored the deal")


async def test_r8_r13_r17_mail_in_dovecot_links_to_the_deal_moves_are_not_deletes_and_deletes_are(
    local_stack: LocalStack,
    fleet: ServiceFleet,
    writer: TopicWriter,
    watcher: TopicWatcher,
    e2e_db: asyncpg.Connection,
) -> None:
    s = Scenario(local_stack)
    key, deal = _deal(s)
    await writer.send(CRM_ENTITIES, key, deal)
    await _connect_and_seed(s, writer, watcher, e2e_db)
    await _deal_known(e2e_db, s)
    dovecot = local_stack.dovecot
    assert dovecot is not None

    _, raw = s.mail_from_customer("Contract for 40 seats")
    uid = s.append(raw)
    thread = await watcher.wait_for(THREADS, _thread_for(s), timeout=60)
    links = {(lk.kind, lk.entity_id, lk.origin) for lk in thread.data.links}
    assert ("deal", deal.data.entity.id, "auto") in links, "R13: the one open deal is linked"

    # Archive from the CRM: over the command topic, back with the mailbox place (R17).
    command = ArchiveThread.build(
        company_id=s.company_id,
        source="crm",
        data=ThreadActionData(thread_id=thread.data.thread_id, acting_user_id=s.user_id),
    )
    await writer.send(THREAD_COMMANDS, thread.data.thread_id, command)
    archived = await watcher.wait_for(
        THREADS,
        lambda e: e.type == "mail.thread.archived" and e.data.thread_id == thread.data.thread_id,
    )
    assert [(p.folder, p.uid) for p in archived.data.locations] == [("INBOX", uid)]

    # Filing the mail in Archive in the mail client is a move, not a delete (R8).
    dovecot.move(s.mailbox, "INBOX", [uid], "Archive")
    await asyncio.sleep(QUIET_SECONDS)
    assert _deletions(watcher, s) == []

    # Deleting it in the mail client deletes it in the CRM (R8).
    archive_uid = dovecot.uids(s.mailbox, "Archive")[-1]
    dovecot.expunge(s.mailbox, "Archive", [archive_uid])
    gone = await watcher.wait_for(
        THREADS,
        lambda e: e.type == "mail.thread.deleted" and e.data.thread_id == thread.data.thread_id,
        timeout=60,
    )
    assert gone.data.origin == "mailbox"
    remaining = await e2e_db.fetchval(
        "SELECT count(*) FROM linker.threads WHERE thread_id = $1::uuid", thread.data.thread_id
    )
    assert remaining == 0
