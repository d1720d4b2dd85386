"""The linker's rules (R8, R11–R18) through its use cases, against a real Postgres.

Each test builds the records the CRM, ingest and users would send, applies them as the
consumer does (one transaction each) and checks the stored state and the events staged for
`mail.threads.v1`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
import pytest_asyncio

from mailsync_contracts import (
    ArchiveThread,
    DeleteMessage,
    DeleteThread,
    Envelope,
    LinkThread,
    MarkThreadRead,
    MessageSent,
    MessageSentData,
    SetThreadVisibility,
    ThreadActionData,
    UnarchiveThread,
    UnlinkThread,
)
from mailsync_linker.thread_actions import CommandRefused
from tests.support.linker import (
    ANNA,
    BEN,
    COMPANY,
    CUSTOMER,
    T0,
    LinkerDb,
    deal,
    deleted,
    expunged,
    ingested,
    lead,
    linker_db,
    organization,
    person,
    threads_events,
    to_anna,
    user,
)

pytestmark = pytest.mark.integration

OTHER = "oskar@other.test"


@pytest_asyncio.fixture(loop_scope="session")
async def db(database_url: str) -> AsyncIterator[LinkerDb]:
    async with linker_db(database_url) as world:
        await world.apply(user("u-anna", ANNA), user("u-ben", BEN))
        yield world


def action(
    command: type[Envelope[Any]], thread_id: object, user_id: str = "u-anna", /, **data: Any
) -> Envelope[Any]:
    payload = {"thread_id": str(thread_id), "acting_user_id": user_id, **data}
    # The command's payload model, as its envelope declares it.
    data_model: Any = command.model_fields["data"].annotation
    return command.build(company_id=COMPANY, source="crm", data=data_model.model_validate(payload))


# R11 threads


async def test_r11_a_reply_joins_its_thread_by_in_reply_to_and_references(db: LinkerDb) -> None:
    first = to_anna(message_id="q1@customer.test")
    reply = to_anna(
        message_id="q2@sales.test",
        sender=ANNA,
        to=[CUSTOMER],
        subject="Re: Quote",
        in_reply_to="q1@customer.test",
        folder="Sent",
        folder_role="sent",
    )
    third = to_anna(
        message_id="q3@customer.test",
        references=["q1@customer.test", "q2@sales.test"],
        subject="something else",
    )
    await db.apply(first, reply, third)
    thread = await db.thread_of("acct-anna", "q1@customer.test")
    assert await db.thread_of("acct-anna", "q2@sales.test") == thread
    assert await db.thread_of("acct-anna", "q3@customer.test") == thread
    assert (await db.thread(thread))["message_count"] == 3


async def test_r11_newest_first_arrival_still_makes_one_thread(db: LinkerDb) -> None:
    # An initial sync publishes the newest mail first: the reply arrives before its original.
    reply = to_anna(message_id="n2@customer.test", in_reply_to="n1@sales.test", subject="Re: Demo")
    original = to_anna(message_id="n1@sales.test", sender=ANNA, to=[CUSTOMER], subject="Demo")
    await db.apply(reply, original)
    assert await db.thread_of("acct-anna", "n1@sales.test") == await db.thread_of(
        "acct-anna", "n2@customer.test"
    )


@pytest.mark.parametrize(
    ("second_from", "second_to", "days_later", "same_thread"),
    [
        (CUSTOMER, [ANNA], 2, True),  # customer and Anna again: two shared participants
        (OTHER, [ANNA], 2, False),  # only Anna in common
        (CUSTOMER, [ANNA], 45, False),  # beyond the window
    ],
    ids=["two-shared-participants", "one-shared-participant", "outside-the-window"],
)
async def test_r11_same_subject_and_two_shared_participants_make_one_thread(
    db: LinkerDb, second_from: str, second_to: list[str], days_later: int, same_thread: bool
) -> None:
    first = to_anna(subject="Pricing for 2027", message_id="s1@customer.test")
    second = to_anna(
        subject="RE: AW: Pricing for 2027",
        message_id="s2@customer.test",
        sender=second_from,
        to=second_to,
        sent_at=T0 + timedelta(days=days_later),
    )
    await db.apply(first, second)
    one = await db.thread_of("acct-anna", "s1@customer.test")
    two = await db.thread_of("acct-anna", "s2@customer.test")
    assert (one == two) is same_thread


async def test_r11_a_provider_thread_id_groups_messages_without_references(db: LinkerDb) -> None:
    a = to_anna(message_id="g1@x.test", subject="Hello", provider_thread_id="1789")
    b = to_anna(
        message_id="g2@x.test", subject="Different", sender=OTHER, provider_thread_id="1789"
    )
    await db.apply(a, b)
    assert await db.thread_of("acct-anna", "g1@x.test") == await db.thread_of(
        "acct-anna", "g2@x.test"
    )


async def test_r11_one_email_in_two_mailboxes_is_one_message_with_two_memberships(
    db: LinkerDb,
) -> None:
    in_anna = to_anna(message_id="both@customer.test", to=[ANNA, BEN])
    in_ben = ingested(
        "acct-ben",
        owner="u-ben",
        account_email=BEN,
        sender=CUSTOMER,
        to=[ANNA, BEN],
        message_id="both@customer.test",
    )
    await db.apply(in_anna, in_ben)
    assert (
        await db.fetchval(
            "SELECT count(*) FROM messages WHERE message_key = 'mid:both@customer.test'"
        )
        == 1
    )
    memberships = await db.fetch(
        "SELECT account_id FROM thread_messages WHERE message_key = $1 ORDER BY 1",
        "mid:both@customer.test",
    )
    assert [r["account_id"] for r in memberships] == ["acct-anna", "acct-ben"]


# R12 matching


async def test_r12_participants_match_persons_case_insensitively_and_bring_their_organization(
    db: LinkerDb,
) -> None:
    await db.apply(organization("o-1"), person("p-1", "Carla@Customer.TEST", organization_id="o-1"))
    await db.apply(to_anna(message_id="m12@customer.test"))
    thread = await db.thread_of("acct-anna", "m12@customer.test")
    assert await db.links(thread) == {("person", "p-1", "auto"), ("organization", "o-1", "auto")}


async def test_r12_idn_domains_match_in_either_form(db: LinkerDb) -> None:
    await db.apply(person("p-idn", "katrin@kessler-präzision.test"))
    await db.apply(to_anna(message_id="idn@x.test", sender="katrin@xn--kessler-przision-4nb.test"))
    thread = await db.thread_of("acct-anna", "idn@x.test")
    assert ("person", "p-idn", "auto") in await db.links(thread)


async def test_r12_own_addresses_and_colleagues_are_never_customers(db: LinkerDb) -> None:
    # Ben is a colleague; even if the CRM also has a person with his address, no link.
    await db.apply(person("p-ben", BEN), user("u-anna", ANNA, "anna.alias@sales.test"))
    await db.apply(to_anna(message_id="col@sales.test", sender="anna.alias@sales.test", to=[BEN]))
    thread = await db.thread_of("acct-anna", "col@sales.test")
    assert await db.links(thread) == set()
    external = await db.fetch(
        "SELECT email FROM thread_participants WHERE thread_id = $1 AND external", thread
    )
    assert external == []


async def test_r12_sent_mail_is_matched_by_its_recipients(db: LinkerDb) -> None:
    await db.apply(person("p-sent", CUSTOMER))
    sent = to_anna(
        message_id="sent@sales.test", sender=ANNA, to=[CUSTOMER], folder="Sent", folder_role="sent"
    )
    await db.apply(sent)
    thread = await db.thread_of("acct-anna", "sent@sales.test")
    assert ("person", "p-sent", "auto") in await db.links(thread)
    assert not (await db.thread(thread))["unread"]


async def test_r12_a_person_created_after_the_mail_ends_in_the_same_state_as_before_it(
    database_url: str, admin_database_url: str
) -> None:
    from mailsync_devstack.postgres import create_database, drop_database

    message = to_anna(message_id="order@customer.test")
    records = [organization("o-late"), person("p-late", CUSTOMER, organization_id="o-late")]
    states: list[dict[str, list[tuple[Any, ...]]]] = []
    orders: list[list[Envelope[Any]]] = [
        [*records, message],
        [message, *records],
        [message, message, *records, *records],
    ]
    for order in orders:
        name = f"test_order_{len(states)}_{id(order) % 9999}"
        url = await create_database(admin_database_url, name)
        try:
            async with linker_db(url) as world:
                await world.apply(user("u-anna", ANNA))
                await world.apply(*order)
                states.append(await world.snapshot())
        finally:
            await drop_database(admin_database_url, name)
    assert states[0] == states[1] == states[2]
    assert states[0]["links"]  # linked, not merely equally empty


async def test_r12_a_person_deleted_or_readdressed_takes_their_links_along(db: LinkerDb) -> None:
    await db.apply(person("p-move", CUSTOMER))
    await db.apply(to_anna(message_id="mv@customer.test"))
    thread = await db.thread_of("acct-anna", "mv@customer.test")
    staged = await db.apply(person("p-move", "new-address@customer.test"))
    assert await db.links(thread) == set()
    assert threads_events(staged, "mail.thread.updated")[0].data.reason == "links_changed"
    await db.apply(person("p-move", CUSTOMER))
    assert await db.links(thread) == {("person", "p-move", "auto")}
    await db.apply(deleted("person", "p-move"))
    assert await db.links(thread) == set()


# R13 deals, leads, projects


@pytest.mark.parametrize(
    ("open_deals", "linked", "asked"),
    [(0, None, False), (1, "d-0", False), (2, None, True)],
    ids=["no-open-deal", "one-open-deal", "two-open-deals"],
)
async def test_r13_zero_one_or_two_open_deals(
    db: LinkerDb, open_deals: int, linked: str | None, asked: bool
) -> None:
    await db.apply(person("p-deals", CUSTOMER))
    await db.apply(*(deal(f"d-{n}", "p-deals") for n in range(open_deals)))
    staged = await db.apply(to_anna(message_id="deals@customer.test"))
    thread = await db.thread_of("acct-anna", "deals@customer.test")
    deals = {entity for kind, entity, _ in await db.links(thread) if kind == "deal"}
    assert deals == ({linked} if linked else set())
    choices = threads_events(staged, "mail.thread.link_choice_needed")
    assert bool(choices) is asked
    if asked:
        assert {c.entity_id for c in choices[0].data.candidates} == {"d-0", "d-1"}


async def test_r13_won_and_archived_deals_are_not_candidates(db: LinkerDb) -> None:
    await db.apply(person("p-won", CUSTOMER))
    await db.apply(deal("d-won", "p-won", status="won"), deal("d-old", "p-won", archived=True))
    await db.apply(deal("d-open", "p-won"))
    await db.apply(to_anna(message_id="won@customer.test"))
    thread = await db.thread_of("acct-anna", "won@customer.test")
    assert ("deal", "d-open", "auto") in await db.links(thread)
    assert {e for k, e, _ in await db.links(thread) if k == "deal"} == {"d-open"}


async def test_r13_a_deal_created_after_the_thread_never_links_it(db: LinkerDb) -> None:
    await db.apply(person("p-later", CUSTOMER))
    await db.apply(to_anna(message_id="early@customer.test", subject="Intro"))
    thread = await db.thread_of("acct-anna", "early@customer.test")
    await db.apply(deal("d-later", "p-later"))
    await db.apply(to_anna(message_id="late@customer.test", in_reply_to="early@customer.test"))
    assert await db.thread_of("acct-anna", "late@customer.test") == thread
    assert {k for k, _, _ in await db.links(thread)} == {"person"}


async def test_r13_later_messages_inherit_the_link_and_one_deal_per_thread(db: LinkerDb) -> None:
    await db.apply(person("p-inh", CUSTOMER), person("p-oth", OTHER))
    await db.apply(deal("d-inh", "p-inh"), deal("d-oth", "p-oth"))
    await db.apply(to_anna(message_id="i1@customer.test"))
    thread = await db.thread_of("acct-anna", "i1@customer.test")
    # A reply that adds someone with another open deal does not add a second deal.
    await db.apply(
        to_anna(message_id="i2@customer.test", in_reply_to="i1@customer.test", cc=[OTHER])
    )
    deals = {(e, o) for k, e, o in await db.links(thread) if k == "deal"}
    assert deals == {("d-inh", "auto")}


async def test_r13_a_manual_unlink_survives_the_next_incoming_message(db: LinkerDb) -> None:
    await db.apply(person("p-un", CUSTOMER), deal("d-un", "p-un"))
    await db.apply(to_anna(message_id="u1@customer.test"))
    thread = await db.thread_of("acct-anna", "u1@customer.test")
    assert ("deal", "d-un", "auto") in await db.links(thread)
    await db.apply(action(UnlinkThread, thread, kind="deal", entity_id="d-un"))
    await db.apply(to_anna(message_id="u2@customer.test", in_reply_to="u1@customer.test"))
    assert not {e for k, e, _ in await db.links(thread) if k == "deal"}
    # Unlinking the person keeps that person away too, while the organization logic goes on.
    await db.apply(action(UnlinkThread, thread, kind="person", entity_id="p-un"))
    await db.apply(to_anna(message_id="u3@customer.test", in_reply_to="u2@customer.test"))
    assert ("person", "p-un", "auto") not in await db.links(thread)


async def test_r13_a_manual_link_replaces_the_automatic_deal_and_is_recorded_as_manual(
    db: LinkerDb,
) -> None:
    await db.apply(person("p-man", CUSTOMER), deal("d-auto", "p-man"), deal("d-mine"))
    await db.apply(to_anna(message_id="man@customer.test"))
    thread = await db.thread_of("acct-anna", "man@customer.test")
    staged = await db.apply(action(LinkThread, thread, kind="deal", entity_id="d-mine"))
    deals = {(e, o) for k, e, o in await db.links(thread) if k == "deal"}
    assert deals == {("d-mine", "manual")}
    updated = threads_events(staged, "mail.thread.updated")[0]
    assert {(lk.kind, lk.entity_id, lk.origin) for lk in updated.data.links} >= {
        ("deal", "d-mine", "manual")
    }
    await db.apply(to_anna(message_id="man2@customer.test", in_reply_to="man@customer.test"))
    assert {(e, o) for k, e, o in await db.links(thread) if k == "deal"} == {("d-mine", "manual")}


async def test_r13_manual_mode_users_get_persons_but_no_deals(db: LinkerDb) -> None:
    await db.apply(user("u-anna", ANNA, mode="manual"))
    await db.apply(person("p-mm", CUSTOMER), deal("d-mm", "p-mm"), lead("l-mm", "p-mm"))
    await db.apply(to_anna(message_id="mm@customer.test"))
    thread = await db.thread_of("acct-anna", "mm@customer.test")
    assert await db.links(thread) == {("person", "p-mm", "auto")}


async def test_r13_each_kind_links_on_its_own_and_a_choice_is_asked_once(db: LinkerDb) -> None:
    await db.apply(
        person("p-k", CUSTOMER), lead("l-k", "p-k"), deal("d-k1", "p-k"), deal("d-k2", "p-k")
    )
    first = await db.apply(to_anna(message_id="k1@customer.test"))
    thread = await db.thread_of("acct-anna", "k1@customer.test")
    assert ("lead", "l-k", "auto") in await db.links(thread)
    assert len(threads_events(first, "mail.thread.link_choice_needed")) == 1
    again = await db.apply(to_anna(message_id="k2@customer.test", in_reply_to="k1@customer.test"))
    assert threads_events(again, "mail.thread.link_choice_needed") == []


# R14, R15 visibility


async def test_r15_a_default_visibility_change_leaves_existing_threads_alone(db: LinkerDb) -> None:
    await db.apply(to_anna(message_id="v1@customer.test", subject="Before", visibility="shared"))
    await db.apply(
        to_anna(
            message_id="v2@customer.test", in_reply_to="v1@customer.test", visibility="private"
        ),
        to_anna(message_id="v3@customer.test", subject="After", sender=OTHER, visibility="private"),
    )
    old = await db.thread_of("acct-anna", "v1@customer.test")
    new = await db.thread_of("acct-anna", "v3@customer.test")
    assert (await db.thread(old))["visibility"] == "shared"
    assert (await db.thread(new))["visibility"] == "private"


async def test_r14_r15_the_owner_changes_one_threads_visibility_and_nobody_else_can(
    db: LinkerDb,
) -> None:
    await db.apply(to_anna(message_id="sv@customer.test"))
    thread = await db.thread_of("acct-anna", "sv@customer.test")
    staged = await db.apply(action(SetThreadVisibility, thread, visibility="private"))
    assert (await db.thread(thread))["visibility"] == "private"
    assert threads_events(staged, "mail.thread.updated")[0].data.reason == "visibility_changed"
    with pytest.raises(CommandRefused, match="does not manage"):
        await db.apply(action(SetThreadVisibility, thread, "u-ben", visibility="shared"))
    with pytest.raises(CommandRefused, match="cannot be team"):
        await db.apply(action(SetThreadVisibility, thread, visibility="team"))


async def test_r2_r14_team_inbox_members_manage_it_and_threads_default_to_team(
    db: LinkerDb,
) -> None:
    shared_inbox = ingested(
        "acct-team",
        owner="u-anna",
        account_email="sales@sales.test",
        sender=CUSTOMER,
        to=["sales@sales.test"],
        message_id="team@customer.test",
        account_type="team",
        members=["u-anna", "u-ben"],
        visibility="team",
    )
    await db.apply(shared_inbox)
    thread = await db.thread_of("acct-team", "team@customer.test")
    assert (await db.thread(thread))["visibility"] == "team"
    await db.apply(action(ArchiveThread, thread, "u-ben"))
    assert (await db.thread(thread))["archived"]
    with pytest.raises(CommandRefused):
        await db.apply(action(SetThreadVisibility, thread, "u-ben", visibility="private"))


# R17 archive, R18 delete, R8 mailbox deletes


async def test_r17_archive_keeps_links_publishes_mailbox_places_and_unarchive_returns_it(
    db: LinkerDb,
) -> None:
    await db.apply(person("p-ar", CUSTOMER), deal("d-ar", "p-ar"))
    await db.apply(to_anna(message_id="ar@customer.test", uid=77))
    thread = await db.thread_of("acct-anna", "ar@customer.test")
    staged = await db.apply(action(ArchiveThread, thread))
    archived = threads_events(staged, "mail.thread.archived")[0]
    assert [(p.folder, p.uid) for p in archived.data.locations] == [("INBOX", 77)]
    assert (await db.thread(thread))["archived"]
    assert ("deal", "d-ar", "auto") in await db.links(thread)
    assert await db.apply(action(ArchiveThread, thread)) == []
    staged = await db.apply(action(UnarchiveThread, thread))
    assert threads_events(staged, "mail.thread.unarchived")
    assert not (await db.thread(thread))["archived"]


async def test_r17_new_mail_in_an_archived_thread_brings_it_back_to_the_inbox(db: LinkerDb) -> None:
    await db.apply(to_anna(message_id="back1@customer.test"))
    thread = await db.thread_of("acct-anna", "back1@customer.test")
    await db.apply(action(ArchiveThread, thread))
    await db.apply(to_anna(message_id="back2@customer.test", in_reply_to="back1@customer.test"))
    assert not (await db.thread(thread))["archived"]


async def test_r18_a_deleted_thread_is_gone_for_good_even_when_the_mail_is_synced_again(
    db: LinkerDb,
) -> None:
    await db.apply(person("p-del", CUSTOMER))
    message = to_anna(message_id="del@customer.test", uid=5)
    await db.apply(message)
    thread = await db.thread_of("acct-anna", "del@customer.test")
    staged = await db.apply(action(DeleteThread, thread))
    gone = threads_events(staged, "mail.thread.deleted")[0]
    assert gone.data.origin == "user"
    assert [(p.folder, p.uid) for p in gone.data.locations] == [("INBOX", 5)]
    assert not await db.has_thread(thread)
    assert await db.fetchval("SELECT count(*) FROM thread_links WHERE thread_id = $1", thread) == 0
    # Ingest publishes it again (a UIDVALIDITY resync, a move): it does not come back.
    assert (
        await db.apply(message, to_anna(message_id="del@customer.test", folder="Archive", uid=9))
        == []
    )
    assert not await db.is_filed("acct-anna", "del@customer.test")


async def test_r18_deleting_one_message_keeps_the_thread_and_the_last_one_deletes_it(
    db: LinkerDb,
) -> None:
    await db.apply(to_anna(message_id="dm1@customer.test"))
    await db.apply(to_anna(message_id="dm2@customer.test", in_reply_to="dm1@customer.test"))
    thread = await db.thread_of("acct-anna", "dm1@customer.test")
    first, second = await db.message_uids(thread)
    staged = await db.apply(action(DeleteMessage, thread, message_id=str(first)))
    assert threads_events(staged, "mail.message.deleted")[0].data.message_id == str(first)
    assert (await db.thread(thread))["message_count"] == 1
    staged = await db.apply(action(DeleteMessage, thread, message_id=str(second)))
    assert threads_events(staged, "mail.thread.deleted")
    assert not await db.has_thread(thread)


async def test_r8_a_message_expunged_from_the_mailbox_is_deleted_in_the_crm(db: LinkerDb) -> None:
    first = to_anna(message_id="ex1@customer.test")
    second = to_anna(message_id="ex2@customer.test", in_reply_to="ex1@customer.test")
    await db.apply(first, second)
    thread = await db.thread_of("acct-anna", "ex1@customer.test")
    staged = await db.apply(expunged(second))
    deleted_event = threads_events(staged, "mail.message.deleted")[0]
    assert deleted_event.data.origin == "mailbox"
    staged = await db.apply(expunged(first))
    assert threads_events(staged, "mail.thread.deleted")[0].data.origin == "mailbox"
    assert not await db.has_thread(thread)
    # Unlike a CRM delete, the mailbox can bring it back (restored from Trash).
    await db.apply(first)
    assert await db.is_filed("acct-anna", "ex1@customer.test")


async def test_commands_from_another_company_or_for_unknown_threads_are_refused(
    db: LinkerDb,
) -> None:
    await db.apply(to_anna(message_id="iso@customer.test"))
    thread = await db.thread_of("acct-anna", "iso@customer.test")
    foreign = ArchiveThread.build(
        company_id="another-company",
        source="crm",
        data=ThreadActionData(thread_id=str(thread), acting_user_id="u-anna"),
    )
    with pytest.raises(CommandRefused, match="no thread"):
        await db.apply(foreign)
    with pytest.raises(CommandRefused, match="no thread"):
        await db.apply(action(ArchiveThread, "00000000-0000-0000-0000-000000000000"))
    assert not (await db.thread(thread))["archived"]


async def test_the_same_message_twice_changes_nothing_the_second_time(db: LinkerDb) -> None:
    await db.apply(person("p-twice", CUSTOMER))
    message = to_anna(message_id="twice@customer.test")
    await db.apply(message)
    before = await db.snapshot()
    assert await db.apply(message) == []
    assert await db.snapshot() == before


async def test_mark_read_clears_unread_and_marking_unread_sets_it(db: LinkerDb) -> None:
    await db.apply(to_anna(message_id="rd@customer.test"))
    thread = await db.thread_of("acct-anna", "rd@customer.test")
    assert (await db.thread(thread))["unread"]
    await db.apply(action(MarkThreadRead, thread))
    assert not (await db.thread(thread))["unread"]
    await db.apply(action(MarkThreadRead, thread, read=False))
    assert (await db.thread(thread))["unread"]


async def test_r11_one_poll_files_a_conversation_in_order_and_the_same_message_twice_once(
    db: LinkerDb,
) -> None:
    await db.apply(person("p-poll", CUSTOMER), deal("d-poll", "p-poll"))
    original = to_anna(message_id="p1@customer.test", subject="Renewal")
    reply = to_anna(
        message_id="p2@sales.test", sender=ANNA, to=[CUSTOMER], in_reply_to="p1@customer.test"
    )
    by_subject = to_anna(message_id="p3@customer.test", subject="Re: Renewal")
    unrelated = to_anna(message_id="p4@other.test", sender=OTHER, subject="Hello")
    staged = await db.apply_poll(
        original, reply, original, by_subject, unrelated, expunged(unrelated)
    )
    thread = await db.thread_of("acct-anna", "p1@customer.test")
    assert await db.thread_of("acct-anna", "p2@sales.test") == thread
    assert await db.thread_of("acct-anna", "p3@customer.test") == thread
    assert (await db.thread(thread))["message_count"] == 3
    assert ("deal", "d-poll", "auto") in await db.links(thread)
    assert not await db.is_filed("acct-anna", "p4@other.test")
    updates = threads_events(staged, "mail.thread.updated")
    assert [e.data.message_count for e in updates if e.data.thread_id == str(thread)] == [3]


async def test_r12_r20_crm_sent_mail_matches_by_recipients_and_its_sent_copy_is_one_message(
    db: LinkerDb,
) -> None:
    await db.apply(person("p-out", CUSTOMER), deal("d-out", "p-out"), deal("d-other", "p-out"))
    sent = _sent_from_deal("out-1@sales.test", "d-other")
    staged = await db.apply(sent)
    thread = await db.thread_of("acct-anna", "out-1@sales.test")
    # Sent from a deal's detail view: linked to that deal by the sender, no choice asked.
    assert ("deal", "d-other", "manual") in await db.links(thread)
    assert ("person", "p-out", "auto") in await db.links(thread)
    assert threads_events(staged, "mail.thread.link_choice_needed") == []
    assert not (await db.thread(thread))["unread"]
    # Ingest finds the copy in Sent later: the same message, now with its mailbox place.
    copy = to_anna(
        message_id="out-1@sales.test",
        sender=ANNA,
        to=[CUSTOMER],
        folder="Sent",
        folder_role="sent",
        uid=41,
        subject="Your offer",
    )
    assert await db.apply(copy) == []
    assert (await db.thread(thread))["message_count"] == 1
    places = await db.fetch(
        "SELECT folder, uid FROM message_locations WHERE account_id = 'acct-anna'"
        " AND message_key = 'mid:out-1@sales.test'"
    )
    assert [(r["folder"], r["uid"]) for r in places] == [("Sent", 41)]
    # A reply written in the CRM, under another subject and from another deal's detail
    # view, joins the thread it names and moves it to that deal.
    reply = _sent_from_deal("out-2@sales.test", "d-out", in_reply_to_thread=thread)
    await db.apply(reply)
    assert await db.thread_of("acct-anna", "out-2@sales.test") == thread
    assert {(e, o) for k, e, o in await db.links(thread) if k == "deal"} == {("d-out", "manual")}


def _sent_from_deal(
    message_id: str, deal_id: str, in_reply_to_thread: UUID | None = None
) -> MessageSent:
    """What outbound publishes for mail Anna sent to the customer from a deal's view."""
    return MessageSent.build(
        company_id=COMPANY,
        source="outbound",
        data=MessageSentData.model_validate(
            {
                "idempotency_key": f"send-{message_id}",
                "account_id": "acct-anna",
                "user_id": "u-anna",
                "message_id": message_id,
                "in_reply_to_thread_id": None
                if in_reply_to_thread is None
                else str(in_reply_to_thread),
                "from": {"email": ANNA},
                "to": [{"email": CUSTOMER}],
                "subject": "Your offer" if in_reply_to_thread is None else "Signed contract",
                "sent_at": T0,
                "related_items": [{"kind": "deal", "entity_id": deal_id}],
            }
        ),
    )


async def test_crm_records_newest_wins_in_any_order_and_an_older_upsert_never_undoes_a_delete(
    db: LinkerDb,
) -> None:
    await db.apply(to_anna(message_id="ord@customer.test"))
    thread = await db.thread_of("acct-anna", "ord@customer.test")
    newer = person("p-ord", CUSTOMER, at=T0 + timedelta(hours=2))
    older = person("p-ord", OTHER, at=T0 + timedelta(hours=1))
    removal = deleted("person", "p-ord")  # now: later than both
    await db.apply(newer, older)
    assert ("person", "p-ord", "auto") in await db.links(thread), "the newer address wins"
    await db.apply(removal, newer, older)
    assert await db.links(thread) == set(), "an older upsert does not bring it back"
