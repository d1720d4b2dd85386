"""Mailbox accounts: commands to ingest (`mail.account.commands.v1`) and its reports
(`mail.accounts.v1`), both keyed by account id so one account's story stays in order.

Invariants:
- passwords are `SecretStr`: hidden from repr, str and logs, but written in the clear by
  `to_bytes()` because ingest must store them (encrypted, R5) and the command topic is
  internal; no event on `mail.accounts.v1` carries a credential;
- in `mail.account.update_settings` an absent (null) field means "unchanged";
- a `SyncScope` in "folders" mode names at least one folder (R6).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_serializer, model_validator

from mailsync_contracts.envelope import ContractModel, Envelope
from mailsync_contracts.values import AccountType, Visibility

Security = Literal["tls", "starttls", "plain"]
Plan = Literal["growth", "premium", "ultimate"]


class MailServer(ContractModel):
    """An IMAP or SMTP endpoint, given explicitly instead of (or resolved from) a preset (R4)."""

    host: str
    port: Annotated[int, Field(ge=1, le=65535)]
    security: Security


class SyncScope(ContractModel):
    """R6: sync all mail, or only the named folders/labels."""

    mode: Literal["all", "folders"] = "all"
    folders: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _folders_mode_names_folders(self) -> SyncScope:
        if self.mode == "folders" and not self.folders:
            raise ValueError('sync scope "folders" must name at least one folder')
        return self


class AccountSettings(ContractModel):
    """An account's effective settings after a connect or an update."""

    sync_scope: SyncScope = SyncScope()
    history_days: Annotated[int, Field(ge=0)] | None = None
    default_visibility: Visibility | None = None
    mirror_archive: bool = False
    mirror_delete: bool = False
    blocklist: tuple[str, ...] = ()


class ConnectAccountData(ContractModel):
    """Connect a mailbox for `user_id` (R1–R4).

    `provider` is a preset name ("gmail", "office365", ...); None means derive it from the
    address's domain or use the explicit `imap`/`smtp` servers. `history_days` None = all mail.
    """

    account_id: str
    user_id: str
    email: str
    display_name: str | None = None
    provider: str | None = None
    imap: MailServer | None = None
    smtp: MailServer | None = None
    username: str
    password: SecretStr
    account_type: AccountType
    member_user_ids: tuple[str, ...] = ()
    plan: Plan
    sync_scope: SyncScope = SyncScope()
    history_days: Annotated[int, Field(ge=0)] | None = None

    @field_serializer("password", when_used="json")
    def _password_in_the_clear(self, password: SecretStr) -> str:
        return password.get_secret_value()


class UpdateAccountSettingsData(ContractModel):
    """Change some settings of an account; every null field is left as it is.

    `default_visibility` applies to mail received afterwards only (R15); `blocklist` replaces
    the whole list of blocked addresses and `@domains` (R9); mirroring is R19.
    """

    account_id: str
    sync_scope: SyncScope | None = None
    history_days: Annotated[int, Field(ge=0)] | None = None
    default_visibility: Visibility | None = None
    mirror_archive: bool | None = None
    mirror_delete: bool | None = None
    blocklist: tuple[str, ...] | None = None


class AccountIdData(ContractModel):
    """Payload of the commands and events that concern an account and nothing more."""

    account_id: str


class SetDefaultAccountData(ContractModel):
    """R3: make `account_id` the default sending account of `user_id`."""

    account_id: str
    user_id: str


class ReauthenticateAccountData(ContractModel):
    """R5: new credentials for an account in `reauth_required`; sync resumes from its cursor."""

    account_id: str
    username: str
    password: SecretStr

    @field_serializer("password", when_used="json")
    def _password_in_the_clear(self, password: SecretStr) -> str:
        return password.get_secret_value()


class ConnectAccount(Envelope[ConnectAccountData]):
    type: Literal["mail.account.connect"] = "mail.account.connect"


class UpdateAccountSettings(Envelope[UpdateAccountSettingsData]):
    type: Literal["mail.account.update_settings"] = "mail.account.update_settings"


