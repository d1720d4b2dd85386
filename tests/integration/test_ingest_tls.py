"""TLS toward the mailbox, against the real Dovecot with a certificate from a private CA:
implicit TLS and STARTTLS both verify the certificate and the host name, an untrusted
certificate is refused before any credential is sent, and a connected TLS account syncs."""

from __future__ import annotations

import secrets
import ssl
from pathlib import Path

import pytest
from pydantic import SecretStr

from mailsync_contracts import ConnectAccount, ConnectAccountData, MailServer
from mailsync_contracts.topics import ACCOUNT_COMMANDS, INGESTED
from mailsync_devstack.dovecot import Dovecot, MailboxUser
from mailsync_devstack.stack import LocalStack
from mailsync_ingest.adapters.imap import (
    ImapAuthenticationFailed,
    ImapEndpoint,
    ImapError,
    ImapSession,
    tls_context,
)
from tests.support.ingest import IngestUnderTest, mail
from tests.support.topics import TopicWatcher, TopicWriter

pytestmark = pytest.mark.integration


def _ca(dovecot: Dovecot) -> str:
    assert dovecot.tls is not None
    return str(dovecot.tls.ca_file)


def _encrypted(session: ImapSession) -> bool:
    transport = session._client.protocol.transport
    return transport.get_extra_info("ssl_object") is not None


@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_tls_and_starttls_verify_the_server_and_log_in(
    dovecot: Dovecot, mailbox_user: MailboxUser, security: str
) -> None:
    port = dovecot.imaps_port if security == "tls" else dovecot.imap_port
    endpoint = ImapEndpoint("127.0.0.1", port, "tls" if security == "tls" else "starttls")
    async with await ImapSession.open(
        endpoint, mailbox_user.email, mailbox_user.password, 10.0, tls_context(_ca(dovecot))
    ) as session:
        assert _encrypted(session)
        status = await session.select("INBOX")
    assert status.uidvalidity > 0


@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_an_untrusted_certificate_is_refused_before_credentials_are_sent(
    dovecot: Dovecot, mailbox_user: MailboxUser, security: str
) -> None:
    port = dovecot.imaps_port if security == "tls" else dovecot.imap_port
    endpoint = ImapEndpoint("127.0.0.1", port, "tls" if security == "tls" else "starttls")
    # The system store alone does not know the local CA: exactly a forged server's situation.
    with pytest.raises(ImapError) as refused:
        await ImapSession.open(endpoint, mailbox_user.email, "not sent", 10.0, tls_context())
    assert not isinstance(refused.value, ImapAuthenticationFailed), "not a credentials problem"
    assert "certificate" in str(refused.value).lower()


def test_verification_is_never_switched_off_by_an_extra_ca(dovecot: Dovecot) -> None:
    for context in (tls_context(), tls_context(_ca(dovecot))):
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname
    # The extra CA is added to the system store, not put in its place.
    assert tls_context(_ca(dovecot)).cert_store_stats()["x509_ca"] > 1


async def test_a_connection_by_host_name_is_checked_against_the_certificate(
    dovecot: Dovecot, mailbox_user: MailboxUser
) -> None:
    endpoint = ImapEndpoint("localhost", dovecot.imaps_port, "tls")
    async with await ImapSession.open(
        endpoint, mailbox_user.email, mailbox_user.password, 10.0, tls_context(_ca(dovecot))
    ) as session:
        assert _encrypted(session)


async def test_an_account_over_tls_syncs(
    local_stack: LocalStack,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
    database_url: str,
    tmp_path: Path,
    io: tuple[TopicWriter, TopicWatcher],
) -> None:
    writer, watcher = io
    account_id = f"acct-{secrets.token_hex(4)}"
    dovecot.append(mailbox_user.email, "INBOX", mail("over tls", 1))
    command = ConnectAccount.build(
        company_id="company-sync",
        source="crm",
        data=ConnectAccountData(
            account_id=account_id,
            user_id=f"user-of-{account_id}",
            email=mailbox_user.email,
            imap=MailServer(host="127.0.0.1", port=dovecot.imaps_port, security="tls"),
            username=mailbox_user.email,
            password=SecretStr(mailbox_user.password),
            account_type="personal",
            plan="premium",
        ),
    )
    ingest = IngestUnderTest(local_stack, database_url, tmp_path, imap_ca_file=_ca(dovecot))
    app = ingest.app()
    async with app.router.lifespan_context(app):
        await writer.send(ACCOUNT_COMMANDS, account_id, command)
        event = await watcher.wait_for(
            INGESTED,
            lambda e: e.type == "mail.message.ingested" and e.data.account_id == account_id,
        )
    assert event.data.subject == "over tls"
