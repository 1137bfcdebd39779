"""The one network check: can this machine open a TCP connection to a host (fail in seconds, not after a tool's
own minute of retries)."""

from __future__ import annotations

import socket


def host_reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
