"""The AsyncAPI 3.0 document of a service, rendered from its built (not started) app.

faststream describes the channels the broker subscribes and publishes to; our subscribers
read raw bytes (so they can dead-letter what does not decode), which faststream cannot see
through, so each channel's payload is filled in from the contract: the topic's discriminated
union of event types, with every model's JSON schema under `components.schemas`.
"""

from __future__ import annotations

from typing import Any

from faststream.specification import AsyncAPI
from starlette.applications import Starlette

from mailsync_contracts import TOPIC_ADAPTERS
from mailsync_platform.service import Runtime

REF_TEMPLATE = "#/components/schemas/{model}"


def render(app: Starlette, version: str) -> dict[str, Any]:
    runtime: Runtime = app.state.runtime
    document: dict[str, Any] = (
        AsyncAPI(
            runtime.broker,
            title=f"mailsync-{runtime.service}",
            version=version,
            description=f"Topics the mailsync {runtime.service} service reads and writes.",
        )
        .to_specification()
        .to_jsonable()
    )
    components = document.setdefault("components", {})
    schemas: dict[str, Any] = components.setdefault("schemas", {})
    messages: dict[str, Any] = components.setdefault("messages", {})
    for name, message in messages.items():
        # faststream names messages "<topic>:<handler or publisher>:<kind>".
        topic = name.split(":", 1)[0]
        adapter = TOPIC_ADAPTERS.get(topic)
        if adapter is None:
            continue
        schema_name = f"{topic}.events"
        if schema_name not in schemas:
            union = adapter.json_schema(ref_template=REF_TEMPLATE, by_alias=True)
            schemas.update(union.pop("$defs", {}))
            schemas[schema_name] = union
        placeholder = message.get("payload", {}).get("$ref", "").rsplit("/", 1)[-1]
        if placeholder != schema_name:
            schemas.pop(placeholder, None)
        message["payload"] = {"$ref": REF_TEMPLATE.format(model=schema_name)}
    return document