class DisconnectAccount(Envelope[AccountIdData]):
    type: Literal["mail.account.disconnect"] = "mail.account.disconnect"


class SetDefaultAccount(Envelope[SetDefaultAccountData]):
    type: Literal["mail.account.set_default"] = "mail.account.set_default"


class ReauthenticateAccount(Envelope[ReauthenticateAccountData]):
    type: Literal["mail.account.reauthenticate"] = "mail.account.reauthenticate"


AccountCommand = (
    ConnectAccount
    | UpdateAccountSettings
    | DisconnectAccount
    | SetDefaultAccount
    | ReauthenticateAccount
)


class AccountConnectedData(ContractModel):
    """An account is connected and syncing.

    Optional additions to the sketch: `imap`/`smtp` are the servers actually used (after preset
    resolution) and `settings` the effective settings, so consumers need no second source.
    """

    account_id: str
    user_id: str
    email: str
    provider: str | None = None
    account_type: AccountType
    member_user_ids: tuple[str, ...] = ()
    is_default: bool
    imap: MailServer | None = None
    smtp: MailServer | None = None
    settings: AccountSettings | None = None


class AccountRejectedData(ContractModel):
    """A connect was refused and nothing changed (R1: e.g. beyond the plan limit)."""

    account_id: str
    user_id: str
    reason: str
    code: Literal["plan_limit", "invalid_settings", "duplicate", "auth_failed"]


class SyncProgressData(ContractModel):
    """Initial-sync progress of one folder: `done` of `total` messages."""

    account_id: str
    folder: str
    done: Annotated[int, Field(ge=0)]
    total: Annotated[int, Field(ge=0)]


class ReauthRequiredData(ContractModel):
    """R5: the provider rejected the stored credentials; this account's sync has stopped."""

    account_id: str
    reason: str


class AccountSettingsUpdatedData(ContractModel):
    """The full effective settings after `mail.account.update_settings` (not a diff)."""

    account_id: str
    settings: AccountSettings


class DefaultAccountChangedData(ContractModel):
    """R3: `account_id` is now the default sending account of `user_id`."""

    user_id: str
    account_id: str
    previous_account_id: str | None = None


class AccountConnected(Envelope[AccountConnectedData]):
    type: Literal["mail.account.connected"] = "mail.account.connected"


class AccountRejected(Envelope[AccountRejectedData]):
    type: Literal["mail.account.rejected"] = "mail.account.rejected"


class AccountSyncProgressed(Envelope[SyncProgressData]):
    type: Literal["mail.account.sync_progress"] = "mail.account.sync_progress"


class AccountSynced(Envelope[AccountIdData]):
    """The initial sync of every folder in scope has finished; incremental sync goes on."""

    type: Literal["mail.account.synced"] = "mail.account.synced"


class AccountReauthRequired(Envelope[ReauthRequiredData]):
    """Published once per rejection, not once per failed attempt (R5: no storm)."""

    type: Literal["mail.account.reauth_required"] = "mail.account.reauth_required"


class AccountReauthenticated(Envelope[AccountIdData]):
    """New credentials were accepted after `reauth_required`; sync resumed."""

    type: Literal["mail.account.reauthenticated"] = "mail.account.reauthenticated"


class AccountDisconnected(Envelope[AccountIdData]):
    type: Literal["mail.account.disconnected"] = "mail.account.disconnected"


class AccountSettingsUpdated(Envelope[AccountSettingsUpdatedData]):
    type: Literal["mail.account.settings_updated"] = "mail.account.settings_updated"


class DefaultAccountChanged(Envelope[DefaultAccountChangedData]):
    type: Literal["mail.account.default_changed"] = "mail.account.default_changed"


AccountEvent = (
    AccountConnected
    | AccountRejected
    | AccountSyncProgressed
    | AccountSynced
    | AccountReauthRequired
    | AccountReauthenticated
    | AccountDisconnected
    | AccountSettingsUpdated
    | DefaultAccountChanged
)
