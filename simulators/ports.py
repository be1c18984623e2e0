"""Ports for servers that stop and start again on the same port (a broker, a cut link).

A port the kernel picked for a listener (bind to 0) comes from the range it also gives
outgoing connections their own ports from. While the server is down, any connection on the
machine may get that port as its source and keep it: the restart then fails with "address
in use". Below that range only a listener can take a port, so one chosen there stays free.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_DEFAULT_EPHEMERAL_LOW = 32768  # Linux's default, where the file cannot be read


def ephemeral_low() -> int:
    """The lowest port the kernel gives outgoing connections."""
    try:
        return int(_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _DEFAULT_EPHEMERAL_LOW


def listen_port(host: str = "127.0.0.1", *, attempts: int = 200) -> int:
    """A port free to listen on now, chosen at random below the ephemeral range."""
    high = ephemeral_low()
    low = max(1024, high // 2)
    pick = random.SystemRandom()
    for _ in range(attempts):
        port = pick.randrange(low, high)
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue  # a service listens there: try another
            return port
    raise OSError(f"no free port to listen on between {low} and {high}")


__all__ = ["ephemeral_low", "listen_port"]
