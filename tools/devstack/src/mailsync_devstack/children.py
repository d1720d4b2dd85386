"""Server child processes of a stack: started in their own process group, stopped by it.

Invariants:

- Every child runs in a new session, so its process group id is its pid; stopping sends
  SIGTERM to that group, waits, then SIGKILLs whatever is left of the group. Nothing is
  ever stopped by name.
- Every child's output goes to a log file (never to a pipe nobody reads), and every child is
  waited for, so no zombie and no ``ResourceWarning`` outlives ``stop()``.
- A child started by this process is stopped at interpreter exit at the latest (atexit), and
  each one is recorded (pid and kernel start time) in its stack's run folder, so a stack
  whose owner was SIGKILLed is cleaned up by the next stack started on the same state folder
  (``RunFolder.reap_abandoned``). The start time guards against a recycled pid.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from mailsync_devstack.ports import LOOPBACK

_LIVE: set[ChildProcess] = set()


class StartupError(RuntimeError):
    """A server of the stack did not come up; the message carries the tail of its log."""


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (state, ppid, pgrp, ...), None if the pid is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (field 22 of /proc/<pid>/stat), None if gone."""
    fields = _stat_fields(pid)
    return fields[19] if fields else None


def _group_alive(pgid: int) -> bool:
    """Whether a live (non-zombie) process is left in process group ``pgid``.

    Zombies do not count: once the group leader exits its helpers are re-parented to init,
    which reaps them at its own pace (slowly in some containers).
    """
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
                return True
    return False


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _terminate_group(pgid: int, grace: float) -> None:
    """SIGTERM the group, give it ``grace`` seconds, SIGKILL the rest."""
    _kill_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if _group_alive(pgid):
        _kill_group(pgid, signal.SIGKILL)


class ChildProcess:
    """One server process of the stack, with its own process group and log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        """Spawn ``argv`` now; output (stdout and stderr) is appended to ``log_path``."""
        self.name = name
        self.argv = tuple(argv)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] | None = log_path.open("ab")
        try:
            self._popen: subprocess.Popen[bytes] = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=None if env is None else dict(env),
                cwd=cwd,
            )
        except BaseException:
            self._log.close()
            raise
        self.started_at = _start_time(self._popen.pid) or ""
        _LIVE.add(self)

    @property
    def pid(self) -> int:
        """Pid of the child, which is also its process group id."""
        return self._popen.pid

    def running(self) -> bool:
        """Whether the child itself has not exited."""
        return self._popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the child's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def startup_error(self, what: str) -> StartupError:
        """A StartupError naming this child, its exit status and its log tail."""
        status = self._popen.poll()
        state = "still running" if status is None else f"exited with {status}"
        return StartupError(
            f"{self.name} {what} ({state}); {self.log_path} ends with:\n{self.log_tail()}"
        )

    async def wait_until_listening(self, port: int, timeout: float) -> None:
        """Wait until the child accepts TCP connections on 127.0.0.1:``port``.

        Raises StartupError as soon as the child exits, or after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while self.running():
            try:
                _, writer = await asyncio.open_connection(LOOPBACK, port)
            except OSError:
                if time.monotonic() >= deadline:
                    raise self.startup_error(
                        f"did not listen on port {port} in {timeout}s"
                    ) from None
                await asyncio.sleep(0.02)
                continue
            writer.close()
            await writer.wait_closed()
            return
        raise self.startup_error(f"exited before listening on port {port}")

    def stop(self, grace: float = 5.0) -> None:
        """Stop the whole process group (SIGTERM, then SIGKILL after ``grace`` s); idempotent."""
        _LIVE.discard(self)
        if self._popen.returncode is None:
            _kill_group(self.pid, signal.SIGTERM)
            try:
                self._popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _kill_group(self.pid, signal.SIGKILL)
                self._popen.wait()
        # The leader is gone; its helpers (Dovecot's imap, auth, lmtp) may linger a moment.
        _terminate_group(self.pid, grace)
        if self._log is not None:
            self._log.close()
            self._log = None


@atexit.register
def _stop_leftover_children() -> None:
    for child in list(_LIVE):
        child.stop(grace=2.0)


class RunFolder:
    """The private folder of one running stack: ``<state>/run/<owner pid>-<token>``.

    Holds a ``children`` file with one ``<pid> <start time> <name>`` line per child, which
    ``reap_abandoned`` uses to stop the children of a stack whose owner died.
    """

    def __init__(self, state_dir: Path) -> None:
        """Create a fresh run folder under ``state_dir/run``, reaping abandoned ones first."""
        self._logs = state_dir / "logs"
        runs = state_dir / "run"
        runs.mkdir(parents=True, exist_ok=True)
        reap_abandoned(runs)
        owner_start = _start_time(os.getpid()) or ""
        self.path = runs / f"{os.getpid()}-{secrets.token_hex(3)}"
        self.path.mkdir(mode=0o755)
        (self.path / "owner").write_text(f"{os.getpid()} {owner_start}\n")
        self._children = self.path / "children"
        self._children.touch()

    def record(self, child: ChildProcess) -> None:
        """Remember ``child`` so it can be reaped if this process dies without stopping it."""
        with self._children.open("a") as children:
            children.write(f"{child.pid} {child.started_at} {child.name}\n")

    def remove(self) -> None:
        """Delete the folder (its children must be stopped already).

        Its ``*.log`` files are kept as ``<state>/logs/<name>.log``, replacing the previous
        run's, for a look after the fact.
        """
        self._logs.mkdir(exist_ok=True)
        # Servers log at most one folder down; deeper *.log files are mail indexes.
        for log in [*self.path.glob("*.log"), *self.path.glob("*/*.log")]:
            with contextlib.suppress(OSError):
                shutil.move(log, self._logs / log.name)
        shutil.rmtree(self.path, ignore_errors=True)


def _alive_as_recorded(pid: int, started_at: str) -> bool:
    return bool(started_at) and _start_time(pid) == started_at


def reap_abandoned(runs: Path) -> None:
    """Stop the children of run folders whose owning process is gone, and remove the folders."""
    for folder in runs.iterdir():
        if not folder.is_dir():
            continue
        try:
            owner_pid, _, owner_start = (folder / "owner").read_text().strip().partition(" ")
            if _alive_as_recorded(int(owner_pid), owner_start):
                continue
            lines = (folder / "children").read_text().splitlines()
        except (OSError, ValueError):
            # A folder being created right now has no owner file yet; leave it alone unless
            # it is old enough to be debris.
            if time.time() - folder.stat().st_mtime < 60:
                continue
            lines = []
        for line in lines:
            pid_text, _, rest = line.partition(" ")
            started_at = rest.partition(" ")[0]
            if pid_text.isdigit() and _alive_as_recorded(int(pid_text), started_at):
                _terminate_group(int(pid_text), grace=3.0)
        shutil.rmtree(folder, ignore_errors=True)
