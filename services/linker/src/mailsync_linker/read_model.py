"""The CRM as the linker knows it, kept from `crm.entities.v1` (R12–R14).

Every upsert carries the record's whole state, so applying the newest version and ignoring
older ones (by event time) makes arrival order irrelevant; a deletion is a tombstone that an
older upsert cannot undo. Derived tables (addresses, who an item is with, team membership)
are rewritten from the record on every applied change.

Mail already filed follows the CRM for persons and organizations: a person created, given a
new address, moved to another organization or deleted after their mail arrived relinks the
threads they take part in (R12; the same state whatever order records come in). Deals,
leads and projects never pull old mail in (R13: no retroactive linking); a deleted item's
links disappear.
"""

from __future__ import annotations

from uuid import UUID

from mailsync_contracts import (
    CrmDeal,
    CrmEntityDeleted,
    CrmEntityUpserted,
    CrmLead,
    CrmOrganization,
    CrmPerson,
    CrmProject,
    CrmTeam,
    CrmUser,
)
from mailsync_linker import repository
from mailsync_linker.domain import match_keys
from mailsync_linker.filing import Outcome, publish, relink
from mailsync_platform.database import DbConnection


async def entity_upserted(event: CrmEntityUpserted, conn: DbConnection) -> None:
    entity = event.data.entity
    company_id = event.company_id
    applied = await repository.upsert_entity(
        conn, company_id, entity.kind, entity.id, entity.model_dump(mode="json"), event.time
    )
    if not applied:
        return  # an older version than the one we hold
    outcome = Outcome()
    if isinstance(entity, CrmPerson):
        previous = await repository.replace_addresses(
            conn, company_id, "person", entity.id, match_keys(entity.emails)
        )
        await _relink_addresses(conn, company_id, [*previous, *match_keys(entity.emails)], outcome)
    elif isinstance(entity, CrmOrganization):
        await _relink_organization(conn, company_id, entity.id, outcome)
    elif isinstance(entity, CrmDeal | CrmLead | CrmProject):
        await repository.replace_item_persons(
            conn,
            company_id,
            entity.kind,
            entity.id,
            entity.person_ids,
            entity.status == "open" and not entity.archived,
        )
    elif isinstance(entity, CrmUser):
        emails = match_keys((entity.email, *entity.alternative_emails))
        previous = await repository.replace_addresses(conn, company_id, "user", entity.id, emails)
        await repository.replace_team_members(
            conn,
            company_id,
            "user",
            user_id=entity.id,
            pairs=[(t, entity.id) for t in entity.team_ids],
        )
        await _colleagues_changed(conn, company_id, [*previous, *emails], outcome)
    elif isinstance(entity, CrmTeam):
        await repository.replace_team_members(
            conn,
            company_id,
            "team",
            team_id=entity.id,
            pairs=[(entity.id, u) for u in entity.member_user_ids],
        )
    await publish(conn, outcome)


async def entity_deleted(event: CrmEntityDeleted, conn: DbConnection) -> None:
    data = event.data
    company_id = event.company_id
    applied = await repository.delete_entity(
        conn, company_id, data.kind, data.entity_id, event.time
    )
    if not applied:
        return
    outcome = Outcome()
    if data.kind in ("person", "organization", "deal", "lead", "project"):
        # Links to a deleted record go, whoever made them.
        for thread_id in await repository.threads_linked_to(
            conn, company_id, data.kind, data.entity_id
        ):
            outcome.touch(thread_id, "links_changed")
        await repository.remove_links_to(conn, company_id, data.kind, data.entity_id)
    if data.kind == "person":
        previous = await repository.replace_addresses(
            conn, company_id, "person", data.entity_id, []
        )
        await _relink_addresses(conn, company_id, previous, outcome)
    elif data.kind in ("deal", "lead", "project"):
        await repository.replace_item_persons(
            conn, company_id, data.kind, data.entity_id, [], is_open=False
        )
    elif data.kind == "user":
        previous = await repository.replace_addresses(conn, company_id, "user", data.entity_id, [])
        await repository.replace_team_members(conn, company_id, "user", user_id=data.entity_id)
        await _colleagues_changed(conn, company_id, previous, outcome)
    elif data.kind == "team":
        await repository.replace_team_members(conn, company_id, "team", team_id=data.entity_id)
    await publish(conn, outcome)


async def _relink_addresses(
    conn: DbConnection, company_id: str, emails: list[str], outcome: Outcome
) -> None:
    threads = await repository.threads_with_addresses(conn, company_id, emails)
    await _relink(conn, company_id, threads, outcome)


async def _relink_organization(
    conn: DbConnection, company_id: str, organization_id: str, outcome: Outcome
) -> None:
    persons = await repository.persons_of_organization(conn, company_id, organization_id)
    emails = await repository.addresses_of_persons(conn, company_id, persons)
    await _relink_addresses(conn, company_id, emails, outcome)


async def _colleagues_changed(
    conn: DbConnection, company_id: str, emails: list[str], outcome: Outcome
) -> None:
    """A user's addresses changed: they are colleagues, not customers, on every thread
    (R12), and addresses they gave up are customers again unless another user has them."""
    threads = await repository.mark_colleagues(conn, company_id, emails)
    await _relink(conn, company_id, threads, outcome)


async def _relink(
    conn: DbConnection, company_id: str, threads: list[UUID], outcome: Outcome
) -> None:
    # Bounded batches: a person on ten thousand threads is relinked in slices, one
    # transaction still, without building one enormous statement.
    for start in range(0, len(threads), 500):
        await relink(conn, company_id, threads[start : start + 500], outcome, new_mail=False)
