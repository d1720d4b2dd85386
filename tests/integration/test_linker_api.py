"""The linker's read API (ARCHITECTURE §3) over HTTP, against a real Postgres and raw store.

Mail and CRM records go through the linker's own use cases (`LinkerDb.apply`); the API is the
FastAPI app the service mounts at /v1, called through httpx's ASGI transport. Test names cite
the rule they check (R14-R18, R24).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import pytest_asyncio

from mailsync_contracts import (
    ArchiveThread,
    DeleteThread,
    LinkThread,
    MarkThreadRead,
    MessageIngested,
    SetThreadVisibility,
)
from mailsync_devstack.services import ServiceProcess
from mailsync_devstack.stack import LocalStack
from mailsync_linker.app import create_app
from mailsync_linker.settings import LinkerSettings
from mailsync_rawstore import LocalRawStore
from tests.support.linker import (
    ANNA,
    BEN,
    COMPANY,
    CUSTOMER,
    T0,
    LinkerDb,
    acting,
    deal,
    ingested,
    item,
    linker_db,
    person,
    read_api,
    team,
    thread_command,
    to_anna,
    user,
    with_raw,
)

pytestmark = pytest.mark.integration

CARL = "carl@sales.test"
BOSS = "boss@sales.test"
STRANGER = "sam@unknown.test"  # no CRM person: their threads link to nothing by themselves
TRACKING = "https://t.mailsync.test"


@pytest_asyncio.fixture(loop_scope="session")
async def db(database_url: str) -> AsyncIterator[LinkerDb]:
    async with linker_db(database_url) as world:
        await world.apply(
            user("u-anna", ANNA, teams=["t-sales"]),
            user("u-ben", BEN, teams=["t-sales"]),
            user("u-carl", CARL),
            user("u-boss", BOSS, admin=True),
            team("t-sales", "u-anna", "u-ben"),
            person("p-carla", CUSTOMER),
        )
        yield world


@pytest.fixture
def raw_store(tmp_path: Path) -> LocalRawStore:
    return LocalRawStore(tmp_path / "raw")


@pytest_asyncio.fixture(loop_scope="session")
async def api(db: LinkerDb, raw_store: LocalRawStore) -> AsyncIterator[httpx.AsyncClient]:
    async with read_api(db, raw_store, tracking_base_url=TRACKING) as client:
        yield client


def to_team(**fields: Any) -> MessageIngested:
    """A customer's mail in the sales team's shared inbox (Anna owns it, Ben is a member)."""
    values: dict[str, Any] = {
        "owner": "u-anna",
        "account_email": "sales@sales.test",
        "sender": CUSTOMER,
        "to": ["sales@sales.test"],
        "account_type": "team",
        "members": ["u-anna", "u-ben"],
        "visibility": "team",
    }
    values.update(fields)
    return ingested("acct-team", **values)


async def filed(db: LinkerDb, event: MessageIngested) -> UUID:
    await db.apply(event)
    assert event.data.message_id is not None
    return await db.thread_of(event.data.account_id, event.data.message_id)


async def inbox_ids(
    api: httpx.AsyncClient, user_id: str, company_id: str = COMPANY, **params: Any
) -> list[str]:
    response = await api.get("/v1/inbox", params=params, headers=acting(user_id, company_id))
    assert response.status_code == 200, response.text
    return [t["thread_id"] for t in response.json()["threads"]]


async def history_ids(
    api: httpx.AsyncClient, user_id: str, kind: str, item_id: str, company_id: str = COMPANY
) -> list[str] | None:
    """The item's detail-view history for the user; None when the item is hidden (404)."""
    response = await api.get(
        f"/v1/items/{kind}/{item_id}/threads", headers=acting(user_id, company_id)
    )
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return [t["thread_id"] for t in response.json()["threads"]]


async def opens(
    api: httpx.AsyncClient, user_id: str, thread_id: UUID, company_id: str = COMPANY
) -> bool:
    response = await api.get(f"/v1/threads/{thread_id}", headers=acting(user_id, company_id))
    assert response.status_code in (200, 404), response.text
    return response.status_code == 200


