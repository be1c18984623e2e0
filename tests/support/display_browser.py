"""Headless Chromium (Debian's, driven by Playwright) and a running DisplayServer.

Never ``playwright install``: the browser is the system's /usr/bin/chromium
(apt package ``chromium``); the fixture fails with the install command when it
is missing, since these tests are the proof that the page works.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from busd.alerts import AlertBoard
from busd.clock import Clock
from busd.config import DisplayConfig
from busd.display.server import DisplayServer
from busd.state import VehicleState
from tests.conftest import REPO
from tests.support.components import running
from tests.support.wait import wait_until

if TYPE_CHECKING:  # imported when the fixture runs, so that its absence is a clear failure
    from playwright.async_api import Browser, Page

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "test-artifacts"


def chromium_path() -> str:
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if found is None:
        pytest.fail("chromium is not installed: run `apt-get install -y chromium`")
    return found


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[test]'")
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=chromium_path(), args=ARGS)
        try:
            yield b
        finally:
            await b.close()


@dataclass
class Served:
    server: DisplayServer
    task: asyncio.Task[None]


@contextlib.asynccontextmanager
async def serving(server: DisplayServer, clock: Clock) -> AsyncIterator[DisplayServer]:
    """Run the display component until the block ends; yields once it listens."""
    async with running(server, clock) as run:
        await wait_until(lambda: server.port is not None or run.task.done(), timeout=5,
                         what="the display to listen")
        if run.task.done():
            run.task.result()
        yield server


def make_server(
    state: VehicleState, clock: Clock, *, alerts: AlertBoard | None = None, port: int = 0,
    **kwargs: object,
) -> DisplayServer:
    config_keys = {"language", "night_mode", "heartbeat_s", "push_interval_s"}
    config = DisplayConfig(port=port, **{k: v for k, v in kwargs.items() if k in config_keys})
    ports = {k: v for k, v in kwargs.items() if k not in config_keys}
    return DisplayServer(config=config, state=state, clock=clock,
                         alerts=alerts or AlertBoard(clock=clock), **ports)  # type: ignore[arg-type]


async def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    await page.screenshot(path=str(path))
    return path
