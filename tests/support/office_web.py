"""The office web in tests: an app over a fresh SQLite archive with two users, and a logged-in
client. Shared by the web's unit tests, its browser tests and (later) the day and report pages'
tests.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from busd.clock import Clock, ManualClock
from office.archive import Archive, open_archive
from office.config import OfficeConfig, parse_config
from office.users import Role, Users
from office.web.app import WebContext, create_app
from office.web.fleet import FleetFeed

VIEWER = ("vera", "viewer-pass-123")
DISPATCHER = ("dita", "dispatch-pass-456")
# argon2id at its cheapest: the tests check the logic, not the hash's cost.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def web_config(**web: object) -> OfficeConfig:
    return parse_config({"web": {"port": 0, **web}, "mqtt": {"enabled": False}})


async def add_users(archive: Archive) -> None:
    users = Users(archive, hasher=FAST_HASHER)
    await users.add(*VIEWER, Role.VIEWER)
    await users.add(*DISPATCHER, Role.DISPATCHER)


@dataclass
class WebUnderTest:
    client: TestClient  # type: ignore[type-arg]
    ctx: WebContext
    clock: ManualClock
    feed: FleetFeed


@asynccontextmanager
async def web_under_test(tmp_path: Path, *, config: OfficeConfig | None = None,
                         archive: Archive | None = None,
                         feed_clock: Clock | None = None) -> AsyncIterator[WebUnderTest]:
    config = config or web_config()
    clock = ManualClock()
    async with _archive(tmp_path, archive) as store:
        feed = FleetFeed(config=config, archive=store, clock=feed_clock or clock, office=None)
        ctx = WebContext(config=config, archive=store, clock=clock, fleet=feed,
                         hasher=FAST_HASHER)
        client = TestClient(TestServer(create_app(ctx)))
        await client.start_server()
        try:
            yield WebUnderTest(client, ctx, clock, feed)
        finally:
            await client.close()


@asynccontextmanager
async def _archive(tmp_path: Path, archive: Archive | None) -> AsyncIterator[Archive]:
    if archive is not None:
        yield archive
        return
    async with open_archive(f"sqlite:///{tmp_path / 'office.db'}") as opened:
        await add_users(opened)
        yield opened


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match[1]


async def log_in(client: TestClient, name: str, password: str) -> str:  # type: ignore[type-arg]
    """Log in; returns the session's CSRF token (from the page the login leads to)."""
    page = await client.get("/login")
    token = csrf_of(await page.text())
    response = await client.post("/login", data={"csrf": token, "name": name,
                                                 "password": password},
                                 allow_redirects=False)
    assert response.status == 303, await response.text()
    home = await client.get("/", headers={"Accept": "text/html"})
    assert home.status == 200
    return csrf_of(await home.text())