def mime(
    *,
    html: str | None = None,
    text: str = "Hello Anna",
    attachments: tuple[tuple[str, str, bytes], ...] = (),
    inline_image: tuple[str, bytes] | None = None,
    message_id: str | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = CUSTOMER
    message["To"] = ANNA
    message["Subject"] = "Offer"
    message["Message-ID"] = f"<{message_id or uuid4().hex + '@customer.test'}>"
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
        if inline_image is not None:
            content_id, data = inline_image
            html_part = next(p for p in message.iter_parts() if p.get_content_type() == "text/html")
            assert isinstance(html_part, EmailMessage)
            html_part.add_related(data, "image", "png", cid=f"<{content_id}>")
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


# R14, R16 visibility


async def test_r14_an_admin_cannot_read_a_private_thread(
    db: LinkerDb, api: httpx.AsyncClient
) -> None:
    await db.apply(item("deal", "d-priv", owner_user_id="u-anna"))
    private = await filed(db, to_anna(message_id="priv@customer.test", visibility="private"))
    await db.apply(thread_command(LinkThread, private, "u-anna", kind="deal", entity_id="d-priv"))
    assert await opens(api, "u-anna", private)
    # The admin sees the deal (admins see every item) but not the private mail on it.
    assert await history_ids(api, "u-boss", "deal", "d-priv") == []
    assert not await opens(api, "u-boss", private)
    assert str(private) not in await inbox_ids(api, "u-boss")
    assert await history_ids(api, "u-anna", "deal", "d-priv") == [str(private)]


async def test_r14_r16_a_shared_thread_is_not_in_a_non_participants_inbox_but_in_the_deal_view(
    db: LinkerDb, api: httpx.AsyncClient
) -> None:
    await db.apply(
        item("deal", "d-open", owner_user_id="u-anna"),
        item("deal", "d-mine", owner_user_id="u-anna", visible_to="owner"),
    )
    shared = await filed(db, to_anna(message_id="shared@customer.test"))
    mine = await filed(
        db, to_anna(message_id="mine@customer.test", subject="Mine", sender=STRANGER)
    )
    await db.apply(
        thread_command(LinkThread, shared, "u-anna", kind="deal", entity_id="d-open"),
        thread_command(LinkThread, mine, "u-anna", kind="deal", entity_id="d-mine"),
    )
    assert str(shared) not in await inbox_ids(api, "u-ben")
    assert await history_ids(api, "u-ben", "deal", "d-open") == [str(shared)]
    # Ben can open it from the detail view he sees it in.
    assert await opens(api, "u-ben", shared)
    # A deal only its owner sees hides its history, and its threads, from Ben.
    assert await history_ids(api, "u-ben", "deal", "d-mine") is None
    assert not await opens(api, "u-ben", mine)
    # R16: linked to nothing, not even a person, the shared thread is its owner's alone.
    lonely = await filed(
        db, to_anna(message_id="lonely@customer.test", subject="Lonely", sender=STRANGER)
    )
    assert not await opens(api, "u-ben", lonely)
    assert str(lonely) in await inbox_ids(api, "u-anna")


async def test_r16_a_participant_colleague_sees_a_shared_thread_in_their_inbox(
    db: LinkerDb, api: httpx.AsyncClient
) -> None:
    copied = await filed(db, to_anna(message_id="cc@customer.test", cc=[BEN]))
    secret = await filed(
        db,
        to_anna(message_id="cc2@customer.test", cc=[BEN], subject="Secret", visibility="private"),
    )
    ben_inbox = await inbox_ids(api, "u-ben")
    assert str(copied) in ben_inbox
    assert await opens(api, "u-ben", copied)
    # A private thread stays its owner's even for a participant (R14).
    assert str(secret) not in ben_inbox
    assert not await opens(api, "u-ben", secret)
    assert str(copied) not in await inbox_ids(api, "u-carl")


async def test_r14_a_team_thread_is_visible_to_the_team_accounts_members_only(
    db: LinkerDb, api: httpx.AsyncClient
) -> None:
    await db.apply(item("deal", "d-team", owner_user_id="u-carl"))
    shared_inbox = await filed(db, to_team(message_id="team@customer.test", cc=[CARL]))
    await db.apply(
        thread_command(LinkThread, shared_inbox, "u-ben", kind="deal", entity_id="d-team")
    )
    assert str(shared_inbox) in await inbox_ids(api, "u-anna")
    assert str(shared_inbox) in await inbox_ids(api, "u-ben", account_id="acct-team")
    # Carl is on the conversation and owns the deal, yet a `team` thread is not his.
    assert str(shared_inbox) not in await inbox_ids(api, "u-carl")
    assert await history_ids(api, "u-carl", "deal", "d-team") == []
    assert not await opens(api, "u-carl", shared_inbox)
    assert not await opens(api, "u-boss", shared_inbox)
    # The team shares it: from then on the deal's viewers see it in its detail view.
    await db.apply(thread_command(SetThreadVisibility, shared_inbox, "u-ben", visibility="shared"))
    assert await history_ids(api, "u-carl", "deal", "d-team") == [str(shared_inbox)]
    assert str(shared_inbox) in await inbox_ids(api, "u-carl")  # now R16: a participant


async def test_companies_are_fully_isolated_even_with_the_same_ids(
    db: LinkerDb, api: httpx.AsyncClient
) -> None:
    other = "company-other"
    await db.apply(
        user("u-anna", "anna@other.test", admin=True, company_id=other),
        item("deal", "d-same", owner_user_id="u-anna", company_id=other),
        item("deal", "d-same", owner_user_id="u-anna"),
    )
    ours = await filed(db, to_anna(message_id="ours@customer.test"))
    await db.apply(thread_command(LinkThread, ours, "u-anna", kind="deal", entity_id="d-same"))
    theirs = await filed(
        db,
        ingested(
            "acct-other-anna",
            owner="u-anna",
            account_email="anna@other.test",
            sender=CUSTOMER,
            to=["anna@other.test"],
            message_id="theirs@customer.test",
            company_id=other,
        ),
    )
    assert await inbox_ids(api, "u-anna", other) == [str(theirs)]
    assert str(theirs) not in await inbox_ids(api, "u-anna")
    assert not await opens(api, "u-anna", ours, other)
    assert not await opens(api, "u-anna", theirs)
    assert await history_ids(api, "u-anna", "deal", "d-same", other) == []
    assert await history_ids(api, "u-anna", "deal", "d-same") == [str(ours)]
    response = await api.get(
        "/v1/inbox", params={"account_id": "acct-anna"}, headers=acting("u-anna", other)
    )
    assert response.status_code == 404


# R17 archive, R18 delete


async def test_r17_an_archived_thread_leaves_the_inbox_and_stays_in_archive_and_detail_view(
    db: LinkerDb, api: httpx.AsyncClient
) -> None:
    await db.apply(item("deal", "d-arch"))
    thread = await filed(db, to_anna(message_id="arch@customer.test"))
    await db.apply(
        thread_command(LinkThread, thread, "u-anna", kind="deal", entity_id="d-arch"),
        thread_command(ArchiveThread, thread, "u-anna"),
    )
    assert str(thread) not in await inbox_ids(api, "u-anna")
    assert str(thread) in await inbox_ids(api, "u-anna", folder="archive")
    assert await history_ids(api, "u-ben", "deal", "d-arch") == [str(thread)]
    detail = (await api.get(f"/v1/threads/{thread}", headers=acting("u-anna"))).json()
    assert detail["archived"] is True
    assert {"kind": "deal", "entity_id": "d-arch", "origin": "manual"} in detail["links"]


async def test_r18_a_deleted_thread_is_gone_from_every_answer(
    db: LinkerDb, api: httpx.AsyncClient
) -> None:
    await db.apply(item("deal", "d-del"))
    thread = await filed(db, to_anna(message_id="del@customer.test", cc=[BEN]))
    await db.apply(thread_command(LinkThread, thread, "u-anna", kind="deal", entity_id="d-del"))
    (message_id,) = await db.message_uids(thread)
    await db.apply(thread_command(DeleteThread, thread, "u-anna"))
    for user_id in ("u-anna", "u-ben"):
        assert str(thread) not in await inbox_ids(api, user_id)
        assert str(thread) not in await inbox_ids(api, user_id, folder="archive")
        assert await history_ids(api, user_id, "deal", "d-del") == []
        assert not await opens(api, user_id, thread)
    raw = await api.get(f"/v1/threads/{thread}/messages/{message_id}/raw", headers=acting("u-anna"))
    assert raw.status_code == 404


# paging and counts


async def test_cursor_pagination_returns_every_thread_exactly_once_newest_first(
    db: LinkerDb, api: httpx.AsyncClient
) -> None:
    await db.apply(item("deal", "d-page"))
    expected = []
    for n in range(7):
        # Threads 2 and 3 share their time: the thread id breaks the tie.
        hours = 2 if n == 3 else n
        thread = await filed(
            db,
            to_anna(
                message_id=f"page{n}@customer.test",
                subject=f"Page {n}",
                sent_at=T0 + timedelta(days=400, hours=hours),
            ),
        )
        await db.apply(
            thread_command(LinkThread, thread, "u-anna", kind="deal", entity_id="d-page")
        )
        expected.append(thread)
    for path, params in (
        ("/v1/inbox", {"account_id": "acct-anna"}),
        ("/v1/inbox", {}),
        ("/v1/items/deal/d-page/threads", {}),
    ):
        seen: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query: dict[str, Any] = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
            response = await api.get(path, params=query, headers=acting("u-anna"))
            assert response.status_code == 200, response.text
            body = response.json()
            assert len(body["threads"]) <= 2
            seen += body["threads"]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        ids = [t["thread_id"] for t in seen]
        assert len(ids) == len(set(ids)), f"{path}: a thread came twice"
        keys = [(t["last_message_at"], t["thread_id"]) for t in seen]
        assert keys == sorted(keys, reverse=True), f"{path}: not newest first"
        assert {str(t) for t in expected} <= set(ids), f"{path}: a thread is missing"
    bad = await api.get("/v1/inbox", params={"cursor": "not-a-cursor"}, headers=acting("u-anna"))
    assert bad.status_code == 400


async def test_unread_counts_per_managed_account_and_in_total(
    db: LinkerDb, api: httpx.AsyncClient
) -> None:
    first = await filed(db, to_anna(message_id="u1@customer.test", subject="One"))
    await filed(db, to_anna(message_id="u2@customer.test", subject="Two"))
    archived = await filed(db, to_anna(message_id="u3@customer.test", subject="Three"))
    await filed(db, to_anna(message_id="u4@customer.test", subject="Four", flags=["\\Seen"]))
    await filed(db, to_team(message_id="u5@customer.test"))
    await db.apply(
        thread_command(MarkThreadRead, first, "u-anna"),
        thread_command(ArchiveThread, archived, "u-anna"),
    )
    response = await api.get("/v1/inbox", headers=acting("u-anna"))
    unread = response.json()["unread"]
    by_account = {a["account_id"]: a["unread_threads"] for a in unread["accounts"]}
    assert by_account == {"acct-anna": 1, "acct-team": 1}
    assert unread["total"] == 2
    # Ben manages the team account only.
    ben = (await api.get("/v1/inbox", headers=acting("u-ben"))).json()["unread"]
    assert ben == {
        "total": 1,
        "accounts": [
            {
                "account_id": "acct-team",
                "email": "sales@sales.test",
                "account_type": "team",
                "unread_threads": 1,
            }
        ],
    }
    summary = {t["thread_id"]: t for t in response.json()["threads"]}
    assert summary[str(first)]["unread"] is False


# the conversation view and downloads


async def test_r24_html_is_sanitized_without_our_tracking_pixel_and_remote_images_neutralised(
    db: LinkerDb, api: httpx.AsyncClient, raw_store: LocalRawStore
) -> None:
    html = (
        '<p onclick="alert(1)">Dear Anna</p><script>steal()</script>'
        f'<img src="{TRACKING}/o/abc.def" width="1" height="1">'
        '<img src="https://cdn.customer.test/logo.png" alt="logo">'
        '<img src="cid:chart@customer.test">'
        '<a href="javascript:alert(2)">click</a>'
    )
    raw = mime(html=html, inline_image=("chart@customer.test", b"\x89PNG chart"))
    await raw_store.put(raw)
    thread = await filed(db, with_raw(to_anna(message_id="html@customer.test"), raw))
    response = await api.get(f"/v1/threads/{thread}", headers=acting("u-anna"))
    assert response.status_code == 200, response.text
    (message,) = response.json()["messages"]
    shown = message["html"]
    assert "Dear Anna" in shown
    for forbidden in ("<script", "steal()", "onclick", "javascript:", "t.mailsync.test"):
        assert forbidden not in shown
    assert 'data-remote-src="https://cdn.customer.test/logo.png"' in shown
    assert ' src="https://cdn.customer.test' not in shown
    (chart,) = [a for a in message["attachments"] if a["content_id"] == "chart@customer.test"]
    assert chart["inline"] is True
    assert f'src="{chart["download_path"]}"' in shown
    assert chart["download_path"].startswith(f"/v1/threads/{thread}/messages/")
    image = await api.get(chart["download_path"], headers=acting("u-anna"))
    assert image.content == b"\x89PNG chart"
    assert message["text"].strip() == "Hello Anna"
    assert message["from"] == {"email": CUSTOMER, "name": None}
    assert message["body_unavailable"] is None


async def test_an_attachment_downloads_with_its_exact_bytes_and_never_inline(
    db: LinkerDb, api: httpx.AsyncClient, raw_store: LocalRawStore
) -> None:
    pdf = bytes(range(256)) * 40
    raw = mime(
        attachments=(
            ("Angebot Müller.pdf", "application/pdf", pdf),
            ("page.html", "text/html", b"<script>alert(1)</script>"),
        )
    )
    await raw_store.put(raw)
    thread = await filed(
        db, with_raw(to_anna(message_id="att@customer.test", sender=STRANGER), raw)
    )
    detail = (await api.get(f"/v1/threads/{thread}", headers=acting("u-anna"))).json()
    (message,) = detail["messages"]
    document, page = message["attachments"]
    assert (document["filename"], document["content_type"]) == (
        "Angebot Müller.pdf",
        "application/pdf",
    )
    response = await api.get(document["download_path"], headers=acting("u-anna"))
    assert response.status_code == 200
    assert response.content == pdf
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"Angebot M_ller.pdf\"; filename*=UTF-8''Angebot%20M%C3%BCller.pdf"
    )
    html_file = await api.get(page["download_path"], headers=acting("u-anna"))
    assert html_file.content == b"<script>alert(1)</script>"
    assert html_file.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in html_file.headers["content-security-policy"]
    whole = await api.get(message["raw_path"], headers=acting("u-anna"))
    assert whole.content == raw
    assert whole.headers["content-type"] == "message/rfc822"
    assert hashlib.sha256(whole.content).hexdigest() == hashlib.sha256(raw).hexdigest()
    # Downloads follow the thread's visibility: Ben may not open Anna's unlinked thread.
    hidden = await api.get(document["download_path"], headers=acting("u-ben"))
    assert hidden.status_code == 404
    missing = await api.get(
        document["download_path"].rsplit("/", 1)[0] + "/9", headers=acting("u-anna")
    )
    assert missing.status_code == 404


