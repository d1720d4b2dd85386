"""The whole local stack: Kafka broker, Postgres, Dovecot and SMTP submission, as one object.

``LocalStack`` starts, in this order, Tansu (or only ensures topics on
``MAILSYNC_KAFKA_BOOTSTRAP``), Postgres (``MAILSYNC_DATABASE_URL`` or the embedded server),
Dovecot and the SMTP submission server, and stops them in reverse order. Invariants:

- A failed start stops whatever had already started before the error propagates.
- ``stop`` is idempotent and also runs at interpreter exit if nobody called it; while the
  stack runs, SIGTERM is turned into KeyboardInterrupt (like Ctrl-C) so ``async with``
  blocks and fixture finalizers unwind and stop it. Children of a stack whose process was
  SIGKILLed are reaped by the next stack on the same state folder.
- Every server listens on 127.0.0.1 on a free port; ``listening_ports`` lists them, and
  after ``stop`` none accepts connections (the embedded Postgres stays up only while another
  stack or process still holds it).
- ``env()`` is what a service process needs to join the stack: MAILSYNC_KAFKA_BOOTSTRAP,
  MAILSYNC_DATABASE_URL and MAILSYNC_RAW_STORE_URL.
"""

from __future__ import annotations

import asyncio
import atexit
import signal
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType, TracebackType

from mailsync_devstack.broker import ensure_topics, start_broker, wait_for_metadata
from mailsync_devstack.children import ChildProcess, RunFolder
from mailsync_devstack.dovecot import Dovecot
from mailsync_devstack.postgres import EmbeddedPostgres, ensure_database, wait_until_ready
from mailsync_devstack.smtp import SubmissionServer
from mailsync_devstack.state import (
    DATABASE_URL_VAR,
    KAFKA_BOOTSTRAP_VAR,
    RAW_STORE_URL_VAR,
    Overrides,
    default_state_dir,
)

_SignalHandler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


def default_topics() -> dict[str, int]:
    """Every mailsync topic with its partition count, from the contracts package."""
    from mailsync_contracts.topics import TOPIC_SPECS

    return {name: spec.partitions for name, spec in TOPIC_SPECS.items()}


