"""The linker's pure rules: who takes part in a conversation and what they link to (R12), and
which identifiers tie a message to its conversation (R11)."""

from __future__ import annotations

import pytest

from mailsync_linker.domain import (
    Address,
    Link,
    address_key,
    external_participants,
    message_key,
    referenced_ids,
)
from mailsync_linker.linking import person_links

SHA = "ab" * 32
OWN = ["dana@demo-sales.test", "marco@demo-sales.test"]


@pytest.mark.parametrize(
    ("email", "key"),
    [
        ("sarah@northwind.test", "sarah@northwind.test"),
        ("Sarah.OConnor@Northwind-Freight.TEST", "sarah.oconnor@northwind-freight.test"),
        ("  padded@x.test ", "padded@x.test"),
        ("katrin@kessler-präzision.test", "katrin@xn--kessler-przision-4nb.test"),
        ("katrin@XN--KESSLER-PRZISION-4NB.test", "katrin@xn--kessler-przision-4nb.test"),
        ("a@example.test.", "a@example.test"),
        ("not an address", "not an address"),
    ],
)
def test_r12_addresses_compare_case_insensitively_with_idn_domains_in_ace_form(
    email: str, key: str
) -> None:
    assert address_key(email) == key
    assert Address(email).key == key


@pytest.mark.parametrize(
    ("addresses", "own", "expected"),
    [
        (
            [Address("sarah@n.test", "Sarah"), Address("dana@demo-sales.test", "Dana")],
            OWN,
            [Address("sarah@n.test", "Sarah")],
        ),
        (
            [Address("DANA@Demo-Sales.test"), Address("Marco@demo-sales.TEST", "Marco")],
            OWN,
            [],
        ),
        (
            [
                Address("Sarah@N.test", "Sarah O."),
                Address("sarah@n.test", "S"),
                Address("j@n.test"),
            ],
            OWN,
            [Address("sarah@n.test", "Sarah O."), Address("j@n.test")],
        ),
        (
            [Address("k@xn--kessler-przision-4nb.test", "Katrin")],
            ["k@kessler-präzision.test"],
            [],
        ),
        (
            [
                Address("k@kessler-präzision.test", "Katrin"),
                Address("K@xn--kessler-przision-4nb.test"),
            ],
            [],
            [Address("k@xn--kessler-przision-4nb.test", "Katrin")],
        ),
        ([Address(""), Address("  "), Address("x@n.test")], [], [Address("x@n.test")]),
        ([], OWN, []),
    ],
    ids=[
        "own-address-excluded",
        "own-and-colleague-excluded-case-insensitively",
        "deduplicated-first-mention-wins",
        "own-idn-address-excluded-in-either-form",
        "idn-forms-deduplicated",
        "blank-addresses-dropped",
        "nobody",
    ],
)
def test_r12_external_participants_exclude_own_addresses_and_deduplicate(
    addresses: list[Address], own: list[str], expected: list[Address]
) -> None:
    assert external_participants(addresses, own) == expected


def test_r12_external_participants_accept_any_iterable_of_own_addresses() -> None:
    own = (a for a in ["dana@demo-sales.test"])
    assert external_participants([Address("Dana@demo-sales.test")], own) == []


@pytest.mark.parametrize(
    ("participants", "persons_by_email", "organization_of_person", "expected"),
    [
        (
            [Address("sarah@n.test"), Address("james@n.test")],
            {"sarah@n.test": ["person-1"], "james@n.test": ["person-2"]},
            {"person-1": "org-1", "person-2": "org-1"},
            [Link("person", "person-1"), Link("organization", "org-1"), Link("person", "person-2")],
        ),
        (
            [Address("shared@n.test")],
            {"shared@n.test": ["person-9", "person-3"]},
            {"person-3": "org-2", "person-9": "org-1"},
            [
                Link("person", "person-3"),
                Link("organization", "org-2"),
                Link("person", "person-9"),
                Link("organization", "org-1"),
            ],
        ),
        (
            [Address("Sarah@N.test"), Address("sarah@n.test")],
            {"sarah@n.test": ["person-1"]},
            {"person-1": "org-1"},
            [Link("person", "person-1"), Link("organization", "org-1")],
        ),
        (
            [Address("loner@x.test")],
            {"loner@x.test": ["person-5"]},
            {"person-5": None},
            [Link("person", "person-5")],
        ),
        (
            [Address("orphan@x.test")],
            {"orphan@x.test": ["person-6"]},
            {},
            [Link("person", "person-6")],
        ),
        ([Address("unknown@x.test")], {}, {}, []),
        (
            [Address("k@kessler-präzision.test")],
            {"k@xn--kessler-przision-4nb.test": ["person-4"]},
            {"person-4": "org-2"},
            [Link("person", "person-4"), Link("organization", "org-2")],
        ),
    ],
    ids=[
        "colleagues-at-one-org-bring-it-once",
        "one-address-two-persons-sorted",
        "same-person-twice",
        "person-without-organization",
        "organization-unknown",
        "nobody-matched",
        "idn-participant-matches-ace-key",
    ],
)
def test_r12_each_matched_person_brings_their_organization_once(
    participants: list[Address],
    persons_by_email: dict[str, list[str]],
    organization_of_person: dict[str, str | None],
    expected: list[Link],
) -> None:
    links = person_links([p.key for p in participants], persons_by_email, organization_of_person)
    assert links == expected
    assert all(link.origin == "auto" for link in links)


