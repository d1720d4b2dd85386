"""The linker's read API (ARCHITECTURE §3): the Sales Inbox, the conversation view, the
detail-view history of an item, and attachment and raw message downloads, under `/v1`.

Invariants:
- every route, the OpenAPI document included, answers only a caller presenting the service
  bearer token (`MAILSYNC_SERVICE_TOKEN`, compared in constant time); without a configured token
  every route answers 503 and the consumers run on. The acting user is named by
  `X-Company-Id` and `X-User-Id` (400 without them);
- every answer is filtered by R14–R16 for that user (`visibility.py` is the definition: single
  objects are judged by it, lists by the SQL of `queries.py` that mirrors it), and nothing
  crosses companies;
- a thread or item the user may not see answers exactly like one that does not exist (404,
  same body), so ids leak nothing; links to items the user may not see are left out;
- mail HTML is served sanitized (`sanitize.sanitize_html`: no script, no handler, no remote
  fetch, no own tracking pixel, R24); attachments and raw messages are served as downloads
  (`Content-Disposition: attachment`, `nosniff`, a sandboxing CSP), never rendered inline;
- bodies come from the raw store (claim-check); a raw message that cannot be read costs the
  message its bodies (with `body_unavailable` saying why), never the answer;
- mail content is never logged; answers carry `Cache-Control: no-store` (they depend on who
  asks, and on visibility that can change).

The app is a FastAPI sub-application mounted into the service's Starlette app by `routes`;
it reaches Postgres through the runtime's pool, and opens the raw store on first use.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import functools
import hashlib
import hmac
import json
import logging
import mimetypes
import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from starlette.routing import BaseRoute, Mount

from mailsync_contracts import AccountType, LinkKind, Visibility
from mailsync_contracts.values import LinkOrigin
from mailsync_linker import queries
from mailsync_linker.sanitize import sanitize_html
from mailsync_linker.settings import LinkerSettings
from mailsync_linker.visibility import ItemAccess, Viewer, can_open, can_see_item
from mailsync_mime.bodies import AttachmentPart, attachment_payload, read_bodies
from mailsync_platform.database import DbConnection
from mailsync_platform.service import Runtime
from mailsync_rawstore import RawObjectCorrupt, RawObjectMissing, RawStore, RawStoreError

log = logging.getLogger(__name__)

PREFIX = "/v1"
DEFAULT_PAGE = 50
MAX_PAGE = 200
# Raw messages read at once for one conversation: enough to hide the store's latency, few
# enough that one long thread does not take every connection to it.
RAW_READS_IN_FLIGHT = 8
_ID_LENGTH = 200

BodyUnavailable = Literal[
    "not_stored", "too_large", "raw_missing", "raw_corrupt", "raw_store_unavailable", "unreadable"
]
"""Why a message is shown without bodies: no raw message was stored for it (`not_stored`),
only its header was fetched (`too_large`, R4), the store has no such object or it does not
hash to its address, the store could not be reached, or reading it failed."""


# -- what the API reads from -------------------------------------------------------------------


@dataclass(frozen=True)
class ReadSources:
    """The pool (opened by the service's lifespan, hence a callable), the raw store, and the
    settings the routes need."""

    pool: Callable[[], asyncpg.Pool]
    raw_store: Callable[[], RawStore]
    service_token: SecretStr | None
    tracking_base_url: str | None

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[DbConnection]:
        """One connection in a read-only repeatable-read transaction: the visibility facts
        and the rows they admit come from the same state of the database."""
        async with (
            self.pool().acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            yield conn


def create_read_api(
    settings: LinkerSettings,
    pool: Callable[[], asyncpg.Pool],
    raw_store: Callable[[], RawStore],
) -> FastAPI:
    """The read API as an ASGI app (paths relative to its mount point); nothing connects
    until a request needs it."""
    app = FastAPI(
        title="mailsync linker read API",
        version="1",
        description=(
            "Sales Inbox, conversations, detail-view histories and downloads, filtered for "
            "the acting user by the visibility rules R14-R16."
        ),
        openapi_url=None,  # served by `openapi_document`, behind the token like every route
        docs_url=None,
        redoc_url=None,
        # Exceptions and validation failures would be logged with their messages: the
        # service's own JSON logs are the only logs, and they never carry mail content.
        telemetry={"logs": False, "metrics": False},
    )
    app.state.sources = ReadSources(
        pool=pool,
        raw_store=raw_store,
        service_token=settings.service_token,
        tracking_base_url=settings.tracking_base_url,
    )
    app.add_exception_handler(RequestValidationError, _bad_request)
    app.include_router(router)
    return app


def routes(runtime: Runtime) -> list[BaseRoute]:
    """The read API mounted at `/v1`, on the runtime's pool (`ServiceSpec.routes`)."""
    settings = runtime.settings
    if not isinstance(settings, LinkerSettings):
        raise TypeError("the read API needs the linker's settings")
    return [
        Mount(
            PREFIX,
            app=create_read_api(
                settings, lambda: runtime.pool, functools.cache(settings.raw_store)
            ),
        )
    ]


def _sources(request: Request) -> ReadSources:
    sources: ReadSources = request.app.state.sources
    return sources


# -- response models ---------------------------------------------------------------------------


class ApiModel(BaseModel):
    model_config = ConfigDict(frozen=True)


class Problem(ApiModel):
    """Why a request was refused."""

    detail: str | list[dict[str, Any]]


class Address(ApiModel):
    email: str
    name: str | None = None


class ItemLink(ApiModel):
    """A CRM item the thread is linked to (R12, R13); `origin` says whether automation or a
    user made the link."""

    kind: LinkKind
    entity_id: str
    origin: LinkOrigin


class ThreadSummary(ApiModel):
    """A conversation as lists show it. `participants` are the customers on it (not the
    account's own addresses, not colleagues); `unread` is its state in its mailbox."""

    thread_id: UUID
    account_id: str
    subject: str
    snippet: str = Field(description="Snippet of the latest message.")
    participants: list[Address]
    last_message_at: datetime | None
    message_count: int
    unread: bool
    archived: bool
    visibility: Visibility
    links: list[ItemLink] = Field(description="Links to the items the acting user may see.")


class AccountUnread(ApiModel):
    account_id: str
    email: str
    account_type: AccountType
    unread_threads: int = Field(description="Unread threads in the inbox (not archived).")


class UnreadCounts(ApiModel):
    total: int
    accounts: list[AccountUnread] = Field(description="Every account the acting user manages.")


class InboxPage(ApiModel):
    threads: list[ThreadSummary]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )
    unread: UnreadCounts


