"""The ten mailsync topics: their names, what their records are keyed by, and their size.

Invariants: a name ends in its contract version (`.v1`); a breaking change is a new topic,
never an edit of these. The key gives the only ordering Kafka guarantees, so it is chosen as
the thing whose events must stay in order (ARCHITECTURE §1): the account for account and
ingest streams, the thread for thread streams.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

CRM_ENTITIES: Final = "crm.entities.v1"
ACCOUNT_COMMANDS: Final = "mail.account.commands.v1"
ACCOUNTS: Final = "mail.accounts.v1"
INGESTED: Final = "mail.ingested.v1"
THREADS: Final = "mail.threads.v1"
THREAD_COMMANDS: Final = "mail.thread.commands.v1"
SEND_COMMANDS: Final = "mail.send.commands.v1"
OUTBOUND: Final = "mail.outbound.v1"
TRACKING: Final = "mail.tracking.v1"
DEADLETTER: Final = "mail.deadletter.v1"

ALL_TOPICS: tuple[str, ...] = (
    CRM_ENTITIES,
    ACCOUNT_COMMANDS,
    ACCOUNTS,
    INGESTED,
    THREADS,
    THREAD_COMMANDS,
    SEND_COMMANDS,
    OUTBOUND,
    TRACKING,
    DEADLETTER,
)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """How a topic is keyed and sized; deploy/k8s renders its KafkaTopic from this.

    `partitions` is sized by expected volume: per-message streams (ingested, threads, tracking)
    get more, command and control streams fewer. Raising it later re-keys records in flight,
    so it errs high; deploy/k8s/base/topics pins the same numbers.
    """

    name: str
    key: str
    partitions: int
    summary: str


TOPIC_SPECS: Mapping[str, TopicSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            TopicSpec(
                CRM_ENTITIES,
                "<kind>:<id> of the CRM record",
                12,
                "CRM people, organizations, deals, leads, projects, users and teams",
            ),
            TopicSpec(
                ACCOUNT_COMMANDS,
                "account id",
                12,
                "CRM asks ingest to connect, configure, disconnect or reauthenticate an account",
            ),
            TopicSpec(
                ACCOUNTS,
                "account id",
                12,
                "ingest reports account lifecycle and sync progress",
            ),
            TopicSpec(
                INGESTED,
                "account id",
                24,
                "ingest's normalized messages, expunges and screenings, in mailbox order",
            ),
            TopicSpec(
                THREADS,
                "thread id",
                24,
                "linker's thread state changes for CRM consumers",
            ),
            TopicSpec(
                THREAD_COMMANDS,
                "thread id",
                12,
                "CRM users archive, delete, link, unlink, share and read threads",
            ),
            TopicSpec(
                SEND_COMMANDS,
                "idempotency key",
                12,
                "CRM asks outbound to send one message or a group email",
            ),
            TopicSpec(
                OUTBOUND,
                "account id",
                12,
                "outbound reports sends and mailbox mirroring",
            ),
            TopicSpec(
                TRACKING,
                "message id (RFC 5322 Message-ID of the sent message)",
                24,
                "tracking reports opens and clicks with their bot verdict",
            ),
            TopicSpec(
                DEADLETTER,
                "original key (of the record that was set aside)",
                6,
                "records some consumer could not process, with the reason, for replay",
            ),
        )
    }
)
