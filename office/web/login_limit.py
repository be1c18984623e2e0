"""The office web's login rate limit, kept in the archive (``web_login_failures``).

At most ``attempts`` failed logins per key (a user name, an address) per ``window_s``; beyond
that a login is refused without looking at the password. Kept in the database rather than in
one web process's memory, so that several web processes behind one address allow a guesser
no more tries than one does. A key is stored as its SHA-256 only: the table names neither
the staff nor their addresses. Failures older than the window are deleted as new ones come,
so the table holds at most a window's worth.
"""

from __future__ import annotations

from busd.clock import Clock
from office.archive import Archive
from office.archive.base import param
from office.web.auth import stored_digest


class LoginLimiter:
    """Every write says RETURNING: the archive's ``fetch`` reads rows (see sessions.py)."""

    def __init__(self, archive: Archive, clock: Clock, *, attempts: int,
                 window_s: float) -> None:
        self._archive = archive
        self._clock = clock
        self.attempts = attempts
        self.window_s = window_s

    def _p(self, name: str) -> str:
        return param(self._archive.dialect, name)

    async def blocked(self, *keys: str) -> bool:
        return max(await self._counts(keys), default=0) >= self.attempts

    async def failed(self, *keys: str) -> int:
        """Count a failure against every key; the most failures of any key now."""
        now = self._clock.now()
        p = self._p
        await self._archive.fetch(
            f"DELETE FROM web_login_failures WHERE at <= {p('since')} RETURNING key_hash",
            {"since": now - self.window_s})
        for key in keys:
            await self._archive.fetch(
                f"INSERT INTO web_login_failures (key_hash, at) VALUES ({p('key')}, {p('now')}) "
                "RETURNING key_hash", {"key": stored_digest(key), "now": now})
        return max(await self._counts(keys), default=0)

    async def succeeded(self, *keys: str) -> None:
        for key in keys:
            await self._archive.fetch(
                f"DELETE FROM web_login_failures WHERE key_hash = {self._p('key')} "
                "RETURNING key_hash", {"key": stored_digest(key)})

    async def _counts(self, keys: tuple[str, ...]) -> list[int]:
        since = self._clock.now() - self.window_s
        counts = []
        for key in keys:
            rows = await self._archive.fetch(
                f"SELECT count(*) FROM web_login_failures WHERE key_hash = {self._p('key')} "
                f"AND at > {self._p('since')}", {"key": stored_digest(key), "since": since})
            counts.append(int(rows[0][0]))
        return counts
