"""Install the system packages the local stack needs: Dovecot (IMAP + LMTP) from Debian.

Run as ``python -m mailsync_devstack.install`` (``make install`` does); with ``--bench`` it also
installs what only the benchmarks use: ``mbsync`` (Debian ``isync``), the reference IMAP client
``bench/initial_sync.py`` compares ingest with (``make bench`` does). Tests never need it.
Invariants:

- Idempotent and quick: when the binaries are already there nothing runs at all.
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
BENCH_PACKAGES = ("isync",)

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


def mbsync_binary() -> str | None:
    """Return the path of ``mbsync`` (Debian ``isync``), or None when it is not installed."""
    return shutil.which("mbsync")


def ensure_dovecot_installed() -> str:
    """Install Dovecot when it is missing and return the path of its binary."""
    found = dovecot_binary()
    if found is not None:
        return found
    _apt_install(DOVECOT_PACKAGES, "Dovecot")
    _stop_system_dovecot()
    found = dovecot_binary()
    if found is None:
        raise InstallError(f"installed {DOVECOT_PACKAGES} but found no dovecot binary")
    return found


def ensure_mbsync_installed() -> str:
    """Install ``mbsync`` (for the benchmarks only) when it is missing; return its path."""
    found = mbsync_binary()
    if found is not None:
        return found
    _apt_install(BENCH_PACKAGES, "mbsync")
    found = mbsync_binary()
    if found is None:
        raise InstallError(f"installed {BENCH_PACKAGES} but found no mbsync binary")
    return found


def _apt_install(packages: tuple[str, ...], what: str) -> None:
    if os.geteuid() != 0:
        raise InstallError(
            f"{what} is not installed and installing it needs root: "
            f"apt-get install {' '.join(packages)}"
        )
    if shutil.which("apt-get") is None:
        raise InstallError(f"{what} is missing and there is no apt-get to install {packages}")
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
                *packages,
            ],
            env,
        )


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


def main(argv: list[str] | None = None) -> int:
    """Install whatever system packages are missing; print what was done.

    ``--bench`` adds the benchmarks' packages (mbsync).
    """
    args = sys.argv[1:] if argv is None else argv
    unknown = [arg for arg in args if arg != "--bench"]
    if unknown:
        print(f"mailsync install: unknown arguments {unknown}; usage: [--bench]", file=sys.stderr)
        return 2
    steps = [("dovecot", dovecot_binary, ensure_dovecot_installed)]
    if "--bench" in args:
        steps.append(("mbsync", mbsync_binary, ensure_mbsync_installed))
    for name, find, ensure in steps:
        try:
            already = find()
            path = ensure()
        except InstallError as error:
            print(f"mailsync install: {error}", file=sys.stderr)
            return 1
        print(f"{name}: {'already installed' if already else 'installed'} ({path})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
