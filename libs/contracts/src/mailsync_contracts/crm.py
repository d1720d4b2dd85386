"""`crm.entities.v1`: the CRM's records as the linker needs them (people, items, users, teams).

The CRM publishes the whole current state of a record on every change (`crm.entity.upserted`),
so a consumer can apply upserts in any order within a key and keep the last; the record key
`<kind>:<id>` keeps one record's changes in order. Email addresses are carried as the CRM holds
them; the linker normalises them (`normalize_email_address`) when it matches participants (R12).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from mailsync_contracts.envelope import ContractModel, Envelope
from mailsync_contracts.values import EntityKind

ItemVisibility = Literal["owner", "team", "company"]
"""Who may see a deal, lead or project: its owner, the owner's teams, or the whole company.
Admins see every item. A thread's `shared` visibility follows its linked items (R14)."""


class CrmPerson(ContractModel):
    kind: Literal["person"] = "person"
    id: str
    name: str
    emails: tuple[str, ...] = ()
    organization_id: str | None = None
    owner_user_id: str | None = None


class CrmOrganization(ContractModel):
    kind: Literal["organization"] = "organization"
    id: str
    name: str
    domains: tuple[str, ...] = ()


class CrmDeal(ContractModel):
    """A deal; only `open`, not `archived` deals are candidates for auto-linking (R13)."""

    kind: Literal["deal"] = "deal"
    id: str
    title: str
    status: Literal["open", "won", "lost"]
    person_ids: tuple[str, ...] = ()
    organization_id: str | None = None
    owner_user_id: str | None = None
    visible_to: ItemVisibility = "company"
    archived: bool = False


class CrmLead(ContractModel):
    """A lead; only `open`, not `archived` leads are candidates for auto-linking (R13)."""

    kind: Literal["lead"] = "lead"
    id: str
    title: str
    status: Literal["open", "converted", "archived"]
    person_ids: tuple[str, ...] = ()
    organization_id: str | None = None
    owner_user_id: str | None = None
    visible_to: ItemVisibility = "company"
    archived: bool = False


class CrmProject(ContractModel):
    """A project; only `open`, not `archived` ones are candidates for auto-linking (R13)."""

    kind: Literal["project"] = "project"
    id: str
    title: str
    status: Literal["open", "completed", "canceled"]
    person_ids: tuple[str, ...] = ()
    organization_id: str | None = None
    owner_user_id: str | None = None
    visible_to: ItemVisibility = "company"
    archived: bool = False


class CrmUser(ContractModel):
    """A CRM user: their addresses are "own" addresses, never matched to persons (R12, R26).

    `alternative_emails` holds only addresses the user verified by a confirmation email (R26).
    `is_admin` lets a user see every item, never another user's private mail (R14).
    """

    kind: Literal["user"] = "user"
    id: str
    name: str
    email: str
    alternative_emails: tuple[str, ...] = ()
    linking_mode: Literal["automatic", "manual"]
    team_ids: tuple[str, ...] = ()
    is_admin: bool = False
    plan: Literal["growth", "premium", "ultimate"] | None = None


class CrmTeam(ContractModel):
    kind: Literal["team"] = "team"
    id: str
    name: str
    member_user_ids: tuple[str, ...] = ()


CrmEntity = Annotated[
    CrmPerson | CrmOrganization | CrmDeal | CrmLead | CrmProject | CrmUser | CrmTeam,
    Field(discriminator="kind"),
]


class CrmEntityUpsertedData(ContractModel):
    entity: CrmEntity


class CrmEntityDeletedData(ContractModel):
    kind: EntityKind
    entity_id: str


class CrmEntityUpserted(Envelope[CrmEntityUpsertedData]):
    """A CRM record was created or changed; `data.entity` is its full current state."""

    type: Literal["crm.entity.upserted"] = "crm.entity.upserted"


class CrmEntityDeleted(Envelope[CrmEntityDeletedData]):
    """A CRM record is gone; links to it disappear from threads."""

    type: Literal["crm.entity.deleted"] = "crm.entity.deleted"


CrmEntityEvent = CrmEntityUpserted | CrmEntityDeleted
