"""Loopback TCP ports for the stack's servers.

Invariants: every server of the stack binds 127.0.0.1 only, on a port the kernel handed out
as free a moment before (never a fixed port: 9092, 143, 5432 may belong to someone else).
Between asking and binding another process could take the port; callers that spawn a server
retry with a fresh port when the server fails to come up.
"""

from __future__ import annotations

import socket

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
