"""The AsyncAPI documents rendered from the services' apps describe the contract's topics
with the contract's payloads, and every reference in them resolves."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mailsync_contracts.topics import (
    ACCOUNT_COMMANDS,
    ACCOUNTS,
    ALL_TOPICS,
    CRM_ENTITIES,
    DEADLETTER,
    INGESTED,
    OUTBOUND,
    THREAD_COMMANDS,
    THREADS,
)
from mailsync_devstack.asyncapi import documents

EXPECTED = {
    "ingest": ({ACCOUNT_COMMANDS}, {INGESTED, ACCOUNTS, DEADLETTER}),
    "linker": (
        {CRM_ENTITIES, INGESTED, ACCOUNTS, OUTBOUND, THREAD_COMMANDS},
        {THREADS, DEADLETTER},
    ),
    "outbound": ({ACCOUNTS}, {DEADLETTER}),
    "tracking": (set(), {DEADLETTER}),
}


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, Any]]:
    return documents()


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


@pytest.mark.parametrize("service", sorted(EXPECTED))
def test_each_service_documents_the_topics_it_reads_and_writes(
    rendered: dict[str, dict[str, Any]], service: str
) -> None:
    document = rendered[service]
    assert document["asyncapi"].startswith("3.")
    received: set[str] = set()
    sent: set[str] = set()
    for operation in document.get("operations", {}).values():
        channel = _resolve(document, operation["channel"]["$ref"])
        (received if operation["action"] == "receive" else sent).add(channel["address"])
    assert (received, sent) == EXPECTED[service]
    assert received | sent <= set(ALL_TOPICS)


@pytest.mark.parametrize("service", sorted(EXPECTED))
def test_every_message_payload_is_the_topics_contract_and_every_reference_resolves(
    rendered: dict[str, dict[str, Any]], service: str
) -> None:
    document = rendered[service]
    for name, message in document["components"]["messages"].items():
        topic = name.split(":", 1)[0]
        payload = _resolve(document, message["payload"]["$ref"])
        options = [
            _resolve(document, o["$ref"]) if "$ref" in o else o
            for o in payload.get("oneOf", [payload])  # a topic with one type has no union
        ]
        listed = {option["properties"]["type"]["const"] for option in options}
        assert listed, f"{topic} lists no event types"
        assert all(t.startswith(("mail.", "crm.")) for t in listed)
    for ref in _refs(document):
        _resolve(document, ref)
