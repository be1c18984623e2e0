"""Sessions, CSRF tokens and the login rate limit of the office web; pure, on an injected clock.

A session lives in the web process's memory (a restart logs everyone out, which is the safe
side). Its id is the cookie, 256 random bits; it ends ``lifetime_s`` after login or
``idle_s`` after its last request, whichever comes first. Each session has its own CSRF token,
which every POST must carry (form field ``csrf`` or header ``X-CSRF-Token``); the login form,
before there is a session, uses a double-submit token: a cookie of its own and the same value
in the form.
"""

from __future__ import annotations

import hmac
import secrets
from collections import deque
from dataclasses import dataclass, field

from busd.clock import Clock
from office.users import Role, User

SESSION_COOKIE = "busd_office_session"
LOGIN_COOKIE = "busd_office_login"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
MAX_SESSIONS = 10_000  # a flood of logins cannot grow memory without bound


def new_token() -> str:
    return secrets.token_urlsafe(32)


def tokens_equal(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


@dataclass
class Session:
    id: str
    user: User
    csrf: str
    started: float
    seen: float
    lang: str | None = None  # the user's choice of language, for this session
    stamp: str | None = None  # the account's stamp at login (office.users.Users.stamp)
    checked: float = 0.0  # when the account was last compared with it (monotonic)

    @property
    def dispatcher(self) -> bool:
        return self.user.role is Role.DISPATCHER


@dataclass
class Sessions:
    clock: Clock
    lifetime_s: float
    idle_s: float
    _by_id: dict[str, Session] = field(default_factory=dict)

    def start(self, user: User, stamp: str | None = None) -> Session:
        now = self.clock.now()
        self._expire(now)
        if len(self._by_id) >= MAX_SESSIONS:
            oldest = min(self._by_id.values(), key=lambda s: s.seen)
            del self._by_id[oldest.id]
        session = Session(new_token(), user, new_token(), now, now, stamp=stamp,
                          checked=self.clock.monotonic())
        self._by_id[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session of that id, its last-seen time now; None when unknown or over."""
        if not session_id:
            return None
        session = self._by_id.get(session_id)
        if session is None:
            return None
        now = self.clock.now()
        if self._over(session, now):
            del self._by_id[session_id]
            return None
        session.seen = now
        return session

    def end(self, session_id: str | None) -> None:
        if session_id:
            self._by_id.pop(session_id, None)

    def end_user(self, name: str) -> int:
        """End every session of a user (removed, or a new password)."""
        ids = [s.id for s in self._by_id.values() if s.user.name == name]
        for i in ids:
            del self._by_id[i]
        return len(ids)

    def __len__(self) -> int:
        return len(self._by_id)

    def _over(self, session: Session, now: float) -> bool:
        return now - session.started >= self.lifetime_s or now - session.seen >= self.idle_s

    def _expire(self, now: float) -> None:
        for sid in [s.id for s in self._by_id.values() if self._over(s, now)]:
            del self._by_id[sid]


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
        if len(self._failures) > MAX_SESSIONS:
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
