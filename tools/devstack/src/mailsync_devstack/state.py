"""Where the local stack keeps its files, and which environment variables steer it.

Layout under the state folder (default ``<repo>/.state``, or ``MAILSYNC_STATE_DIR``):

- ``postgres/``  the embedded PostgreSQL cluster; kept between runs and shared by every stack
  that uses the same state folder.
- ``rawstore/``  the content-addressed raw MIME store handed to services.
- ``run/<pid>-<token>/``  one folder per running stack (broker log, Dovecot config, mail and
  logs, and the list of child processes); removed when the stack stops, and reaped by the next
  stack when its owner died without stopping.
- ``logs/``  the logs of the last stopped stack (``tansu.log``, ``dovecot.log``).

This module is the one place of the devstack that reads the environment.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

STATE_DIR_VAR = "MAILSYNC_STATE_DIR"
KAFKA_BOOTSTRAP_VAR = "MAILSYNC_KAFKA_BOOTSTRAP"
DATABASE_URL_VAR = "MAILSYNC_DATABASE_URL"
RAW_STORE_URL_VAR = "MAILSYNC_RAW_STORE_URL"


@dataclass(frozen=True, slots=True)
class Overrides:
    """External services a developer or CI points the stack at instead of starting its own."""

    kafka_bootstrap: str | None
    database_url: str | None
    state_dir: Path | None

    @classmethod
    def from_environment(cls) -> Overrides:
        """Read the MAILSYNC_* overrides; empty values count as unset."""
        state = os.environ.get(STATE_DIR_VAR) or None
        return cls(
            kafka_bootstrap=os.environ.get(KAFKA_BOOTSTRAP_VAR) or None,
            database_url=os.environ.get(DATABASE_URL_VAR) or None,
            state_dir=Path(state).expanduser().resolve() if state else None,
        )


def repository_root() -> Path:
    """The workspace root (the folder holding ``uv.lock``) this package is installed from.

    Falls back to the current directory for a non-editable install outside the repository.
    """
    for folder in Path(__file__).resolve().parents:
        if (folder / "uv.lock").is_file() and (folder / "pyproject.toml").is_file():
            return folder
    return Path.cwd()


def default_state_dir() -> Path:
    """``MAILSYNC_STATE_DIR`` when set, else ``<repo>/.state``."""
    return Overrides.from_environment().state_dir or repository_root() / ".state"


def make_world_traversable(path: Path) -> None:
    """Let unprivileged service users (postgres, vmail) reach ``path``.

    Adds only the search bit (o+x, never read) to ``path`` and each ancestor that lacks it, so
    a clone under e.g. ``/root`` works when the stack runs as root. A no-op for non-root users,
    whose servers run as themselves.
    """
    if os.geteuid() != 0:
        return
    for folder in (path, *path.parents):
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)
