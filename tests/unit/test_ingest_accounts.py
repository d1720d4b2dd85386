"""Ingest's account rules, pure: who is the default (R3), what a settings update leaves stored
(R6, R9, R14), and re-sealing credentials with the primary key (R5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from mailsync_contracts import AccountSettings, SyncScope, UpdateAccountSettingsData
from mailsync_ingest.credentials import CredentialCipher, CredentialsUnreadable
from mailsync_ingest.domain import (
    UserAccount,
    blocklist_entry,
    canonical_blocklist,
    connected_count,
    current_default,
    default_on_connect,
    merge_settings,
    successor_default,
)

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def account(
    account_id: str, state: str = "active", *, default: bool = False, minutes: int = 0
) -> UserAccount:
    return UserAccount(account_id, state, default, T0 + timedelta(minutes=minutes))


@pytest.mark.parametrize(
    ("accounts", "leaving", "successor"),
    [
        pytest.param([account("a", default=True)], "a", None, id="last-account-leaves"),
        pytest.param(
            [account("a", default=True), account("b", minutes=1), account("c", minutes=2)],
            "a",
            "b",
            id="oldest-remaining",
        ),
        pytest.param(
            [account("c", minutes=2), account("a", default=True), account("b", minutes=1)],
            "a",
            "b",
            id="order-of-input-does-not-matter",
        ),
        pytest.param(
            [
                account("a", default=True),
                account("b", "disconnected", minutes=1),
                account("c", "reauth_required", minutes=2),
                account("d", minutes=3),
            ],
            "a",
            "c",
            id="reauth-required-still-counts-disconnected-does-not",
        ),
        pytest.param(
            [account("a", default=True), account("b", "disconnected", minutes=1)],
            "a",
            None,
            id="only-disconnected-remain",
        ),
        pytest.param(
            [account("a", default=True), account("z", minutes=5), account("y", minutes=5)],
            "a",
            "y",
            id="same-instant-by-id",
        ),
        pytest.param(
            [account("a", minutes=0), account("b", default=True, minutes=1)],
            "b",
            "a",
            id="an-older-account-than-the-default",
        ),
    ],
)
def test_r3_when_the_default_leaves_the_oldest_remaining_account_becomes_default(
    accounts: list[UserAccount], leaving: str, successor: str | None
) -> None:
    assert successor_default(accounts, leaving) == successor


@pytest.mark.parametrize(
    ("accounts", "connecting", "becomes_default"),
    [
        pytest.param([], "a", True, id="first-account"),
        pytest.param([account("a", "disconnected")], "a", True, id="reconnect-of-the-only-one"),
        pytest.param([account("a", default=True)], "b", False, id="user-has-a-default"),
        pytest.param(
            [account("a", default=True), account("b", "disconnected")],
            "b",
            False,
            id="reconnect-while-another-is-default",
        ),
        pytest.param(
            [account("a", "disconnected", default=True)],
            "b",
            True,
            id="a-disconnected-default-is-no-default",
        ),
        pytest.param(
            [account("a", "reauth_required", default=True)],
            "b",
            False,
            id="reauth-required-default-stays",
        ),
    ],
)
def test_r3_a_connected_account_becomes_default_only_when_the_user_has_none(
    accounts: list[UserAccount], connecting: str, becomes_default: bool
) -> None:
    assert default_on_connect(accounts, connecting) is becomes_default


def test_r3_the_current_default_is_never_a_disconnected_account() -> None:
    assert current_default([account("a"), account("b", default=True)]) == "b"
    assert current_default([account("a", "disconnected", default=True)]) is None
    assert current_default([]) is None


def test_r1_disconnected_accounts_do_not_count_against_the_plan_limit() -> None:
    accounts = [account("a"), account("b", "reauth_required"), account("c", "disconnected")]
    assert connected_count(accounts) == 2


@pytest.mark.parametrize(
    ("entry", "canonical"),
    [
        ("ole@customer.test", "ole@customer.test"),
        ("  Ole@Customer.TEST ", "Ole@customer.test"),  # local part as written, domain lowered
        ("@customer.test", "@customer.test"),
        ("@Customer.Test.", "@customer.test"),  # a trailing dot is the same domain
        ("@bücher.de", "@xn--bcher-kva.de"),  # IDN domains in their ASCII form
        ("kunde@bücher.de", "kunde@xn--bcher-kva.de"),
        ("@xn--bcher-kva.de", "@xn--bcher-kva.de"),
        ("*@spam.test", "*@spam.test"),
        ("@localhost", "@localhost"),
        ('"ole@home"@customer.test', '"ole@home"@customer.test'),
    ],
)
def test_r9_blocklist_entries_are_stored_in_canonical_form(entry: str, canonical: str) -> None:
    assert blocklist_entry(entry) == canonical


@pytest.mark.parametrize(
    "entry",
    [
        "",
        "   ",
        "@",
        "customer.test",
        "ole@",
        "@@customer.test",
        "ole@@customer.test",
        "@.customer.test",
        "@customer..test",
        "@-customer.test",
        "@customer.test/x",
        "Ole Hansen <ole@customer.test>",
        "ole@customer.test, eva@customer.test",
        "ole@[192.0.2.1]",
        "ole@cust\x00omer.test",
        "@" + "a" * 64 + ".test",
    ],
)
def test_r9_an_entry_that_is_neither_name_at_domain_nor_at_domain_is_refused(entry: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (every refusal is a plain ValueError)
        blocklist_entry(entry)


def test_r9_a_blocklist_keeps_usable_entries_once_in_order_and_reports_the_rest() -> None:
    kept, unusable = canonical_blocklist(
        ["@Spam.test", "not an address", "ole@customer.test", "@spam.test", "OLE@customer.test"]
    )
    assert kept == ("@spam.test", "ole@customer.test")
    assert unusable == ("not an address",)


CURRENT = AccountSettings(
    sync_scope=SyncScope(mode="folders", folders=("INBOX",)),
    history_days=30,
    default_visibility="private",
    mirror_archive=True,
    blocklist=("@spam.test",),
)


@pytest.mark.parametrize(
    ("update", "account_type", "expected", "not_applied"),
    [
        pytest.param({}, "personal", CURRENT, 0, id="nothing-given-nothing-changes"),
        pytest.param(
            {"history_days": 90, "mirror_delete": True},
            "personal",
            CURRENT.model_copy(update={"history_days": 90, "mirror_delete": True}),
            0,
            id="only-given-fields-change",
        ),
        pytest.param(
            {"sync_scope": SyncScope()},
            "personal",
            CURRENT.model_copy(update={"sync_scope": SyncScope()}),
            0,
            id="r6-scope-back-to-all-mail",
        ),
        pytest.param(
            {"mirror_archive": False},
            "personal",
            CURRENT.model_copy(update={"mirror_archive": False}),
            0,
            id="false-is-a-value-not-absence",
        ),
        pytest.param(
            {"default_visibility": "shared"},
            "personal",
            CURRENT.model_copy(update={"default_visibility": "shared"}),
            0,
            id="r14-personal-shared",
        ),
        pytest.param(
            {"default_visibility": "team"},
            "personal",
            CURRENT,
            1,
            id="r14-personal-account-has-no-team-visibility",
        ),
        pytest.param(
            {"default_visibility": "team"},
            "team",
            CURRENT.model_copy(update={"default_visibility": "team"}),
            0,
            id="r14-team-account-team-visibility",
        ),
        pytest.param(
            {"default_visibility": "private"},
            "team",
            CURRENT,
            1,
            id="r14-team-account-has-no-private-visibility",
        ),
        pytest.param(
            {"blocklist": ()},
            "personal",
            CURRENT.model_copy(update={"blocklist": ()}),
            0,
            id="r9-empty-list-unblocks-everyone",
        ),
        pytest.param(
            {"blocklist": ("Eva@Customer.test", "eva <eva@x.test>", "@Bücher.de", "bad")},
            "personal",
            CURRENT.model_copy(update={"blocklist": ("Eva@customer.test", "@xn--bcher-kva.de")}),
            2,
            id="r9-bad-entries-dropped-good-ones-replace-the-list",
        ),
        pytest.param(
            {"blocklist": ("bad",), "mirror_delete": True},
            "personal",
            CURRENT.model_copy(update={"blocklist": (), "mirror_delete": True}),
            1,
            id="r9-the-rest-of-the-command-still-applies",
        ),
    ],
)
def test_r9_r14_a_settings_update_merges_given_fields_and_drops_unusable_parts(
    update: dict[str, object], account_type: str, expected: AccountSettings, not_applied: int
) -> None:
    command = UpdateAccountSettingsData.model_validate({"account_id": "a", **update})
    change = merge_settings(CURRENT, command, account_type)
    assert change.settings == expected
    assert len(change.not_applied) == not_applied


def test_r9_a_dropped_entry_is_named_in_the_reason() -> None:
    change = merge_settings(
        AccountSettings(),
        UpdateAccountSettingsData(account_id="a", blocklist=("no-at-sign",)),
        "personal",
    )
    assert change.not_applied == (
        "blocklist entry 'no-at-sign' is neither name@domain nor @domain",
    )


def keys(*fernet_keys: bytes) -> SecretStr:
    return SecretStr(",".join(k.decode() for k in fernet_keys))


def test_r5_reseal_moves_a_password_sealed_with_an_old_key_to_the_primary_key() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    sealed_with_old = CredentialCipher(keys(old)).seal("app-password")
    resealed = CredentialCipher(keys(new, old)).reseal(sealed_with_old)
    assert resealed is not None
    assert CredentialCipher(keys(new)).open(resealed).get_secret_value() == "app-password"


def test_r5_reseal_leaves_a_password_already_sealed_with_the_primary_key() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    cipher = CredentialCipher(keys(new, old))
    assert cipher.reseal(cipher.seal("app-password")) is None


def test_r5_reseal_of_a_password_no_configured_key_opens_says_so() -> None:
    lost, current = Fernet.generate_key(), Fernet.generate_key()
    sealed = CredentialCipher(keys(lost)).seal("app-password")
    with pytest.raises(CredentialsUnreadable) as raised:
        CredentialCipher(keys(current)).reseal(sealed)
    assert "app-password" not in str(raised.value)