class ItemHistoryPage(ApiModel):
    kind: LinkKind
    item_id: str
    threads: list[ThreadSummary]
    next_cursor: str | None


class Attachment(ApiModel):
    """An attachment, addressed by its index in the message's attachment list. `inline` says
    the sender meant it to be shown within the body (an image the HTML refers to by cid)."""

    index: int
    filename: str | None
    content_type: str
    size: int
    content_id: str | None
    inline: bool
    download_path: str


class Message(ApiModel):
    message_id: UUID
    sender: Address | None = Field(serialization_alias="from")
    to: list[Address]
    cc: list[Address]
    subject: str
    sent_at: datetime | None
    snippet: str
    outgoing: bool
    text: str | None = Field(description="The text/plain body; null when the message has none.")
    html: str | None = Field(
        description=(
            "The HTML body, sanitized: no script, event handler, form or frame; remote images "
            "moved to data-remote-src (nothing is fetched); the tracking service's open "
            "pixels removed; inline cid images pointing at their download path."
        )
    )
    attachments: list[Attachment]
    parse_error: str | None
    too_large: bool
    body_unavailable: BodyUnavailable | None
    raw_path: str


class ThreadDetail(ThreadSummary):
    messages: list[Message] = Field(description="Oldest first.")


# -- authentication and the acting user --------------------------------------------------------


