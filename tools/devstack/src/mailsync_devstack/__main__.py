"""``python -m mailsync_devstack``: run the local stack in the foreground until Ctrl-C.

Prints the MAILSYNC_* variables (as ``export`` lines) and the IMAP/SMTP/LMTP addresses, so
services started by hand in another terminal can join. Stops everything on SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib

from mailsync_devstack.stack import LocalStack, wait_for_shutdown_signal


async def _serve() -> None:
    async with LocalStack() as stack:
        for name, value in stack.env().items():
            print(f"export {name}='{value}'")
        print(f"# IMAP {stack.imap_host}:{stack.imap_port}  LMTP port {stack.lmtp_port}")
        print(f"# SMTP submission {stack.smtp_host}:{stack.smtp_port}  (Ctrl-C stops)", flush=True)
        await wait_for_shutdown_signal()


def main() -> None:
    """Run the stack until interrupted."""
    # SIGINT/SIGTERM are handled by _serve; an interrupt during start-up still unwinds quietly.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve())


if __name__ == "__main__":
    main()