async def test_a_message_whose_raw_is_missing_is_shown_without_bodies_not_as_an_error(
    db: LinkerDb, api: httpx.AsyncClient
) -> None:
    raw = mime(html="<p>never stored</p>", attachments=(("a.txt", "text/plain", b"a"),))
    thread = await filed(db, with_raw(to_anna(message_id="gone@customer.test"), raw))
    response = await api.get(f"/v1/threads/{thread}", headers=acting("u-anna"))
    assert response.status_code == 200, response.text
    (message,) = response.json()["messages"]
    assert message["body_unavailable"] == "raw_missing"
    assert (message["text"], message["html"]) == (None, None)
    assert [a["filename"] for a in message["attachments"]] == ["a.txt"]
    download = await api.get(message["attachments"][0]["download_path"], headers=acting("u-anna"))
    assert download.status_code == 404


# authentication, errors, the document


async def test_the_service_token_is_required_401_without_it_or_with_a_wrong_one(
    db: LinkerDb, api: httpx.AsyncClient
) -> None:
    for authorization in (None, "Bearer wrong-token", "Basic cmVhZDphcGk=", "Bearer"):
        headers = {**acting("u-anna"), "Authorization": authorization or ""}
        response = await api.get("/v1/inbox", headers=headers)
        assert response.status_code == 401, authorization
        assert response.headers["www-authenticate"] == "Bearer"
    assert (await api.get("/v1/openapi.json", headers={"Authorization": ""})).status_code == 401


