"""The demo data `make run` seeds: the demo CRM (published on `crm.entities.v1`) and the demo
mailbox of its salesperson (appended to Dovecot). Both are pure functions of their arguments;
the details live in demo_crm and demo_mailbox.
"""

from mailsync_devstack.demo_crm import (
    CRM_ENTITIES_TOPIC,
    DEMO_COLLEAGUE_EMAIL,
    DEMO_COMPANY_ID,
    DEMO_ITEMS,
    DEMO_ORGANIZATIONS,
    DEMO_OWNER_EMAIL,
    DEMO_OWNER_USER_ID,
    DEMO_PERSONS,
    DEMO_TEAMS,
    DEMO_USERS,
    demo_crm_entities,
    demo_crm_records,
    record_key,
)
from mailsync_devstack.demo_mailbox import DemoMessage, demo_mailbox, message_id

__all__ = [
    "CRM_ENTITIES_TOPIC",
    "DEMO_COLLEAGUE_EMAIL",
    "DEMO_COMPANY_ID",
    "DEMO_ITEMS",
    "DEMO_ORGANIZATIONS",
    "DEMO_OWNER_EMAIL",
    "DEMO_OWNER_USER_ID",
    "DEMO_PERSONS",
    "DEMO_TEAMS",
    "DEMO_USERS",
    "DemoMessage",
    "demo_crm_entities",
    "demo_crm_records",
    "demo_mailbox",
    "message_id",
    "record_key",
]
