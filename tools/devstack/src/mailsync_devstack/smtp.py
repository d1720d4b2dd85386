"""SMTP submission for the local stack: aiosmtpd in a thread, delivering into Dovecot by LMTP.

Invariants:

- Listens on 127.0.0.1 on a port chosen free at start; plaintext, AUTH PLAIN and LOGIN
  offered without STARTTLS (loopback only), checked against the Dovecot users file.
- MAIL FROM before a successful AUTH is refused with 530 (RFC 4954 §6), as providers do.
- Every accepted message is delivered over LMTP to the INBOX of each recipient that is a
  Dovecot user; recipients that are not (the CRM's contacts in the demo) are accepted and
  only recorded, like mail leaving for the outside world. Every accepted message is kept
  in ``SubmissionServer.accepted`` for tests to inspect.
- A failed LMTP delivery to a known user answers 451 so the client retries.
- The server runs on its own event loop in a thread, so test code may talk to it with
  blocking smtplib from inside an async test without deadlocking its own loop.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import threading
import weakref
from dataclasses import dataclass
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from mailsync_devstack.dovecot import Dovecot
from mailsync_devstack.ports import LOOPBACK, free_port


class _QuietLegacyLoginData(logging.Filter):
    """Drop aiosmtpd's own deprecation notice, which it logs on every successful AUTH."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


_AIOSMTPD_LOG = logging.getLogger("mail.log")
_QUIET = _QuietLegacyLoginData()


@dataclass(frozen=True, slots=True)
class SubmittedMessage:
    """One message accepted by the submission server."""

    login: str
    mail_from: str
    recipients: tuple[str, ...]
    delivered_to: tuple[str, ...]
    raw: bytes


class _Submission:
    """aiosmtpd handler: authenticated senders only, LMTP delivery to Dovecot users."""

    def __init__(self, dovecot: Dovecot, accepted: list[SubmittedMessage]) -> None:
        self._dovecot = dovecot
        self._accepted = accepted
        self._lock = threading.Lock()

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode(errors="replace")
        password = auth_data.password.decode(errors="replace")
        ok = self._dovecot.check_password(login, password)
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)

    # aiosmtpd looks hooks up by these exact upper-case names.
    async def handle_MAIL(  # noqa: N802
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or b""
        recipients = tuple(address.lower() for address in envelope.rcpt_tos)
        local = tuple(address for address in recipients if self._dovecot.has_user(address))
        if local:
            try:
                await asyncio.to_thread(
                    self._dovecot.deliver_lmtp, local, raw, envelope.mail_from or ""
                )
            except (smtplib.SMTPException, OSError) as error:
                return f"451 4.3.0 Delivery to the mailbox failed: {error}"
        with self._lock:
            self._accepted.append(
                SubmittedMessage(
                    login=str(session.auth_data or ""),
                    mail_from=envelope.mail_from or "",
                    recipients=recipients,
                    delivered_to=local,
                    raw=raw,
                )
            )
        return "250 Message accepted for delivery"


class _ClosingController(Controller):
    """aiosmtpd's threaded controller, but ``stop`` closes open client connections first.

    Plain ``Controller.stop`` ends its loop with accepted transports still open (e.g. a
    client that connected a moment before), which surface later as ResourceWarnings.
    A client connecting in the last milliseconds before the loop stops can still slip by.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    def factory(self) -> SMTP:
        session = SMTP(self.handler, **self.SMTP_kwargs)
        self._sessions.add(session)
        return session

    async def _close_connections(self) -> None:
        # The listener stays open meanwhile: on Python 3.11 a connection accepted just before
        # Server.close() fails to get its transport attached and leaks its socket. Instead,
        # close sessions until two rounds in a row find none open or still connecting
        # (at most about two seconds).
        quiet_rounds = 0
        for _ in range(200):
            if quiet_rounds == 2:
                return
            busy = False
            for session in list(self._sessions):
                if session.transport is not None:
                    session.transport.close()
                    busy = True
                elif session.session is None:
                    busy = True  # accepted, connection_made still to come
            quiet_rounds = 0 if busy else quiet_rounds + 1
            # Let accept tasks, connection_made and connection_lost callbacks run.
            await asyncio.sleep(0.01)

    def stop(self, no_assert: bool = False) -> None:
        if self._thread is not None and self.loop.is_running():
            asyncio.run_coroutine_threadsafe(self._close_connections(), self.loop).result(10)
        super().stop(no_assert)


class SubmissionServer:
    """The stack's SMTP submission server; ``start`` and ``stop`` it around its use."""

    def __init__(self, dovecot: Dovecot) -> None:
        """Prepare a server delivering into ``dovecot``; nothing listens until ``start``."""
        self.host = LOOPBACK
        self.port = 0
        self.accepted: list[SubmittedMessage] = []
        self._handler = _Submission(dovecot, self.accepted)
        self._controller: _ClosingController | None = None

    def start(self) -> None:
        """Listen on a free loopback port; returns once the server answers."""
        if self._controller is not None:
            return
        self.port = free_port()
        if _QUIET not in _AIOSMTPD_LOG.filters:
            _AIOSMTPD_LOG.addFilter(_QUIET)
        controller = _ClosingController(
            self._handler,
            hostname=self.host,
            port=self.port,
            server_hostname="localhost",
            authenticator=self._handler.authenticate,
            auth_require_tls=False,
            decode_data=False,
            ready_timeout=10.0,
        )
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        """Close the listener and end the server thread; idempotent."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
