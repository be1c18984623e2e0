"""Who is asking: the client's address as the login limit counts it.

Behind a reverse proxy every request comes from the proxy, and a limit per address would
count every client together (a few failed logins by anyone would lock everyone out). A proxy
listed in ``web.trusted_proxies`` says who the client is in ``X-Forwarded-For``; the client is
the right-most address there that is not itself a trusted proxy (the ones to its left are
the client's own word, and a guesser would change them at will). From any other peer the
header is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from pydantic import IPvAnyNetwork


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_address(peer: str | None, forwarded_for: str | None,
                   trusted: Sequence[IPvAnyNetwork]) -> str:
    """The client's address: ``peer`` unless it is a trusted proxy, then what the proxies'
    ``X-Forwarded-For`` says."""
    hop = _address(peer or "")
    if hop is None:
        return peer or "unknown"

    def is_trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address in network for network in trusted)

    if not is_trusted(hop) or not forwarded_for:
        return str(hop)
    for text in reversed(forwarded_for.split(",")):
        address = _address(text)
        if address is None:
            break  # a value that is no address: trust nothing further left
        hop = address
        if not is_trusted(hop):
            break
    return str(hop)
