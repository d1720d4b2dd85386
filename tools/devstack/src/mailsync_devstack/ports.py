"""Loopback TCP ports for the stack's servers.

Invariants: every server of the stack binds 127.0.0.1 only, on a port the kernel handed out
as free a moment before (never a fixed port: 9092, 143, 5432 may belong to someone else).
Between asking and binding another process could take the port; callers that spawn a server
retry with a fresh port when the server fails to come up.
"""

from __future__ import annotations

import asyncio
import socket
import time

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def accepts_connections(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


async def wait_until_accepting(port: int, timeout: float, host: str = LOOPBACK) -> bool:
    """Poll until ``host:port`` accepts a connection; False when ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        return True