@pytest.mark.parametrize(
    ("message_id", "expected"),
    [
        ("demo-01@demo-sales.test", "mid:demo-01@demo-sales.test"),
        ("Demo-01@Demo-Sales.TEST", "mid:demo-01@demo-sales.test"),
        ("  demo-01@demo-sales.test\t", "mid:demo-01@demo-sales.test"),
        ("<demo-01@demo-sales.test>", "mid:demo-01@demo-sales.test"),
        (None, f"sha256:{SHA}"),
        ("", f"sha256:{SHA}"),
        ("   ", f"sha256:{SHA}"),
        ("<>", f"sha256:{SHA}"),
    ],
    ids=["plain", "case", "whitespace", "brackets", "none", "empty", "blank", "empty-brackets"],
)
def test_r11_message_key_prefers_the_message_id_and_falls_back_to_the_content_hash(
    message_id: str | None, expected: str
) -> None:
    assert message_key(message_id, SHA) == expected


def test_r11_two_messages_without_message_id_keep_distinct_keys() -> None:
    assert message_key("  ", "aa" * 32) != message_key("  ", "bb" * 32)


@pytest.mark.parametrize(
    ("message_id", "in_reply_to", "references", "expected"),
    [
        ("m4@x", "m3@x", ["m1@x", "m2@x", "m3@x"], ["m3@x", "m2@x", "m1@x", "m4@x"]),
        ("m2@x", None, ["m1@x"], ["m1@x", "m2@x"]),
        ("m2@x", "m1@x", [], ["m1@x", "m2@x"]),
        ("m1@x", None, [], ["m1@x"]),
        (None, None, [], []),
        ("M4@X", "m3@X", ["M1@x", "m3@x", "m1@X"], ["m3@x", "m1@x", "m4@x"]),
        ("m2@x", "<m1@x>", ["<m1@x>"], ["m1@x", "m2@x"]),
        ("m2@x", "", ["", "  ", "m1@x"], ["m1@x", "m2@x"]),
        ("m1@x", "m1@x", ["m1@x"], ["m1@x"]),
    ],
    ids=[
        "in-reply-to-then-newest-reference-then-own",
        "references-only",
        "in-reply-to-only",
        "own-only",
        "nothing",
        "case-insensitive-duplicates-keep-first-place",
        "brackets-stripped",
        "blanks-dropped",
        "all-the-same",
    ],
)
def test_r11_referenced_ids_put_in_reply_to_first_then_references_newest_first_then_own(
    message_id: str | None, in_reply_to: str | None, references: list[str], expected: list[str]
) -> None:
    assert referenced_ids(message_id, in_reply_to, references) == expected


def test_r11_referenced_ids_accept_any_iterable_of_references() -> None:
    assert referenced_ids("m3@x", None, iter(["m1@x", "m2@x"])) == ["m2@x", "m1@x", "m3@x"]


def test_r11_a_reply_shares_a_referenced_id_with_its_parent() -> None:
    parent = referenced_ids("Parent@X.test", None, [])
    reply = referenced_ids("reply@x.test", "<parent@x.test>", ["parent@x.test"])
    assert set(parent) & set(reply) == {"parent@x.test"}
    assert message_key("Parent@X.test", SHA) == f"mid:{parent[0]}"
