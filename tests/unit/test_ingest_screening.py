"""R9 blocklist screening: a message is screened only when its sender is blocked and no other
participant (To/Cc, ignoring the account's own addresses) is unblocked."""

from __future__ import annotations

import pytest

from mailsync_ingest.screening import Blocklist, screening_reason

OWN_ADDRESSES = ("me@acme.com", "Me.Alias@Acme.com")


@pytest.mark.parametrize(
    ("entries", "addresses", "domains"),
    [
        (["Ole@Example.COM"], {"ole@example.com"}, set()),
        (["@X.com"], set(), {"x.com"}),
        ([" @x.com. ", "@x.com"], set(), {"x.com"}),
        (["@BÜCHER.de"], set(), {"xn--bcher-kva.de"}),
        (["Ole@BÜCHER.de"], {"ole@xn--bcher-kva.de"}, set()),
        (["ole@x.com", "@x.com"], {"ole@x.com"}, {"x.com"}),
        # Unusable entries are skipped, the rest still count.
        (["", "@", "x.com", "ole", "@@x.com", "ole@", "o le@x.com", "@x .com", "@x.com"],
         set(), {"x.com"}),
    ],
)  # fmt: skip
def test_r9_blocklist_entries_are_normalised_and_unusable_ones_skipped(
    entries: list[str], addresses: set[str], domains: set[str]
) -> None:
    blocklist = Blocklist.from_entries(entries)
    assert blocklist.addresses == addresses
    assert blocklist.domains == domains


@pytest.mark.parametrize(
    ("entries", "address", "blocked"),
    [
        (["@x.com"], "ole@x.com", True),
        (["@x.com"], "OLE@X.COM", True),
        (["@x.com"], "ole@x.com.", True),
        (["@x.com"], "ole@eu.x.com", False),
        (["@x.com"], "ole@notx.com", False),
        (["@x.com"], "ole@x.com.evil.example", False),
        (["ole@x.com"], "Ole@X.com", True),
        (["ole@x.com"], "anna@x.com", False),
        (["@bücher.de"], "Ole@BÜCHER.de", True),
        (["ole@xn--bcher-kva.de"], "Ole@BÜCHER.de", True),
        (["@xn--bcher-kva.de"], "ole@bücher.de", True),
        (["@x.com"], "not an address", False),
        (["@x.com"], "", False),
        ([], "ole@x.com", False),
    ],
)
def test_r9_blocked_addresses_and_exactly_the_blocked_domains_are_blocked(
    entries: list[str], address: str, blocked: bool
) -> None:
    assert Blocklist.from_entries(entries).blocks(address) is blocked


@pytest.mark.parametrize(
    ("sender", "recipients", "entries", "reason"),
    [
        pytest.param(
            "ole@x.com", ["me@acme.com"], ["@x.com"],
            "sender ole@x.com is blocked (@x.com)",
            id="blocked sender writing to me alone",
        ),
        pytest.param(
            "ole@x.com", [], ["ole@x.com"],
            "sender ole@x.com is blocked (ole@x.com)",
            id="blocked by address, no recipients at all",
        ),
        pytest.param(
            "anna@acme.com", ["me@acme.com", "bob@acme.com"], ["@acme.com"],
            "sender anna@acme.com is blocked (@acme.com), and so is every other participant",
            id="colleague-only thread from a blocked internal domain",
        ),
        pytest.param(
            "me@acme.com", ["bob@acme.com"], ["@acme.com"],
            "sender me@acme.com is blocked (@acme.com), and so is every other participant",
            id="my own internal mail to a colleague",
        ),
        pytest.param(
            "ole@x.com", ["me@acme.com", "customer@client.example"], ["@x.com"], None,
            id="one unblocked customer keeps the message",
        ),
        pytest.param(
            "ole@x.com", ["me@acme.com", "anna@x.com", "customer@client.example"], ["@x.com"],
            None,
            id="unblocked customer in Cc among blocked ones",
        ),
        pytest.param(
            "me@acme.com", ["customer@client.example"], ["@acme.com"], None,
            id="my own mail to a customer",
        ),
        pytest.param(
            "ole@x.com", ["ME@ACME.COM", "me.alias@acme.com"], ["@x.com"],
            "sender ole@x.com is blocked (@x.com)",
            id="own addresses in any case are ignored",
        ),
        pytest.param(
            "ole@x.com", ["ole@x.com"], ["@x.com"],
            "sender ole@x.com is blocked (@x.com), and so is every other participant",
            id="sender copying himself",
        ),
        pytest.param(
            "ole@x.com", ["anna@y.com", "bob@x.com"], ["@x.com", "anna@y.com"],
            "sender ole@x.com is blocked (@x.com), and so is every other participant",
            id="others blocked by address and by domain",
        ),
        pytest.param(
            "ole@x.com", ["undisclosed-recipients:;", "me@acme.com"], ["@x.com"],
            "sender ole@x.com is blocked (@x.com)",
            id="an unreadable recipient is nobody",
        ),
        pytest.param(
            "Ole@BÜCHER.de", ["me@acme.com"], ["@bücher.de"],
            "sender Ole@BÜCHER.de is blocked (@xn--bcher-kva.de)",
            id="IDN sender",
        ),
        pytest.param(
            "ole@eu.x.com", ["me@acme.com"], ["@x.com"], None,
            id="subdomain of a blocked domain",
        ),
        pytest.param(
            "ole@y.com", ["me@acme.com"], ["@x.com"], None,
            id="sender not blocked",
        ),
        pytest.param(None, ["me@acme.com"], ["@x.com"], None, id="no sender"),
        pytest.param("", ["me@acme.com"], ["@x.com"], None, id="empty sender"),
        pytest.param("ole@x.com", ["me@acme.com"], [], None, id="empty blocklist"),
    ],
)  # fmt: skip
def test_r9_a_message_is_screened_only_when_its_sender_and_every_other_participant_are_blocked(
    sender: str | None, recipients: list[str], entries: list[str], reason: str | None
) -> None:
    blocklist = Blocklist.from_entries(entries)
    assert screening_reason(sender, recipients, OWN_ADDRESSES, blocklist) == reason