class LocalStack:
    """Broker, Postgres, Dovecot and SMTP for tests and ``make run``; use ``async with``."""

    def __init__(
        self,
        *,
        topics: Mapping[str, int] | None = None,
        state_dir: Path | None = None,
        database: str | None = None,
        overrides: Overrides | None = None,
    ) -> None:
        """Describe the stack; nothing starts until ``start``.

        ``topics`` maps topic name to partition count (default: every contract topic).
        ``state_dir`` defaults to ``MAILSYNC_STATE_DIR`` or ``<repo>/.state``. ``database``,
        when given, is created if missing and becomes ``database_url``; otherwise services get
        the server's admin database. ``overrides`` defaults to the MAILSYNC_* environment.
        """
        self.overrides = overrides if overrides is not None else Overrides.from_environment()
        self.state_dir = (state_dir or self.overrides.state_dir or default_state_dir()).resolve()
        self._topics = topics
        self._database = database
        self.kafka_bootstrap = ""
        self.admin_database_url = ""
        self.database_url = ""
        self.raw_store_dir = self.state_dir / "rawstore"
        self.run_folder: RunFolder | None = None
        self.dovecot: Dovecot | None = None
        self.smtp: SubmissionServer | None = None
        self._broker: ChildProcess | None = None
        self._postgres: EmbeddedPostgres | None = None
        self._previous_sigterm: _SignalHandler = None
        self._sigterm_installed = False
        self._atexit_registered = False

    @property
    def raw_store_url(self) -> str:
        """``file://`` URL of the raw MIME store folder."""
        return self.raw_store_dir.as_uri()

    @property
    def imap_host(self) -> str:
        """Host of the Dovecot IMAP listener."""
        return self._running_dovecot().imap_host

    @property
    def imap_port(self) -> int:
        """Port of the Dovecot IMAP listener (plaintext, loopback)."""
        return self._running_dovecot().imap_port

    @property
    def lmtp_port(self) -> int:
        """Port of the Dovecot LMTP listener."""
        return self._running_dovecot().lmtp_port

    @property
    def smtp_host(self) -> str:
        """Host of the SMTP submission server."""
        return self._running_smtp().host

    @property
    def smtp_port(self) -> int:
        """Port of the SMTP submission server (AUTH without TLS, loopback)."""
        return self._running_smtp().port

    @property
    def postgres_port(self) -> int | None:
        """Port of the embedded Postgres, None when MAILSYNC_DATABASE_URL is used."""
        return self._postgres.port if self._postgres is not None else None

    @property
    def broker_port(self) -> int | None:
        """Port of the Tansu broker, None when MAILSYNC_KAFKA_BOOTSTRAP is used."""
        if self._broker is None:
            return None
        return int(self.kafka_bootstrap.rsplit(":", 1)[1])

    def listening_ports(self) -> list[int]:
        """The TCP ports this stack's own servers listen on."""
        ports = [self.broker_port, self.postgres_port]
        if self.dovecot is not None:
            ports += [self.dovecot.imap_port, self.dovecot.lmtp_port]
        if self.smtp is not None:
            ports.append(self.smtp.port)
        return [port for port in ports if port]

    def env(self) -> dict[str, str]:
        """MAILSYNC_* variables that point a service process at this stack."""
        if not self.kafka_bootstrap:
            raise RuntimeError("the local stack is not started")
        return {
            KAFKA_BOOTSTRAP_VAR: self.kafka_bootstrap,
            DATABASE_URL_VAR: self.database_url,
            RAW_STORE_URL_VAR: self.raw_store_url,
            # Tansu makes a restarted consumer wait out its predecessor's session (see
            # broker.py); a short session keeps restarts in tests and the demo quick.
            "MAILSYNC_KAFKA_SESSION_TIMEOUT_MS": "2000",
            "MAILSYNC_KAFKA_HEARTBEAT_INTERVAL_MS": "400",
        }

    async def __aenter__(self) -> LocalStack:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> LocalStack:
        """Start broker, Postgres, Dovecot and SMTP in that order; stop them all on failure."""
        if self.run_folder is not None:
            return self
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.raw_store_dir.mkdir(exist_ok=True)
        self.run_folder = RunFolder(self.state_dir)
        self._install_sigterm()
        if not self._atexit_registered:
            atexit.register(self._stop_at_exit)
            self._atexit_registered = True
        try:
            await self._start_broker(self.run_folder)
            await self._start_postgres()
            self.dovecot = Dovecot(self.run_folder.path / "dovecot")
            await self.dovecot.start(self.run_folder)
            self.smtp = SubmissionServer(self.dovecot)
            await asyncio.to_thread(self.smtp.start)
        except BaseException:
            await self.stop()
            raise
        return self

    async def _start_broker(self, run_folder: RunFolder) -> None:
        topics = self._topics if self._topics is not None else default_topics()
        if self.overrides.kafka_bootstrap:
            self.kafka_bootstrap = self.overrides.kafka_bootstrap
            await wait_for_metadata(self.kafka_bootstrap, timeout=20)
        else:
            self._broker, self.kafka_bootstrap = await start_broker(
                run_folder.path / "tansu.log", run_folder
            )
        await ensure_topics(self.kafka_bootstrap, topics)

    async def _start_postgres(self) -> None:
        if self.overrides.database_url:
            self.admin_database_url = self.overrides.database_url
        else:
            self._postgres = EmbeddedPostgres(self.state_dir / "postgres")
            self.admin_database_url = await asyncio.to_thread(self._postgres.start)
        await wait_until_ready(self.admin_database_url)
        if self._database is None:
            self.database_url = self.admin_database_url
        else:
            self.database_url = await ensure_database(self.admin_database_url, self._database)

    async def stop(self) -> None:
        """Stop SMTP, Dovecot, Postgres and the broker, in that order; idempotent."""
        try:
            await asyncio.to_thread(self._stop_servers)
        finally:
            self._restore_sigterm()
            if self._atexit_registered:
                atexit.unregister(self._stop_at_exit)
                self._atexit_registered = False

    def _stop_at_exit(self) -> None:
        self._stop_servers()

    def _stop_servers(self) -> None:
        # Each step runs even if an earlier one failed; the first error is re-raised.
        errors: list[Exception] = []
        for step in (self._stop_smtp, self._stop_dovecot, self._stop_postgres, self._stop_broker):
            try:
                step()
            except Exception as error:
                errors.append(error)
        if self.run_folder is not None:
            self.run_folder.remove()
            self.run_folder = None
        if errors:
            raise errors[0]

    def _stop_smtp(self) -> None:
        if self.smtp is not None:
            self.smtp.stop()

    def _stop_dovecot(self) -> None:
        if self.dovecot is not None:
            self.dovecot.stop()

    def _stop_postgres(self) -> None:
        if self._postgres is not None:
            self._postgres.stop()
            self._postgres = None

    def _stop_broker(self) -> None:
        if self._broker is not None:
            self._broker.stop()
            self._broker = None

    def _install_sigterm(self) -> None:
        """Make SIGTERM unwind like Ctrl-C, unless someone else already handles it."""
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        self._previous_sigterm = signal.signal(signal.SIGTERM, signal.default_int_handler)
        self._sigterm_installed = True

    def _restore_sigterm(self) -> None:
        if not self._sigterm_installed:
            return
        self._sigterm_installed = False
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._previous_sigterm)

    def _running_dovecot(self) -> Dovecot:
        if self.dovecot is None:
            raise RuntimeError("the local stack is not started")
        return self.dovecot

    def _running_smtp(self) -> SubmissionServer:
        if self.smtp is None:
            raise RuntimeError("the local stack is not started")
        return self.smtp


async def wait_for_shutdown_signal() -> signal.Signals:
    """Wait until SIGINT or SIGTERM arrives (main thread only); return which one."""
    loop = asyncio.get_running_loop()
    received: asyncio.Future[signal.Signals] = loop.create_future()
    handled = (signal.SIGINT, signal.SIGTERM)

    def record(signum: signal.Signals) -> None:
        if not received.done():
            received.set_result(signum)

    for signum in handled:
        loop.add_signal_handler(signum, record, signum)
    try:
        return await received
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
