"""Cookies, CSRF tokens and the login rate limit of the office web; pure, on an injected clock.

The sessions themselves are in the archive (office.web.sessions). Each session has its own
CSRF token, which every POST must carry (form field ``csrf`` or header ``X-CSRF-Token``); the
login form, before there is a session, uses a double-submit token: a cookie of its own and the
same value in the form.

The login rate limit is each web process's own: behind a load balancer with N processes, a
guesser gets N times ``attempts``; the argon2 hash keeps each guess slow all the same.
"""

from __future__ import annotations

import hmac
import secrets
from collections import deque
from dataclasses import dataclass, field

from busd.clock import Clock

SESSION_COOKIE = "busd_office_session"
LOGIN_COOKIE = "busd_office_login"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
MAX_KEYS = 10_000  # a flood of failed logins cannot grow memory without bound


def new_token() -> str:
    return secrets.token_urlsafe(32)


def tokens_equal(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


@dataclass
class LoginLimiter:
    """At most ``attempts`` failed logins per key (a user name, an address) per ``window_s``;
    beyond that the login is refused without looking at the password."""

    clock: Clock
    attempts: int
    window_s: float
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def blocked(self, *keys: str) -> bool:
        now = self.clock.monotonic()
        return any(len(self._recent(k, now)) >= self.attempts for k in keys)

    def failed(self, *keys: str) -> int:
        """Count a failure against every key; the most failures of any key now."""
        now = self.clock.monotonic()
        if len(self._failures) > MAX_KEYS:
            self._failures.clear()  # bounded: forgetting is the lesser harm than growing
        worst = 0
        for k in keys:
            recent = self._recent(k, now)
            recent.append(now)
            self._failures[k] = recent
            worst = max(worst, len(recent))
        return worst

    def succeeded(self, *keys: str) -> None:
        for k in keys:
            self._failures.pop(k, None)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and now - times[0] >= self.window_s:
            times.popleft()
        return times