_bearer = HTTPBearer(
    auto_error=False,
    description="The service token the CRM presents (MAILSYNC_SERVICE_TOKEN of the linker).",
)


def _same_secret(presented: str, expected: str) -> bool:
    # Digests first: compare_digest is constant-time only for inputs of equal length.
    return hmac.compare_digest(
        hashlib.sha256(presented.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )


async def _service_caller(
    request: Request,
    response: Response,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """The caller is the CRM: it presents the configured service token."""
    expected = _sources(request).service_token
    if expected is None:
        raise HTTPException(
            503, "the read API is disabled: the linker has no MAILSYNC_SERVICE_TOKEN configured"
        )
    presented = "" if credentials is None else credentials.credentials
    if not _same_secret(presented, expected.get_secret_value()):
        raise HTTPException(
            401, "a valid service bearer token is required", {"WWW-Authenticate": "Bearer"}
        )
    # Answers depend on who asks: nothing between the CRM and here may keep them.
    response.headers["Cache-Control"] = "no-store"


@dataclass(frozen=True, slots=True)
class ActingUser:
    company_id: str
    user_id: str


async def _acting_user(
    _: Annotated[None, Depends(_service_caller)],
    company_id: Annotated[
        str,
        Header(
            alias="X-Company-Id",
            min_length=1,
            max_length=_ID_LENGTH,
            description="The company of the user the CRM acts for.",
        ),
    ],
    user_id: Annotated[
        str,
        Header(
            alias="X-User-Id",
            min_length=1,
            max_length=_ID_LENGTH,
            description="The CRM user the request is made for; answers are filtered for them.",
        ),
    ],
) -> ActingUser:
    return ActingUser(company_id, user_id)


User = Annotated[ActingUser, Depends(_acting_user)]


async def _bad_request(request: Request, exc: Exception) -> Response:
    """A request the API cannot read is the caller's mistake: 400, with where and why (the
    offending values are not echoed)."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [{"loc": list(error.get("loc", ())), "msg": error.get("msg", "")} for error in errors]
    return JSONResponse({"detail": detail}, status_code=400)


def _not_found(what: str) -> HTTPException:
    # Not to be kept either: the same id may become visible to the same user.
    return HTTPException(404, f"no such {what}", {"Cache-Control": "no-store"})


# -- routes ------------------------------------------------------------------------------------

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "Missing user headers or invalid parameters."},
    401: {"model": Problem, "description": "Missing or wrong service token."},
    503: {"model": Problem, "description": "The read API has no token configured."},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "Unknown, or not visible to the acting user."}
}
_DOWNLOAD: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The bytes, as a download.",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
    **_NOT_FOUND,
}

router = APIRouter(responses=_ERRORS)

PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Threads per page.")]
Cursor = Annotated[
    str | None, Query(max_length=500, description="`next_cursor` of the previous page.")
]


@router.get("/openapi.json", include_in_schema=False, dependencies=[Depends(_service_caller)])
async def openapi_document(request: Request) -> JSONResponse:
    """The OpenAPI document, less the 422 answers FastAPI assumes: this API answers 400."""
    document = copy.deepcopy(request.app.openapi())
    for operations in document["paths"].values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    schemas = document.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    mounted_at = str(request.scope.get("root_path", "")).rstrip("/")
    if mounted_at:
        document["servers"] = [{"url": mounted_at}]
    return JSONResponse(document)


@router.get("/inbox", response_model=InboxPage, responses=_NOT_FOUND, operation_id="inbox")
async def inbox(
    request: Request,
    user: User,
    account_id: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=_ID_LENGTH,
            description="Only this account's threads (it must be one the user manages).",
        ),
    ] = None,
    folder: Annotated[
        Literal["inbox", "archive"], Query(description="Inbox, or the Archive folder (R17).")
    ] = "inbox",
    limit: PageSize = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> InboxPage:
    """The Sales Inbox of the acting user (R16): threads of the accounts they manage (their
    own, and team accounts they are a member of, R2), and shared threads one of their own
    addresses is on; newest first. Also the unread counts of the accounts they manage."""
    after = _decode_cursor(cursor)
    sources = _sources(request)
    async with sources.snapshot() as conn:
        viewer = await queries.viewer(conn, user.company_id, user.user_id)
        accounts = await queries.managed_accounts(conn, user.company_id, user.user_id)
        if account_id is not None and account_id not in {a.account_id for a in accounts}:
            raise _not_found("account")
        found = await queries.inbox_page(
            conn,
            viewer,
            archived=folder == "archive",
            account_id=account_id,
            limit=limit + 1,
            after=after,
        )
        page = found[:limit]
        items = await _linked_items(conn, viewer, page)
    return InboxPage(
        threads=[_summary(thread, items) for thread in page],
        next_cursor=_next_cursor(found, limit),
        unread=UnreadCounts(
            total=sum(a.unread_threads for a in accounts),
            accounts=[
                AccountUnread.model_validate(
                    {
                        "account_id": a.account_id,
                        "email": a.email,
                        "account_type": a.account_type,
                        "unread_threads": a.unread_threads,
                    }
                )
                for a in accounts
            ],
        ),
    )


@router.get(
    "/items/{kind}/{item_id}/threads",
    response_model=ItemHistoryPage,
    responses=_NOT_FOUND,
    operation_id="item_history",
)
async def item_history(
    request: Request,
    user: User,
    kind: Annotated[LinkKind, Path(description="The kind of CRM item.")],
    item_id: Annotated[str, Path(min_length=1, max_length=_ID_LENGTH)],
    limit: PageSize = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> ItemHistoryPage:
    """The email history of an item's detail view (R14): threads linked to it that are
    shared, or that the acting user manages; archived ones included (R17), newest first."""
    after = _decode_cursor(cursor)
    sources = _sources(request)
    async with sources.snapshot() as conn:
        viewer = await queries.viewer(conn, user.company_id, user.user_id)
        item = (await queries.items_access(conn, user.company_id, [(kind, item_id)])).get(
            (kind, item_id)
        )
        if item is None or not can_see_item(viewer, user.company_id, item):
            raise _not_found("item")
        found = await queries.item_history_page(
            conn, viewer, kind=kind, item_id=item_id, limit=limit + 1, after=after
        )
        page = found[:limit]
        items = await _linked_items(conn, viewer, page)
    return ItemHistoryPage(
        kind=kind,
        item_id=item_id,
        threads=[_summary(thread, items) for thread in page],
        next_cursor=_next_cursor(found, limit),
    )


@router.get(
    "/threads/{thread_id}",
    response_model=ThreadDetail,
    response_model_by_alias=True,
    responses=_NOT_FOUND,
    operation_id="thread",
)
async def thread(request: Request, user: User, thread_id: str) -> ThreadDetail:
    """A conversation with its messages, oldest first, for a user who may open it: from
    their inbox, or from the detail view of an item they can see (R14, R16)."""
    key = _uuid(thread_id, "thread")
    sources = _sources(request)
    async with sources.snapshot() as conn:
        viewer = await queries.viewer(conn, user.company_id, user.user_id)
        facts = await _openable(conn, viewer, key)
        messages = await queries.thread_messages(conn, key)
    # The connection is back in the pool before the raw store is read.
    visible = {(item.kind, item.item_id) for item in facts.access.items if _may_see(viewer, item)}
    shown = await _show_messages(request, sources, key, messages)
    summary = _summary_fields(facts.summary, visible)
    return ThreadDetail.model_validate({**summary, "messages": shown})


@router.get(
    "/threads/{thread_id}/messages/{message_id}/attachments/{index}",
    response_class=Response,
    responses=_DOWNLOAD,
    operation_id="attachment",
)
async def attachment(
    request: Request, user: User, thread_id: str, message_id: str, index: int
) -> Response:
    """One attachment's bytes (transfer encoding undone), always as a download."""
    raw = await _raw_message(request, user, thread_id, message_id)
    try:
        part, content = await asyncio.to_thread(attachment_payload, raw, index)
    except LookupError:
        raise _not_found("attachment") from None
    return _download(content, _content_type(part.content_type), _filename(part))


@router.get(
    "/threads/{thread_id}/messages/{message_id}/raw",
    response_class=Response,
    responses=_DOWNLOAD,
    operation_id="raw_message",
)
async def raw_message(request: Request, user: User, thread_id: str, message_id: str) -> Response:
    """The message as it was received (RFC 5322), as a download."""
    raw = await _raw_message(request, user, thread_id, message_id)
    return _download(raw, "message/rfc822", f"message-{message_id}.eml")


# -- visibility of single objects --------------------------------------------------------------


async def _openable(conn: DbConnection, viewer: Viewer, thread_id: UUID) -> queries.ThreadFacts:
    """The thread when the viewer may open it (visibility.can_open); else 404, the same as
    for a thread that does not exist."""
    facts = await queries.thread_facts(conn, viewer.company_id, thread_id)
    if facts is None or not can_open(viewer, facts.access):
        raise _not_found("thread")
    return facts


async def _linked_items(
    conn: DbConnection, viewer: Viewer, threads: Sequence[queries.ThreadSummary]
) -> set[tuple[str, str]]:
    """The items linked to `threads` that the viewer may see (visibility.can_see_item)."""
    keys = [(link.kind, link.entity_id) for thread in threads for link in thread.links]
    found = await queries.items_access(conn, viewer.company_id, keys)
    return {key for key, item in found.items() if _may_see(viewer, item)}


def _may_see(viewer: Viewer, item: ItemAccess) -> bool:
    return can_see_item(viewer, viewer.company_id, item)


async def _raw_message(
    request: Request, user: ActingUser, thread_id: str, message_id: str
) -> bytes:
    """The raw MIME of a message of a thread the user may open."""
    thread_key = _uuid(thread_id, "thread")
    message_key = _uuid(message_id, "message")
    sources = _sources(request)
    async with sources.snapshot() as conn:
        viewer = await queries.viewer(conn, user.company_id, user.user_id)
        await _openable(conn, viewer, thread_key)
        reference = await queries.raw_reference(conn, thread_key, message_key)
    if reference is None:
        raise _not_found("message")
    raw = await _read_raw(sources, reference.raw_sha256)
    if raw == "raw_store_unavailable":
        raise HTTPException(503, "the raw message store cannot be reached; try again")
    if isinstance(raw, str):
        raise HTTPException(404, "the raw message is not available")
    return raw


# -- thread summaries --------------------------------------------------------------------------


def _summary_fields(
    thread: queries.ThreadSummary, visible_items: set[tuple[str, str]]
) -> dict[str, Any]:
    return {
        "thread_id": thread.thread_id,
        "account_id": thread.account_id,
        "subject": thread.subject,
        "snippet": thread.snippet,
        "participants": [{"email": p.email, "name": p.name} for p in thread.participants],
        "last_message_at": thread.last_message_at,
        "message_count": thread.message_count,
        "unread": thread.unread,
        "archived": thread.archived,
        "visibility": thread.visibility,
        "links": [
            {"kind": link.kind, "entity_id": link.entity_id, "origin": link.origin}
            for link in thread.links
            if (link.kind, link.entity_id) in visible_items
        ],
    }


def _summary(thread: queries.ThreadSummary, visible_items: set[tuple[str, str]]) -> ThreadSummary:
    # Validated from plain values: the database holds the vocabulary the model checks.
    return ThreadSummary.model_validate(_summary_fields(thread, visible_items))


# -- cursors -----------------------------------------------------------------------------------


def _next_cursor(found: Sequence[queries.ThreadSummary], limit: int) -> str | None:
    """A cursor after the page's last thread, when another thread follows it."""
    if len(found) <= limit:
        return None
    position = found[limit - 1].position
    payload = {
        "t": None if position.last_message_at is None else position.last_message_at.isoformat(),
        "i": str(position.thread_id),
    }
    encoded = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode())
    return encoded.decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> queries.Position | None:
    """The position a cursor names. It only says where a page starts: a forged one cannot
    show anything the filters would not."""
    if cursor is None:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment = None if payload["t"] is None else datetime.fromisoformat(payload["t"])
        if moment is not None and moment.tzinfo is None:
            raise ValueError("a cursor's time is timezone-aware")
        return queries.Position(moment, UUID(payload["i"]))
    except (binascii.Error, ValueError, TypeError, KeyError) as exc:
        raise HTTPException(400, "invalid cursor") from exc


def _uuid(value: str, what: str) -> UUID:
    """A path id as a UUID; one that is not a UUID names nothing (404, like a hidden one)."""
    try:
        return UUID(value)
    except ValueError:
        raise _not_found(what) from None


# -- messages and their bodies -----------------------------------------------------------------


async def _read_raw(sources: ReadSources, sha256: str) -> bytes | BodyUnavailable:
    """The raw message, or why it cannot be had."""
    if not sha256:
        return "not_stored"
    try:
        return await sources.raw_store().get(sha256)
    except RawObjectMissing:
        return "raw_missing"
    except RawObjectCorrupt:
        return "raw_corrupt"
    except ValueError:  # not a sha256 address: nothing was ever stored under it
        return "not_stored"
    except (RawStoreError, OSError):
        log.warning("raw store unreachable", extra={"stored_object": sha256}, exc_info=True)
        return "raw_store_unavailable"


@dataclass(frozen=True, slots=True)
class _Shown:
    text: str | None
    html: str | None
    attachments: tuple[AttachmentPart, ...]


def _show(
    raw: bytes, attachment_path: Callable[[int], str], tracking_base_url: str | None
) -> _Shown:
    """Bodies and attachments of one raw message, the HTML sanitized with its cid images
    pointing at their download paths. CPU-bound: run in a worker thread."""
    bodies = read_bodies(raw)
    by_content_id = {
        _content_id_key(part.content_id): attachment_path(part.index)
        for part in bodies.attachments
        if part.content_id
    }
    html = None
    if bodies.html is not None:
        html = sanitize_html(
            bodies.html,
            tracking_base_url=tracking_base_url,
            inline_image_url=lambda content_id: by_content_id.get(_content_id_key(content_id)),
        )
    return _Shown(bodies.text, html, bodies.attachments)


def _content_id_key(content_id: str) -> str:
    # RFC 2392: a cid URL names the Content-ID without angle brackets; senders disagree on
    # case, so the comparison ignores it.
    return content_id.strip().strip("<>").strip().lower()


async def _show_messages(
    request: Request,
    sources: ReadSources,
    thread_id: UUID,
    messages: Sequence[queries.StoredMessage],
) -> list[dict[str, Any]]:
    limiter = asyncio.Semaphore(RAW_READS_IN_FLIGHT)

    async def one(message: queries.StoredMessage) -> dict[str, Any]:
        def attachment_path(index: int) -> str:
            return request.url_for(
                "attachment",
                thread_id=str(thread_id),
                message_id=str(message.message_uid),
                index=str(index),
            ).path

        shown: _Shown | None = None
        unavailable: BodyUnavailable | None = "too_large" if message.too_large else None
        if unavailable is None:
            async with limiter:
                raw = await _read_raw(sources, message.raw_sha256)
            if isinstance(raw, str):
                unavailable = raw
            else:
                try:
                    shown = await asyncio.to_thread(
                        _show, raw, attachment_path, sources.tracking_base_url
                    )
                except Exception:  # R10: one unreadable message must not cost the thread
                    log.warning(
                        "message body unreadable",
                        extra={"thread_id": str(thread_id), "message_id": str(message.message_uid)},
                        exc_info=True,
                    )
                    unavailable = "unreadable"
        return _message_fields(message, shown, unavailable, attachment_path, request, thread_id)

    return list(await asyncio.gather(*(one(message) for message in messages)))


def _message_fields(
    message: queries.StoredMessage,
    shown: _Shown | None,
    unavailable: BodyUnavailable | None,
    attachment_path: Callable[[int], str],
    request: Request,
    thread_id: UUID,
) -> dict[str, Any]:
    if shown is not None:
        attachments = [
            {
                "index": part.index,
                "filename": part.filename,
                "content_type": part.content_type,
                "size": part.size,
                "content_id": part.content_id,
                "inline": part.inline,
                "download_path": attachment_path(part.index),
            }
            for part in shown.attachments
        ]
    else:
        # Without the raw message, ingest's description of the same list (same order).
        attachments = [
            {
                "index": index,
                "filename": facts.filename,
                "content_type": facts.content_type,
                "size": facts.size,
                "content_id": facts.content_id,
                "inline": facts.content_id is not None,
                "download_path": attachment_path(index),
            }
            for index, facts in enumerate(message.attachments)
        ]
    return {
        "message_id": message.message_uid,
        "sender": _address(message.sender) if message.sender else None,
        "to": _addresses(message.recipients, "to"),
        "cc": _addresses(message.recipients, "cc"),
        "subject": message.subject,
        "sent_at": message.sent_at,
        "snippet": message.snippet,
        "outgoing": message.outgoing,
        "text": shown.text if shown else None,
        "html": shown.html if shown else None,
        "attachments": attachments,
        "parse_error": message.parse_error,
        "too_large": message.too_large,
        "body_unavailable": unavailable,
        "raw_path": request.url_for(
            "raw_message", thread_id=str(thread_id), message_id=str(message.message_uid)
        ).path,
    }


def _address(person: queries.Person) -> dict[str, Any]:
    return {"email": person.email, "name": person.name}


def _addresses(recipients: Iterable[tuple[str, queries.Person]], role: str) -> list[dict[str, Any]]:
    # Bcc is never shown: on a shared thread it would tell colleagues whom the sender
    # copied in secret (R22: each recipient sees only themselves).
    return [_address(person) for kind, person in recipients if kind == role]


# -- downloads ---------------------------------------------------------------------------------

# RFC 6838 §4.2 type/subtype names; anything else a sender wrote is served as opaque bytes.
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
# RFC 5987 attr-char, besides what `quote` never escapes.
_ATTR_CHARS = "!#$&+^`|~"
_FILENAME_LENGTH = 200


def _content_type(declared: str) -> str:
    value = declared.strip().lower()
    return value if _MEDIA_TYPE.fullmatch(value) else "application/octet-stream"


def _filename(part: AttachmentPart) -> str:
    """A file name to save the attachment as: the sender's, without any path, control
    character or leading dot; a name from its index and type when there is none."""
    name = (part.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip().lstrip(".")
    if name:
        return name[:_FILENAME_LENGTH]
    extension = ".eml" if part.content_type == "message/rfc822" else None
    extension = extension or mimetypes.guess_extension(_content_type(part.content_type)) or ""
    return f"attachment-{part.index}{extension}"


def _content_disposition(filename: str) -> str:
    """RFC 6266 `attachment` with an ASCII fallback name and the exact one in RFC 5987
    `filename*` (UTF-8, percent-encoded)."""
    fallback = "".join(ch if " " <= ch <= "~" and ch not in '"\\%' else "_" for ch in filename)
    exact = quote(filename, safe=_ATTR_CHARS)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}"


def _download(content: bytes, content_type: str, filename: str) -> Response:
    # The content type goes in as a header, not `media_type`: Starlette would append a
    # charset to text/* types, which could contradict the bytes.
    return Response(
        content,
        headers={
            "Content-Type": content_type,
            "Content-Disposition": _content_disposition(filename),
            "X-Content-Type-Options": "nosniff",
            # Should a browser render it anyway: no script, no fetch, an opaque origin.
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "no-store",
        },
    )
