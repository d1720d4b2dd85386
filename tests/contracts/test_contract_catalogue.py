"""The catalogue matches ARCHITECTURE §2: every topic, its key, and every type it lists.

The table below is copied from ARCHITECTURE.md §2 on purpose (tests read nothing outside the
repository): a type removed from the code, or moved to another topic, fails here.
"""

from __future__ import annotations

from typing import get_args

import pytest

from mailsync_contracts import (
    ALL_TOPICS,
    EVENT_TYPES,
    TOPIC_ADAPTERS,
    TOPIC_EVENTS,
    TOPIC_OF_TYPE,
    TOPIC_SPECS,
    EntityKind,
    topics,
)

ARCHITECTURE_SECTION_2 = {
    "crm.entities.v1": ("<kind>:<id>", ("crm.entity.upserted", "crm.entity.deleted")),
    "mail.account.commands.v1": (
        "account id",
        (
            "mail.account.connect",
            "mail.account.update_settings",
            "mail.account.disconnect",
            "mail.account.set_default",
            "mail.account.reauthenticate",
        ),
    ),
    "mail.accounts.v1": (
        "account id",
        (
            "mail.account.connected",
            "mail.account.rejected",
            "mail.account.sync_progress",
            "mail.account.synced",
            "mail.account.reauth_required",
            "mail.account.disconnected",
        ),
    ),
    "mail.ingested.v1": (
        "account id",
        ("mail.message.ingested", "mail.message.expunged", "mail.message.screened"),
    ),
    "mail.threads.v1": (
        "thread id",
        (
            "mail.thread.updated",
            "mail.thread.link_choice_needed",
            "mail.thread.archived",
            "mail.thread.unarchived",
            "mail.thread.deleted",
            "mail.message.deleted",
        ),
    ),
    "mail.thread.commands.v1": (
        "thread id",
        (
            "mail.thread.archive",
            "mail.thread.unarchive",
            "mail.thread.delete",
            "mail.message.delete",
            "mail.thread.link",
            "mail.thread.unlink",
            "mail.thread.set_visibility",
            "mail.thread.mark_read",
        ),
    ),
    "mail.send.commands.v1": (
        "idempotency key",
        ("mail.send.requested", "mail.group_send.requested"),
    ),
    "mail.outbound.v1": (
        "account id",
        ("mail.message.sent", "mail.send.failed", "mail.mirror.applied", "mail.mirror.failed"),
    ),
    "mail.tracking.v1": ("message id", ("mail.message.opened", "mail.link.clicked")),
    "mail.deadletter.v1": ("original key", ("mail.deadletter.recorded",)),
}


def test_the_topics_are_the_ten_of_architecture_section_2_with_their_constants() -> None:
    constants = (
        topics.CRM_ENTITIES,
        topics.ACCOUNT_COMMANDS,
        topics.ACCOUNTS,
        topics.INGESTED,
        topics.THREADS,
        topics.THREAD_COMMANDS,
        topics.SEND_COMMANDS,
        topics.OUTBOUND,
        topics.TRACKING,
        topics.DEADLETTER,
    )

    assert constants == ALL_TOPICS
    assert set(ALL_TOPICS) == set(ARCHITECTURE_SECTION_2)


@pytest.mark.parametrize("topic", ALL_TOPICS)
def test_every_topic_has_a_union_an_adapter_and_a_spec(topic: str) -> None:
    spec = TOPIC_SPECS[topic]

    assert TOPIC_EVENTS[topic]
    assert topic in TOPIC_ADAPTERS
    assert spec.name == topic
    assert spec.partitions >= 1
    assert topic.endswith(".v1")


@pytest.mark.parametrize("topic", ALL_TOPICS)
def test_every_topic_is_keyed_as_architecture_section_2_says(topic: str) -> None:
    key, _ = ARCHITECTURE_SECTION_2[topic]

    assert TOPIC_SPECS[topic].key.startswith(key)


@pytest.mark.parametrize(
    ("topic", "event_type"),
    [(topic, t) for topic, (_, types) in ARCHITECTURE_SECTION_2.items() for t in types],
)
def test_every_type_named_in_architecture_section_2_has_a_model_on_its_topic(
    topic: str, event_type: str
) -> None:
    assert event_type in EVENT_TYPES
    assert TOPIC_OF_TYPE[event_type] == topic


def test_each_type_travels_on_exactly_one_topic() -> None:
    listed = [cls.type_name() for classes in TOPIC_EVENTS.values() for cls in classes]

    assert len(listed) == len(set(listed)) == len(EVENT_TYPES)


@pytest.mark.parametrize("topic", [t for t in ALL_TOPICS if len(TOPIC_EVENTS[t]) > 1])
def test_each_topic_adapter_discriminates_on_type(topic: str) -> None:
    schema = TOPIC_ADAPTERS[topic].json_schema()

    assert schema["discriminator"]["propertyName"] == "type"
    assert set(schema["discriminator"]["mapping"]) == {
        cls.type_name() for cls in TOPIC_EVENTS[topic]
    }


def test_crm_entity_kinds_are_the_seven_of_architecture_section_2() -> None:
    assert set(get_args(EntityKind)) == {
        "person",
        "organization",
        "deal",
        "lead",
        "project",
        "user",
        "team",
    }
