"""`model_json_schema()` snapshots, one per type, in `schemas/<type>.schema.json`.

A changed schema fails here so that the change is a decision, not an accident. To accept
intended changes (within `.v1`: added optional fields only), regenerate every snapshot with

    MAILSYNC_UPDATE_SNAPSHOTS=1 uv run --frozen pytest tests/contracts -q

and review the diff. Golden payloads are also checked against the snapshots, so the schema
published to other teams (AsyncAPI) describes what is really on the wire.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from mailsync_contracts import EVENT_TYPES

SCHEMAS = Path(__file__).parent / "schemas"
GOLDEN = Path(__file__).parent / "golden"
UPDATE_SNAPSHOTS = os.environ.get("MAILSYNC_UPDATE_SNAPSHOTS") == "1"
REGENERATE = "MAILSYNC_UPDATE_SNAPSHOTS=1 uv run --frozen pytest tests/contracts"


def _snapshot_path(event_type: str) -> Path:
    return SCHEMAS / f"{event_type}.schema.json"


def _read_snapshot(event_type: str) -> Any:
    return json.loads(_snapshot_path(event_type).read_text(encoding="utf-8"))


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_json_schema_of_each_type_matches_its_snapshot(event_type: str) -> None:
    schema = EVENT_TYPES[event_type].model_json_schema()
    path = _snapshot_path(event_type)
    if UPDATE_SNAPSHOTS:
        rendered = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"no snapshot for {event_type}; create it with {REGENERATE}"
    assert _read_snapshot(event_type) == schema, (
        f"the JSON schema of {event_type} changed; if intended, regenerate with {REGENERATE}"
    )


def test_no_snapshot_is_left_for_a_type_the_contract_no_longer_has() -> None:
    snapshot_types = {path.name.removesuffix(".schema.json") for path in SCHEMAS.glob("*.json")}

    assert snapshot_types == set(EVENT_TYPES)


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.json")), ids=lambda path: path.stem)
def test_golden_payload_validates_against_the_snapshot_schema(path: Path) -> None:
    event_type = path.stem.split("+", 1)[0]
    validator = Draft202012Validator(_read_snapshot(event_type))

    errors = [error.message for error in validator.iter_errors(json.loads(path.read_bytes()))]

    assert errors == []


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_schema_requires_type_and_schema_version_which_every_producer_writes(
    event_type: str,
) -> None:
    schema = EVENT_TYPES[event_type].model_json_schema()

    assert {"id", "type", "source", "time", "schema_version", "company_id", "data"} <= set(
        schema["required"]
    )
    assert schema["properties"]["type"]["const"] == event_type