async def test_missing_user_headers_are_a_bad_request(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/inbox")).status_code == 400
    assert (await api.get("/v1/inbox", headers={"X-Company-Id": COMPANY})).status_code == 400
    assert (await api.get("/v1/inbox", headers={"X-User-Id": "u-anna"})).status_code == 400
    bad_limit = await api.get("/v1/inbox", params={"limit": 201}, headers=acting("u-anna"))
    assert bad_limit.status_code == 400


async def test_without_a_configured_token_every_route_answers_503(
    db: LinkerDb, raw_store: LocalRawStore
) -> None:
    async with read_api(db, raw_store, token=None) as unconfigured:
        for path in ("/v1/inbox", f"/v1/threads/{uuid4()}", "/v1/openapi.json"):
            response = await unconfigured.get(
                path, headers={**acting("u-anna"), "Authorization": "Bearer anything"}
            )
            assert response.status_code == 503
            assert "MAILSYNC_SERVICE_TOKEN" in response.json()["detail"]


async def test_hidden_and_unknown_ids_answer_the_same_404(
    db: LinkerDb, api: httpx.AsyncClient
) -> None:
    private = await filed(db, to_anna(message_id="hide@customer.test", visibility="private"))
    hidden = await api.get(f"/v1/threads/{private}", headers=acting("u-ben"))
    unknown = await api.get(f"/v1/threads/{uuid4()}", headers=acting("u-ben"))
    malformed = await api.get("/v1/threads/not-a-uuid", headers=acting("u-ben"))
    assert hidden.status_code == unknown.status_code == malformed.status_code == 404
    assert hidden.json() == unknown.json() == malformed.json()
    assert (await history_ids(api, "u-ben", "deal", "no-such-deal")) is None
    not_managed = await api.get(
        "/v1/inbox", params={"account_id": "acct-anna"}, headers=acting("u-ben")
    )
    assert not_managed.status_code == 404


async def test_the_openapi_document_lists_the_routes(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["servers"] == [{"url": "/v1"}]
    assert set(document["paths"]) == {
        "/inbox",
        "/threads/{thread_id}",
        "/items/{kind}/{item_id}/threads",
        "/threads/{thread_id}/messages/{message_id}/attachments/{index}",
        "/threads/{thread_id}/messages/{message_id}/raw",
    }
    assert "HTTPBearer" in document["components"]["securitySchemes"]
    message = document["components"]["schemas"]["Message"]
    assert "from" in message["properties"]


async def test_the_linker_app_serves_the_read_api_under_v1_and_refuses_without_a_token() -> None:
    # Building the app connects nothing; without a token the API answers 503 before it
    # would need the database.
    app = create_app(LinkerSettings(service_token=None))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://linker.test"
    ) as client:
        response = await client.get("/v1/inbox", headers=acting("u-anna"))
    assert response.status_code == 503


async def test_the_linker_process_of_the_local_stack_serves_the_read_api_with_its_token(
    local_stack: LocalStack, database_url: str, tmp_path: Path
) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **local_stack.env(),
        "MAILSYNC_DATABASE_URL": database_url,
        "MAILSYNC_RAW_STORE_URL": (tmp_path / "raw").as_uri(),
        "MAILSYNC_CONSUMER_GROUP": f"linker-{uuid4().hex[:8]}",
    }
    (tmp_path / "logs").mkdir()
    linker = ServiceProcess("linker", env, tmp_path / "logs")
    assert linker.service_token
    linker.start()
    try:
        await linker.wait_ready()
        async with httpx.AsyncClient(base_url=linker.url) as client:
            granted = await client.get(
                "/v1/inbox",
                headers={**acting("u-anna"), "Authorization": f"Bearer {linker.service_token}"},
            )
            refused = await client.get("/v1/inbox", headers=acting("u-anna"))
    finally:
        linker.stop()
    assert granted.status_code == 200, granted.text
    assert granted.json()["threads"] == []
    assert refused.status_code == 401


async def test_person_links_show_to_everyone_and_deal_links_only_to_who_sees_the_deal(
    db: LinkerDb, api: httpx.AsyncClient
) -> None:
    await db.apply(deal("d-hidden", owner_user_id="u-anna", visible_to="owner"))
    thread = await filed(db, to_anna(message_id="links@customer.test", cc=[BEN]))
    await db.apply(thread_command(LinkThread, thread, "u-anna", kind="deal", entity_id="d-hidden"))
    anna = (await api.get(f"/v1/threads/{thread}", headers=acting("u-anna"))).json()
    ben = (await api.get(f"/v1/threads/{thread}", headers=acting("u-ben"))).json()
    assert {(lk["kind"], lk["entity_id"]) for lk in anna["links"]} == {
        ("person", "p-carla"),
        ("deal", "d-hidden"),
    }
    assert {(lk["kind"], lk["entity_id"]) for lk in ben["links"]} == {("person", "p-carla")}
    assert await history_ids(api, "u-ben", "person", "p-carla") == [str(thread)]
