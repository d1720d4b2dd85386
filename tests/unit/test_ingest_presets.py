"""R4 provider presets: one for every provider R4 names, safe servers, per-message limits,
lookup by name and by address domain, and the rule that picks a connect's servers."""

from __future__ import annotations

import pytest

from mailsync_contracts import MailServer
from mailsync_ingest.domain import Refusal, is_loopback
from mailsync_ingest.presets import (
    MB,
    PRESETS,
    ProviderPreset,
    Resolution,
    preset_by_name,
    preset_for_address,
    resolve_servers,
)

# The providers exactly as ARCHITECTURE.md R4 names them.
R4_PROVIDERS = (
    "Gmail",
    "Yahoo",
    "Office365/Microsoft 365",
    "Exchange",
    "Outlook.com",
    "iCloud",
    "AOL",
    "FastMail",
    "GandiMail",
    "GMX",
    "Mail.ru",
    "Yandex",
    "GoDaddy",
    "Hover",
    "Namecheap",
    "Bluehost",
    "Soverin",
    "Zimbra",
    "123-reg",
    "126",
    "QQ Mail",
    "Aliyun",
    "Netease 163",
    "Yeah.net",
    "139.com",
)


@pytest.mark.parametrize("r4_name", R4_PROVIDERS)
def test_r4_every_named_provider_has_a_preset(r4_name: str) -> None:
    for spelling in r4_name.split("/"):
        assert preset_by_name(spelling) is not None, spelling


def test_r4_each_preset_is_a_distinct_provider() -> None:
    names = [p.name for p in PRESETS]
    assert len(names) == len(set(names))
    covered = {preset_by_name(s) for n in R4_PROVIDERS for s in n.split("/")}
    assert len(covered) == len(PRESETS), "every preset is one R4 names"


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_r4_preset_servers_are_encrypted_remote_and_on_sane_ports(
    preset: ProviderPreset,
) -> None:
    imap, smtp = preset.imap_server("example.com"), preset.smtp_server("example.com")
    assert imap.security in ("tls", "starttls")
    # The IMAP adapter speaks implicit TLS only; every R4 provider offers it on 993.
    assert (imap.port, imap.security) == (993, "tls")
    assert smtp.security in ("tls", "starttls")
    assert (smtp.port, smtp.security) in ((465, "tls"), (587, "starttls"))
    for server in (imap, smtp):
        assert not is_loopback(server.host)
        assert "{" not in server.host
        assert "." in server.host
    assert 5 * MB <= preset.max_message_bytes <= 50 * MB
    assert preset.folders.sent
    assert preset.folders.trash


@pytest.mark.parametrize(
    ("name", "limit"),
    [
        ("gmail", 25 * MB),
        ("outlook", 20 * MB),
        ("office365", 20 * MB),
        ("exchange", 20 * MB),
        ("icloud", 20 * MB),
        ("yahoo", 25 * MB),
    ],
)
def test_r4_per_message_size_limits(name: str, limit: int) -> None:
    preset = preset_by_name(name)
    assert preset is not None
    assert preset.max_message_bytes == limit


def test_r4_gmail_uses_labels_and_its_own_folder_names() -> None:
    gmail = preset_by_name("gmail")
    assert gmail is not None
    assert gmail.uses_labels
    assert gmail.folders.all_mail == "[Gmail]/All Mail"
    assert gmail.folders.sent == "[Gmail]/Sent Mail"
    assert not any(p.uses_labels for p in PRESETS if p is not gmail)


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("GMAIL", "gmail"),
        ("office365", "office365"),
        ("Microsoft365", "office365"),
        ("microsoft 365", "office365"),
        ("m365", "office365"),
        ("outlook", "outlook"),
        ("Hotmail", "outlook"),
        ("outlook.com", "outlook"),
        ("exchange online", "exchange"),
        ("icloud", "icloud"),
        ("me.com", "icloud"),
        ("163", "163"),
        ("netease", "163"),
        ("NetEase 163", "163"),
        ("qq mail", "qq"),
        ("mail.ru", "mailru"),
        ("123-reg", "123reg"),
        ("gandimail", "gandi"),
        ("yeah.net", "yeah"),
    ],
)
def test_r4_preset_by_name_accepts_aliases_in_any_case(alias: str, expected: str) -> None:
    preset = preset_by_name(alias)
    assert preset is not None
    assert preset.name == expected


