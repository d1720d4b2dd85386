"""The four mailsync services as real processes, the way production runs them.

Each service is started as `python -m mailsync_<service>` with only environment variables
for configuration, in its own process group, logging JSON to a file; it counts as up when
its `/readyz` answers 200 (database and broker reachable). Stopping sends SIGTERM, which
ends the service's lifespan cleanly, and SIGKILLs only after a grace period.

The linker gets the bearer token of its read API (MAILSYNC_SERVICE_TOKEN, what production takes
from a Secret): the one in the given environment, or a random one per process object,
kept across restarts and readable as `service_token` by whoever calls the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

from mailsync_devstack.children import ChildProcess, StartupError
from mailsync_devstack.ports import LOOPBACK, free_port

SERVICES = ("ingest", "linker", "outbound", "tracking")
SERVICE_TOKEN_VAR = "MAILSYNC_SERVICE_TOKEN"
READY_TIMEOUT_SECONDS = 60.0


class ServiceProcess:
    """One service process: start, wait until ready, read its logs, stop."""

    def __init__(self, name: str, env: Mapping[str, str], log_dir: Path) -> None:
        if name not in SERVICES:
            raise ValueError(f"unknown service {name!r}")
        self.name = name
        self.port = free_port()
        self._env = {**env, "MAILSYNC_HTTP_HOST": LOOPBACK, "MAILSYNC_HTTP_PORT": str(self.port)}
        self.service_token: str | None = None
        if name == "linker":
            self.service_token = env.get(SERVICE_TOKEN_VAR) or secrets.token_urlsafe(32)
            self._env[SERVICE_TOKEN_VAR] = self.service_token
        self._log_path = log_dir / f"{name}.log"
        self._child: ChildProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self._log_path

    @property
    def pid(self) -> int | None:
        """Pid of the service process while it runs (benchmarks read its /proc entry)."""
        return self._child.pid if self._child is not None else None

    @property
    def running(self) -> bool:
        return self._child is not None and self._child.running()

    def start(self) -> None:
        if self.running:
            return
        self._child = ChildProcess(
            self.name,
            [sys.executable, "-m", f"mailsync_{self.name}"],
            self._log_path,
            env=self._env,
        )

    async def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._child is None or not self._child.running():
                raise self._failure("exited before it was ready")
            if await asyncio.to_thread(self.ready):
                return
            await asyncio.sleep(0.2)
        raise self._failure(f"was not ready within {timeout:.0f}s")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def get_text(self, path: str) -> str:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=5) as response:
            return str(response.read().decode())

    def get_json(self, path: str) -> object:
        return json.loads(self.get_text(path))

    def log_records(self) -> list[dict[str, object]]:
        """The service's JSON log lines so far (other lines, e.g. a traceback, skipped)."""
        if not self._log_path.exists():
            return []
        records = []
        for line in self._log_path.read_text(errors="replace").splitlines():
            try:
                parsed = json.loads(line)
            except ValueError:
                continue
            if isinstance(parsed, dict):
                records.append(parsed)
        return records

    def kill(self) -> None:
        """SIGKILL, no goodbye: what a crash or an OOM kill looks like to the system."""
        if self._child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._child.pid, signal.SIGKILL)
            self._child.stop(grace=0.0)
            self._child = None

    def stop(self, grace: float = 15.0) -> None:
        if self._child is not None:
            self._child.stop(grace=grace)
            self._child = None

    def _failure(self, what: str) -> StartupError:
        tail = self._child.log_tail() if self._child else ""
        return StartupError(f"mailsync-{self.name} {what}; log {self._log_path}:\n{tail}")


class ServiceFleet:
    """All (or some) services together; started in parallel, stopped in reverse."""

    def __init__(
        self, env: Mapping[str, str], log_dir: Path, names: Iterable[str] = SERVICES
    ) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.services = {name: ServiceProcess(name, env, log_dir) for name in names}

    def __getitem__(self, name: str) -> ServiceProcess:
        return self.services[name]

    async def start(self) -> None:
        for service in self.services.values():
            service.start()
        try:
            await asyncio.gather(*(s.wait_ready() for s in self.services.values()))
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for service in reversed(list(self.services.values())):
            service.stop()
