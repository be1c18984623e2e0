"""The office web's sessions, kept in the archive (``web_sessions``, either back end).

Kept in the database rather than in one web process's memory, so that several ``busd office
web`` processes behind one address (on one machine or several) honour each other's logins, and
a restart or an upgrade logs no one out.

A session's id is the cookie, 256 random bits; the table holds only its SHA-256, so a copy of
the database (a backup, a replica) opens no session. A session ends ``lifetime_s`` after login
or ``idle_s`` after its last request, whichever comes first, and at once when the account
changes (removed, a new password, another role): each request reads the session together with
its account, so a change made on one web process ends the session on every other at its next
request. Each session has its own CSRF token (office.web.auth).

The last request's time is written at most every ``SEEN_WRITE_S`` a session: a page load is
then a read, not a write competing with the ingest workers for the archive (SQLite has one
writer). So the idle limit holds to within that much.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from busd.clock import Clock
from office.archive import Archive
from office.archive.base import param
from office.users import Role, User, account_stamp
from office.web.auth import new_token, stored_digest

log = structlog.get_logger("office.web")

MAX_SESSIONS = 10_000  # a flood of logins cannot grow the table without bound
SEEN_WRITE_S = 60.0


@dataclass
class Session:
    id: str
    user: User
    csrf: str
    started: float
    seen: float
    lang: str | None = None  # the user's choice of language, for this session
    stamp: str | None = None  # the account's stamp at login (office.users.Users.stamp)

    @property
    def dispatcher(self) -> bool:
        return self.user.role is Role.DISPATCHER


class Sessions:
    """The sessions in one archive. Every write says RETURNING: the archive's ``fetch`` reads
    rows, and PostgreSQL's has none to read otherwise."""

    def __init__(self, archive: Archive, clock: Clock, *, lifetime_s: float,
                 idle_s: float) -> None:
        self._archive = archive
        self._clock = clock
        self.lifetime_s = lifetime_s
        self.idle_s = idle_s

    def _p(self, name: str) -> str:
        return param(self._archive.dialect, name)

    async def start(self, user: User, stamp: str | None = None) -> Session:
        now = self._clock.now()
        await self._expire(now)
        session = Session(new_token(), user, new_token(), now, now, stamp=stamp)
        p = self._p
        await self._archive.fetch(
            f"INSERT INTO web_sessions (id_hash, user_name, csrf, stamp, lang, started, seen) "
            f"VALUES ({p('id')}, {p('user')}, {p('csrf')}, {p('stamp')}, NULL, {p('now')}, "
            f"{p('now')}) RETURNING id_hash",
            {"id": stored_digest(session.id), "user": user.name, "csrf": session.csrf,
             "stamp": stamp, "now": now})
        return session

    async def get(self, session_id: str | None) -> Session | None:
        """The live session of that id; None when unknown, over, or its account changed
        (the session then ends). A request counts as the session's activity."""
        if not session_id:
            return None
        p = self._p
        rows = await self._archive.fetch(
            "SELECT s.user_name, s.csrf, s.stamp, s.lang, s.started, s.seen, u.role, u.changed "
            "FROM web_sessions s LEFT JOIN users u ON u.name = s.user_name "
            f"WHERE s.id_hash = {p('id')}", {"id": stored_digest(session_id)})
        if not rows:
            return None
        name, csrf, stamp, lang, started, seen, role, changed = rows[0]
        now = self._clock.now()
        over = now - started >= self.lifetime_s or now - seen >= self.idle_s
        changed_account = role is None or account_stamp(role, changed) != stamp
        if over or changed_account:
            log.info("session_ended", reason="account_changed" if changed_account and not over
                     else "expired")
            await self.end(session_id)
            return None
        if now - seen >= SEEN_WRITE_S:
            await self._archive.fetch(
                f"UPDATE web_sessions SET seen = {p('now')} WHERE id_hash = {p('id')} "
                "RETURNING id_hash",
                {"now": now, "id": stored_digest(session_id)})
            seen = now
        return Session(session_id, User(name, Role(role)), csrf, started, seen, lang=lang,
                       stamp=stamp)

    async def set_lang(self, session: Session, lang: str) -> None:
        session.lang = lang
        await self._archive.fetch(
            f"UPDATE web_sessions SET lang = {self._p('lang')} WHERE id_hash = {self._p('id')} "
            "RETURNING id_hash",
            {"lang": lang, "id": stored_digest(session.id)})

    async def end(self, session_id: str | None) -> None:
        if session_id:
            await self._archive.fetch(
                f"DELETE FROM web_sessions WHERE id_hash = {self._p('id')} RETURNING id_hash",
                {"id": stored_digest(session_id)})

    async def count(self) -> int:
        """Sessions not yet over."""
        now = self._clock.now()
        p = self._p
        rows = await self._archive.fetch(
            f"SELECT count(*) FROM web_sessions WHERE started > {p('born')} "
            f"AND seen > {p('idle')}",
            {"born": now - self.lifetime_s, "idle": now - self.idle_s})
        return int(rows[0][0])

    async def _expire(self, now: float) -> None:
        """Forget the sessions that are over, and the oldest beyond MAX_SESSIONS."""
        p = self._p
        await self._archive.fetch(
            f"DELETE FROM web_sessions WHERE started <= {p('born')} OR seen <= {p('idle')} "
            "RETURNING id_hash",
            {"born": now - self.lifetime_s, "idle": now - self.idle_s})
        rows = await self._archive.fetch("SELECT count(*) FROM web_sessions", {})
        excess = int(rows[0][0]) - MAX_SESSIONS + 1
        if excess > 0:
            await self._archive.fetch(
                "DELETE FROM web_sessions WHERE id_hash IN (SELECT id_hash FROM web_sessions "
                f"ORDER BY seen LIMIT {p('n')}) RETURNING id_hash", {"n": excess})