def test_r4_an_unknown_provider_name_has_no_preset() -> None:
    assert preset_by_name("no-such-mail") is None


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("someone@gmail.com", "gmail"),
        ("Someone@GoogleMail.COM", "gmail"),
        ("a@outlook.com", "outlook"),
        ("a@hotmail.co.uk", "outlook"),
        ("a@live.fr", "outlook"),
        ("a@msn.com", "outlook"),
        ("a@yahoo.com", "yahoo"),
        ("a@YAHOO.co.uk", "yahoo"),
        ("a@icloud.com", "icloud"),
        ("a@me.com", "icloud"),
        ("a@mac.com", "icloud"),
        ("a@qq.com", "qq"),
        ("a@foxmail.com", "qq"),
        ("a@163.com", "163"),
        ("a@126.com", "126"),
        ("a@yeah.net", "yeah"),
        ("a@139.com", "139"),
        ("a@yandex.ru", "yandex"),
        ("a@yandex.com", "yandex"),
        ("a@ya.ru", "yandex"),
        ("a@mail.ru", "mailru"),
        ("a@bk.ru", "mailru"),
        ("a@list.ru", "mailru"),
        ("a@inbox.ru", "mailru"),
        ("a@gmx.de", "gmx"),
        ("a@gmx.net", "gmx"),
        ("a@aol.com", "aol"),
        ("a@fastmail.com", "fastmail"),
        ("a@aliyun.com", "aliyun"),
        # IDN: full-width letters and the ideographic full stop normalize to gmail.com.
        ("a@ｇｍａｉｌ。ｃｏｍ", "gmail"),
        ("a@gmail.com.", "gmail"),
    ],
)
def test_r4_preset_for_address_matches_the_domain(email: str, expected: str) -> None:
    preset = preset_for_address(email)
    assert preset is not None, email
    assert preset.name == expected


@pytest.mark.parametrize(
    "email",
    [
        "a@example.com",
        "a@live.example.com",
        "a@notgmail.com",
        "a@yahoo.co.jp",  # Yahoo! Japan is a different service
        "a@müller.de",
        "not-an-address",
    ],
)
def test_r4_domains_no_preset_serves_find_none(email: str) -> None:
    assert preset_for_address(email) is None


def test_r4_explicit_imap_settings_win_over_the_named_preset() -> None:
    own = MailServer(host="imap.example.com", port=993, security="tls")
    resolved = resolve_servers("gmail", "a@gmail.com", own, None)
    assert isinstance(resolved, Resolution)
    assert resolved.imap == own
    assert resolved.provider == "gmail"
    assert resolved.smtp == MailServer(host="smtp.gmail.com", port=465, security="tls")


def test_r4_explicit_imap_settings_win_over_the_address_domain() -> None:
    own = MailServer(host="127.0.0.1", port=1143, security="plain")
    resolved = resolve_servers(None, "a@gmail.com", own, None)
    assert isinstance(resolved, Resolution)
    assert resolved.imap == own
    assert resolved.provider is None
    assert resolved.smtp is None


def test_r4_a_named_preset_gives_both_servers_and_explicit_smtp_wins() -> None:
    resolved = resolve_servers("Office365", "a@company.test", None, None)
    assert isinstance(resolved, Resolution)
    assert resolved.imap == MailServer(host="outlook.office365.com", port=993, security="tls")
    assert resolved.smtp == MailServer(host="smtp.office365.com", port=587, security="starttls")
    own_smtp = MailServer(host="relay.company.test", port=465, security="tls")
    with_smtp = resolve_servers("office365", "a@company.test", None, own_smtp)
    assert isinstance(with_smtp, Resolution)
    assert with_smtp.smtp == own_smtp


def test_r4_the_address_domain_picks_the_preset_when_nothing_is_named() -> None:
    resolved = resolve_servers(None, "Someone@Hotmail.com", None, None)
    assert isinstance(resolved, Resolution)
    assert resolved.provider == "outlook"
    assert resolved.imap.host == "outlook.office365.com"


def test_r4_hosting_presets_use_the_customers_own_domain() -> None:
    resolved = resolve_servers("bluehost", "sales@Acme-Widgets.test", None, None)
    assert isinstance(resolved, Resolution)
    assert resolved.imap == MailServer(host="mail.acme-widgets.test", port=993, security="tls")


def test_r4_an_unknown_provider_without_settings_is_refused_with_the_name() -> None:
    refused = resolve_servers("no-such-mail", "a@gmail.com", None, None)
    assert isinstance(refused, Refusal)
    assert refused.code == "invalid_settings"
    assert "no-such-mail" in refused.reason
    assert "unknown provider" in refused.reason


def test_r4_an_unknown_domain_without_settings_is_refused_with_the_domain() -> None:
    refused = resolve_servers(None, "someone@unknown-provider.test", None, None)
    assert isinstance(refused, Refusal)
    assert refused.code == "invalid_settings"
    assert "unknown-provider.test" in refused.reason
    assert "no IMAP server" in refused.reason
