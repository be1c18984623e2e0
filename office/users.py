"""The office staff's accounts, kept in the archive's ``users`` table.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106's second recommended
profile); a hash made with older parameters is replaced at the next good login. Two roles:
``viewer`` sees everything, ``dispatcher`` may also send commands to the buses.

A check against an unknown name still verifies a hash (a fixed dummy one), so the time a
login takes does not tell which names exist.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from busd.clock import Clock, SystemClock
from office.archive import Archive
from office.archive.base import param

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024

_hasher = PasswordHasher()
_DUMMY = _hasher.hash("not a password of anyone's")


class Role(StrEnum):
    VIEWER = "viewer"
    DISPATCHER = "dispatcher"


class UserError(ValueError):
    """A name, password or role that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise UserError("a user name is 1-64 letters, digits or . _ @ -, starting with a "
                        "letter or digit")
    return name


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UserError(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


def account_stamp(role: object, changed: object) -> str:
    """An account's stamp from its ``role`` and ``changed`` columns as the back end gives them
    (office.web.sessions reads them in its own query)."""
    return f"{role}|{changed}"


class Users:
    """The accounts in one archive (either back end)."""

    def __init__(self, archive: Archive, clock: Clock | None = None,
                 hasher: PasswordHasher | None = None) -> None:
        self._archive = archive
        self._clock = clock or SystemClock()
        # Tests pass a cheap one; a hash made by other parameters is upgraded at login.
        self._hasher = hasher or _hasher
        self._dummy = _DUMMY if hasher is None else self._hasher.hash("not a password")

    def _p(self, name: str) -> str:
        return param(self._archive.dialect, name)

    def _now(self) -> Any:
        now = datetime.fromtimestamp(self._clock.now(), UTC)
        if self._archive.dialect == "sqlite":
            return now.isoformat(timespec="microseconds")
        return now

    async def add(self, name: str, password: str, role: Role) -> User:
        check_name(name)
        hashed = await asyncio.to_thread(self._hasher.hash, check_password(password))
        p = self._p
        rows = await self._archive.fetch(
            f"INSERT INTO users (name, password_hash, role, created, changed) VALUES "
            f"({p('name')}, {p('hash')}, {p('role')}, {p('now')}, {p('now')}) "
            "ON CONFLICT (name) DO NOTHING RETURNING name",
            {"name": name, "hash": hashed, "role": role.value, "now": self._now()})
        if not rows:
            raise UserError(f"user {name!r} exists")
        return User(name, role)

    async def remove(self, name: str) -> bool:
        rows = await self._archive.fetch(
            f"DELETE FROM users WHERE name = {self._p('name')} RETURNING name", {"name": name})
        return bool(rows)

    async def set_password(self, name: str, password: str) -> bool:
        hashed = await asyncio.to_thread(self._hasher.hash, check_password(password))
        return await self._set_hash(name, hashed)

    async def _set_hash(self, name: str, hashed: str) -> bool:
        p = self._p
        rows = await self._archive.fetch(
            f"UPDATE users SET password_hash = {p('hash')}, changed = {p('now')} "
            f"WHERE name = {p('name')} RETURNING name",
            {"name": name, "hash": hashed, "now": self._now()})
        return bool(rows)

    async def get(self, name: str) -> User | None:
        rows = await self._archive.fetch(
            f"SELECT name, role FROM users WHERE name = {self._p('name')}", {"name": name})
        return User(rows[0][0], Role(rows[0][1])) if rows else None

    async def stamp(self, name: str) -> str | None:
        """What changes when the account does (role, password): a session started under
        another stamp is over. None when the user is gone."""
        rows = await self._archive.fetch(
            f"SELECT role, changed FROM users WHERE name = {self._p('name')}", {"name": name})
        return account_stamp(rows[0][0], rows[0][1]) if rows else None

    async def all(self) -> list[User]:
        rows = await self._archive.fetch("SELECT name, role FROM users ORDER BY name", {})
        return [User(n, Role(r)) for n, r in rows]

    async def verify(self, name: str, password: str) -> User | None:
        """The user when ``password`` is theirs; None otherwise (unknown name included)."""
        if not NAME.match(name) or len(password) > MAX_PASSWORD:
            await asyncio.to_thread(self._verify, self._dummy, password[:MAX_PASSWORD])
            return None
        rows = await self._archive.fetch(
            f"SELECT password_hash, role FROM users WHERE name = {self._p('name')}",
            {"name": name})
        if not rows:
            await asyncio.to_thread(self._verify, self._dummy, password)
            return None
        hashed, role = rows[0]
        # argon2 takes tens of ms of CPU on purpose: off the event loop.
        if not await asyncio.to_thread(self._verify, hashed, password):
            return None
        if self._hasher.check_needs_rehash(hashed):
            await self._set_hash(name, await asyncio.to_thread(self._hasher.hash, password))
        return User(name, Role(role))

    def _verify(self, hashed: str, password: str) -> bool:
        try:
            return self._hasher.verify(hashed, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
