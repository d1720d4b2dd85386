"""Install the system packages the local stack needs: Dovecot (IMAP + LMTP) from Debian.

Run as ``python -m mailsync_devstack.install`` (``make install`` does). Invariants:

- Idempotent and quick: when the ``dovecot`` binary is already there nothing runs at all.
- Non-interactive: ``apt-get update`` then ``apt-get install -y --no-install-recommends``
  with ``DEBIAN_FRONTEND=noninteractive``; no shell is involved.
- Installing never leaves the distribution's own Dovecot service running: service starts
  are refused through ``/usr/sbin/policy-rc.d`` (exit 101, see Debian's invoke-rc.d policy
  interface) for the duration of the install, and a system Dovecot that got started anyway
  is stopped. The local stack runs its own private instance with a generated config.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DOVECOT_PACKAGES = ("dovecot-imapd", "dovecot-lmtpd")

_POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
# Exit status 101 means "action forbidden by policy" to invoke-rc.d.
_DENY_ALL_SERVICE_STARTS = (
    "#!/bin/sh\n# Written by mailsync_devstack.install for one install.\nexit 101\n"
)


class InstallError(RuntimeError):
    """A system package could not be installed."""


def dovecot_binary() -> str | None:
    """Return the path of the ``dovecot`` binary, or None when Dovecot is not installed.

    Looks in /usr/sbin too: a non-login shell's PATH may lack the sbin folders.
    """
    return shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")


def ensure_dovecot_installed() -> str:
    """Install Dovecot when it is missing and return the path of its binary."""
    found = dovecot_binary()
    if found is not None:
        return found
    if os.geteuid() != 0:
        raise InstallError(
            "Dovecot is not installed and installing it needs root: "
            f"apt-get install {' '.join(DOVECOT_PACKAGES)}"
        )
    if shutil.which("apt-get") is None:
        raise InstallError(
            f"Dovecot is missing and there is no apt-get to install {DOVECOT_PACKAGES}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with _service_starts_denied():
        _run(["apt-get", "update"], env)
        _run(
            [
                "apt-get",
                "install",
                "-y",
                "--no-install-recommends",
                "-o",
                "Dpkg::Options::=--force-confold",
                *DOVECOT_PACKAGES,
            ],
            env,
        )
    _stop_system_dovecot()
    found = dovecot_binary()
    if found is None:
        raise InstallError(f"installed {DOVECOT_PACKAGES} but found no dovecot binary")
    return found


def _run(argv: list[str], env: dict[str, str]) -> None:
    completed = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, check=False)
    if completed.returncode != 0:
        raise InstallError(f"{' '.join(argv)} exited with {completed.returncode}")


@contextmanager
def _service_starts_denied() -> Iterator[None]:
    """Keep package scripts from starting services, unless a policy is already in place."""
    if _POLICY_RC_D.exists():
        yield
        return
    _POLICY_RC_D.write_text(_DENY_ALL_SERVICE_STARTS)
    _POLICY_RC_D.chmod(0o755)
    try:
        yield
    finally:
        _POLICY_RC_D.unlink(missing_ok=True)


def _stop_system_dovecot() -> None:
    """Stop the distribution's Dovecot service if a package script started it anyway."""
    pid_file = Path("/run/dovecot/master.pid")
    if not pid_file.exists():
        return
    for argv in (["systemctl", "disable", "--now", "dovecot"], ["service", "dovecot", "stop"]):
        if shutil.which(argv[0]) is not None:
            subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )


def main() -> int:
    """Install whatever system packages are missing; print what was done."""
    try:
        already = dovecot_binary()
        path = ensure_dovecot_installed()
    except InstallError as error:
        print(f"mailsync install: {error}", file=sys.stderr)
        return 1
    print(f"dovecot: {'already installed' if already else 'installed'} ({path})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
