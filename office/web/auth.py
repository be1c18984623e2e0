"""Cookies and CSRF tokens of the office web.

The sessions (office.web.sessions) and the login rate limit (office.web.login_limit) are in
the archive. Each session has its own CSRF token, which every POST must carry (form field
``csrf`` or header ``X-CSRF-Token``); the login form, before there is a session, uses a
double-submit token: a cookie of its own and the same value in the form.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SESSION_COOKIE = "busd_office_session"
LOGIN_COOKIE = "busd_office_login"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def tokens_equal(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


def stored_digest(secret: str) -> str:
    """What the archive keeps of a cookie or a rate-limit key: its SHA-256, never the value."""
    return hashlib.sha256(secret.encode()).hexdigest()
