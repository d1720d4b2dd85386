"""Demo CRM that `make run` publishes on `crm.entities.v1`: a small sales company whose people
and items are arranged so that every linking case of R12/R13 shows up in the demo mailbox.

Invariants (checked in tests/unit/test_demo_data.py):
- ids are "<kind>-<n>", unique per kind; every reference (organization, person, user, team)
  points at an entity that exists here;
- every person's email domain is one of their organization's domains (one of them an IDN);
- exactly one person (Jürgen Keßler, person-3) has two open deals: his mail needs a link choice;
- the envelopes are deterministic: the same company and entity always give the same event id,
  so a reseed is recognisable and an idempotent consumer sees a redelivery, not news.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

ItemKind = Literal["deal", "lead", "project"]

CRM_ENTITIES_TOPIC = "crm.entities.v1"
DEMO_COMPANY_ID = "company-demo"

# A fixed namespace makes event ids a pure function of (company, entity content).
_EVENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "crm-events.demo-sales.test")


@dataclass(frozen=True)
class DemoUser:
    id: str
    name: str
    email: str
    alternative_emails: tuple[str, ...]
    linking_mode: Literal["automatic", "manual"]
    team_ids: tuple[str, ...]
    is_admin: bool = False


@dataclass(frozen=True)
class DemoTeam:
    id: str
    name: str
    member_user_ids: tuple[str, ...]


@dataclass(frozen=True)
class DemoOrganization:
    id: str
    name: str
    domains: tuple[str, ...]


@dataclass(frozen=True)
class DemoPerson:
    id: str
    name: str
    emails: tuple[str, ...]
    organization_id: str | None
    owner_user_id: str | None

    @property
    def email(self) -> str:
        return self.emails[0]


@dataclass(frozen=True)
class DemoItem:
    """A deal, lead or project: the things R13 links a thread to when exactly one is open."""

    kind: ItemKind
    id: str
    title: str
    status: str
    person_ids: tuple[str, ...]
    organization_id: str | None
    owner_user_id: str | None


DANA = DemoUser(
    id="user-1",
    name="Dana Whitfield",
    email="dana@demo-sales.test",
    alternative_emails=("dana.whitfield@demo-sales.test",),
    linking_mode="automatic",
    team_ids=("team-1",),
)
MARCO = DemoUser(
    id="user-2",
    name="Marco Bellini",
    email="marco@demo-sales.test",
    alternative_emails=(),
    linking_mode="manual",
    team_ids=("team-1",),
    is_admin=True,
)
DEMO_OWNER_USER_ID = DANA.id
DEMO_OWNER_EMAIL = DANA.email
DEMO_COLLEAGUE_EMAIL = MARCO.email

DEMO_USERS: tuple[DemoUser, ...] = (DANA, MARCO)
DEMO_TEAMS: tuple[DemoTeam, ...] = (
    DemoTeam(id="team-1", name="Field Sales Europe & Asia", member_user_ids=(DANA.id, MARCO.id)),
)

NORTHWIND = DemoOrganization("org-1", "Northwind Freight Ltd", ("northwind-freight.test",))
KESSLER = DemoOrganization(
    "org-2",
    "Kessler Präzisionstechnik GmbH",
    # The second domain is an IDN: R12 compares it with the ACE form found in mail headers.
    ("kessler-praezision.test", "kessler-präzision.test"),
)
DELACROIX = DemoOrganization("org-3", "Maison Delacroix SA", ("maison-delacroix.test",))
HUAXIN = DemoOrganization(
    "org-4", "华新电子有限公司 (Huaxin Electronics)", ("huaxin-elec.test", "huaxin-tw.test")
)
SAKURAI = DemoOrganization("org-5", "株式会社桜井精機 (Sakurai Seiki)", ("sakurai-seiki.test",))
POLYARNY = DemoOrganization(
    "org-6", 'ООО "Полярный Ветер" (Polyarny Veter)', ("polyarny-veter.test",)
)
NAKHEEL = DemoOrganization(
    "org-7", "شركة النخيل للتجارة (Al Nakheel Trading)", ("alnakheel-trading.test",)
)
OLIVARES = DemoOrganization("org-8", "Grupo Olivares S.L.", ("grupo-olivares.test",))

DEMO_ORGANIZATIONS: tuple[DemoOrganization, ...] = (
    NORTHWIND,
    KESSLER,
    DELACROIX,
    HUAXIN,
    SAKURAI,
    POLYARNY,
    NAKHEEL,
    OLIVARES,
)


def _person(
    pid: str, name: str, email: str, org: DemoOrganization, owner: str = DANA.id
) -> DemoPerson:
    return DemoPerson(
        id=pid, name=name, emails=(email,), organization_id=org.id, owner_user_id=owner
    )


SARAH = DemoPerson(
    id="person-1",
    name="Sarah O'Connor",
    # A second address at the same company: R12 matches either.
    emails=("sarah.oconnor@northwind-freight.test", "s.oconnor@northwind-freight.test"),
    organization_id=NORTHWIND.id,
    owner_user_id=DANA.id,
)
JAMES = _person("person-2", "James Whitaker", "j.whitaker@northwind-freight.test", NORTHWIND)
JUERGEN = _person("person-3", "Jürgen Keßler", "juergen.kessler@kessler-praezision.test", KESSLER)
KATRIN = _person("person-4", "Katrin Vogel", "katrin.vogel@kessler-präzision.test", KESSLER)
ELODIE = _person("person-5", "Élodie Marchand", "elodie.marchand@maison-delacroix.test", DELACROIX)
FRANCOIS = _person("person-6", "François Lemaire", "f.lemaire@maison-delacroix.test", DELACROIX)
WANG_WEI = _person("person-7", "王伟 (Wang Wei)", "wang.wei@huaxin-elec.test", HUAXIN, MARCO.id)
CHEN_MEILING = _person("person-8", "陳美玲 (Chen Mei-ling)", "meiling.chen@huaxin-tw.test", HUAXIN)
SATO_KEN = _person("person-9", "佐藤 健 (Ken Sato)", "k.sato@sakurai-seiki.test", SAKURAI)
YAMAMOTO_YUMI = _person(
    "person-10", "山本 由美 (Yumi Yamamoto)", "y.yamamoto@sakurai-seiki.test", SAKURAI
)
ALEXEI = _person("person-11", "Алексей Смирнов", "a.smirnov@polyarny-veter.test", POLYARNY)
OLGA = _person("person-12", "Ольга Иванова", "o.ivanova@polyarny-veter.test", POLYARNY)
AHMED = _person(
    "person-13", "أحمد الفارسي (Ahmed Al-Farsi)", "ahmed@alnakheel-trading.test", NAKHEEL
)
LUCIA = _person("person-14", "Lucía Fernández", "lucia.fernandez@grupo-olivares.test", OLIVARES)
JAVIER = _person("person-15", "Javier Morales", "j.morales@grupo-olivares.test", OLIVARES)

DEMO_PERSONS: tuple[DemoPerson, ...] = (
    SARAH,
    JAMES,
    JUERGEN,
    KATRIN,
    ELODIE,
    FRANCOIS,
    WANG_WEI,
    CHEN_MEILING,
    SATO_KEN,
    YAMAMOTO_YUMI,
    ALEXEI,
    OLGA,
    AHMED,
    LUCIA,
    JAVIER,
)

DEMO_ITEMS: tuple[DemoItem, ...] = (
    DemoItem(
        "deal", "deal-1", "Northwind - EU freight tracking rollout", "open",
        (SARAH.id,), NORTHWIND.id, DANA.id,
    ),
    DemoItem(
        "deal", "deal-2", "Kessler - CNC line retrofit, phase 1", "open",
        (JUERGEN.id,), KESSLER.id, DANA.id,
    ),
    DemoItem(
        "deal", "deal-3", "Kessler - service contract 2025", "open",
        (JUERGEN.id, KATRIN.id), KESSLER.id, DANA.id,
    ),
    DemoItem(
        "deal", "deal-4", "Maison Delacroix - boutique POS integration", "open",
        (ELODIE.id,), DELACROIX.id, DANA.id,
    ),
    DemoItem(
        "deal", "deal-5", "Huaxin - APAC distributor agreement", "open",
        (WANG_WEI.id,), HUAXIN.id, MARCO.id,
    ),
    DemoItem(
        "deal", "deal-6", "Sakurai Seiki - pilot licence", "won",
        (SATO_KEN.id,), SAKURAI.id, DANA.id,
    ),
    DemoItem(
        "deal", "deal-7", "Polyarny Veter - fleet telematics", "lost",
        (ALEXEI.id,), POLYARNY.id, DANA.id,
    ),
    DemoItem(
        "lead", "lead-1", "Grupo Olivares - demo request from the Valencia fair", "open",
        (LUCIA.id,), OLIVARES.id, DANA.id,
    ),
    DemoItem(
        "lead", "lead-2", "Grupo Olivares - trade fair contact", "archived",
        (JAVIER.id,), OLIVARES.id, DANA.id,
    ),
    DemoItem(
        "project", "project-1", "Sakurai Seiki - onboarding and training", "open",
        (SATO_KEN.id, YAMAMOTO_YUMI.id), SAKURAI.id, DANA.id,
    ),
)  # fmt: skip


def _entity(
    record: DemoUser | DemoTeam | DemoOrganization | DemoPerson | DemoItem,
) -> dict[str, Any]:
    """The entity payload of `crm.entity.upserted`, as libs/contracts (crm.py) shapes it."""
    match record:
        case DemoUser():
            return {
                "kind": "user",
                "id": record.id,
                "name": record.name,
                "email": record.email,
                "alternative_emails": list(record.alternative_emails),
                "linking_mode": record.linking_mode,
                "team_ids": list(record.team_ids),
                "is_admin": record.is_admin,
                "plan": "ultimate",
            }
        case DemoTeam():
            return {
                "kind": "team",
                "id": record.id,
                "name": record.name,
                "member_user_ids": list(record.member_user_ids),
            }
        case DemoOrganization():
            return {
                "kind": "organization",
                "id": record.id,
                "name": record.name,
                "domains": list(record.domains),
            }
        case DemoPerson():
            return {
                "kind": "person",
                "id": record.id,
                "name": record.name,
                "emails": list(record.emails),
                "organization_id": record.organization_id,
                "owner_user_id": record.owner_user_id,
            }
        case DemoItem():
            return {
                "kind": record.kind,
                "id": record.id,
                "title": record.title,
                "status": record.status,
                "person_ids": list(record.person_ids),
                "organization_id": record.organization_id,
                "owner_user_id": record.owner_user_id,
                "visible_to": "company",
                "archived": False,
            }


def demo_crm_records() -> list[dict[str, Any]]:
    """Every demo entity payload, referenced entities before the ones that reference them."""
    records: list[DemoUser | DemoTeam | DemoOrganization | DemoPerson | DemoItem] = [
        *DEMO_TEAMS,
        *DEMO_USERS,
        *DEMO_ORGANIZATIONS,
        *DEMO_PERSONS,
        *DEMO_ITEMS,
    ]
    return [_entity(record) for record in records]


def _rfc3339_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def demo_crm_entities(company_id: str, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """`crm.entity.upserted` envelopes for the whole demo CRM, ready to JSON-encode and publish
    on `crm.entities.v1` with `record_key(envelope)` as the key.

    `now` (tz-aware; default: the current time) only sets the envelope `time`; the event id
    depends on the company and the entity content alone.
    """
    moment = datetime.now(UTC) if now is None else now
    if moment.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    time = _rfc3339_utc(moment)
    envelopes: list[dict[str, Any]] = []
    for entity in demo_crm_records():
        key = f"{entity['kind']}:{entity['id']}"
        content = json.dumps(entity, sort_keys=True, ensure_ascii=False).encode()
        event_id = uuid.uuid5(
            _EVENT_NAMESPACE, f"{company_id}/{key}/{hashlib.sha256(content).hexdigest()}"
        )
        envelopes.append(
            {
                "id": str(event_id),
                "type": "crm.entity.upserted",
                "source": "crm",
                "time": time,
                "schema_version": 1,
                "company_id": company_id,
                "data": {"entity": entity},
            }
        )
    return envelopes


def record_key(envelope: Mapping[str, Any]) -> str:
    """The `crm.entities.v1` record key, "<kind>:<id>", of an upserted or deleted envelope."""
    data = envelope["data"]
    if "entity" in data:
        return f"{data['entity']['kind']}:{data['entity']['id']}"
    return f"{data['kind']}:{data['entity_id']}"
