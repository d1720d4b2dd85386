"""Golden payloads: one realistic record per type, as other services and the CRM write them.

A golden file is `golden/<type>.json`, or `golden/<type>+<variant>.json` for another shape of
the same type (the CRM entity kinds). They are written by hand and never regenerated from the
models: a test failing here means the wire format moved, which within `.v1` only an added
optional field may do (ARCHITECTURE §2).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import pytest

from mailsync_contracts import EVENT_TYPES, TOPIC_OF_TYPE, CrmEntityUpserted, EntityKind, decode

GOLDEN = Path(__file__).parent / "golden"
GOLDEN_FILES = sorted(GOLDEN.glob("*.json"))


def _type_of(path: Path) -> str:
    return path.stem.split("+", 1)[0]


def _json(raw: bytes) -> Any:
    return json.loads(raw)


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda path: path.stem)
def test_golden_payload_decodes_on_its_topic_and_survives_a_round_trip(path: Path) -> None:
    event_type = _type_of(path)
    topic = TOPIC_OF_TYPE[event_type]

    event = decode(topic, path.read_bytes())

    assert type(event) is EVENT_TYPES[event_type]
    assert event.type == event_type
    assert decode(topic, event.to_bytes()) == event


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda path: path.stem)
def test_golden_payload_is_exactly_what_the_model_writes_back(path: Path) -> None:
    # The tolerant reader ignores unknown fields, so a renamed field would decode silently;
    # writing the event back and comparing with the golden catches it.
    raw = path.read_bytes()
    event = decode(TOPIC_OF_TYPE[_type_of(path)], raw)

    assert _json(event.to_bytes()) == _json(raw)


def test_every_type_of_the_contract_has_a_golden_payload_and_no_golden_is_orphaned() -> None:
    assert {_type_of(path) for path in GOLDEN_FILES} == set(EVENT_TYPES)


def test_every_crm_entity_kind_has_a_golden_upsert() -> None:
    kinds = set()
    for path in GOLDEN_FILES:
        if _type_of(path) == "crm.entity.upserted":
            kinds.add(CrmEntityUpserted.from_bytes(path.read_bytes()).data.entity.kind)

    assert kinds == set(get_args(EntityKind))
