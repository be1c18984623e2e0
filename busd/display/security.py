"""Who may change anything through the display: the page itself, nobody else.

Two writes exist (acknowledging a plan, the clients counter). A request that
makes one must

* name an allowed host (``Host``): a page on another site that re-binds its
  DNS name to 127.0.0.1 reaches us under its own name, and is refused;
* come from this origin (``Origin``, or ``Referer`` when a browser sends no
  Origin): a page on another site cannot post here;
* carry the session's token (``X-Busd-Token``): an HMAC of the session cookie
  under a secret that lives only in this process. The page gets it embedded in
  its HTML and again on every connection of its live stream, so after a daemon
  restart (new secret) the open page simply picks up the new token.

Pure functions, so the rules are tested without a server.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

SESSION_COOKIE = "busd_display"
TOKEN_HEADER = "X-Busd-Token"
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def new_secret() -> bytes:
    return secrets.token_bytes(32)


def new_session_id() -> str:
    return secrets.token_urlsafe(24)


def valid_session_id(value: str | None) -> bool:
    return value is not None and 16 <= len(value) <= 64 and value.replace("-", "").replace(
        "_", "").isalnum()


def session_token(secret: bytes, session_id: str) -> str:
    return hmac.new(secret, session_id.encode("ascii"), hashlib.sha256).hexdigest()


def token_matches(secret: bytes, session_id: str | None, token: str | None) -> bool:
    if not valid_session_id(session_id) or not token:
        return False
    assert session_id is not None
    return hmac.compare_digest(session_token(secret, session_id), token)


def _split_host(host: str) -> str:
    """The name part of a Host header value (``[::1]:8080`` -> ``::1``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.rsplit(":", 1)[0]
    return host


def allowed_host_names(bind_host: str, extra: Iterable[str]) -> frozenset[str]:
    names = {*_LOOPBACK, *(name.lower() for name in extra)}
    if bind_host not in ("0.0.0.0", "::", ""):
        names.add(bind_host.lower())
    return frozenset(names)


def host_allowed(host_header: str | None, allowed: frozenset[str]) -> bool:
    return bool(host_header) and _split_host(host_header or "") in allowed


def same_origin(
    *, host_header: str | None, origin: str | None, referer: str | None, scheme: str
) -> bool:
    """The request's Origin (else Referer) names this very scheme://host:port."""
    if not host_header:
        return False
    expected = f"{scheme}://{host_header.strip().lower()}"
    if origin is not None:
        if origin == "null":
            return False
        return origin.strip().lower().rstrip("/") == expected
    if referer:
        parts = urlsplit(referer.strip())
        return f"{parts.scheme}://{parts.netloc}".lower() == expected
    return False  # neither header: not a request our page makes
