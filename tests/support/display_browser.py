"""Headless Chromium (Debian's, driven by Playwright) and a running DisplayServer.

Never ``playwright install``: the browser is the system's /usr/bin/chromium
(apt package ``chromium``); the fixture fails with the install command when it
is missing, since these tests are the proof that the page works.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest

from busd.alerts import AlertBoard
from busd.clock import Clock
from busd.config import DisplayConfig
from busd.display.server import DisplayServer
from busd.state import VehicleState
from tests.conftest import REPO
from tests.support import leaks
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


@dataclass
class BrowserServer:
    """One Chromium for the whole session, behind Playwright's ``launch-server``.

    Launching Chromium took 1-3 s per test (more on a loaded CI box); the tests
    connect to this one instead. Each test still gets its own Playwright
    connection, and every context (cookies, storage) it opens is closed when the
    connection closes, so tests share the process, not state.
    """

    ws_endpoint: str
    process: subprocess.Popen[str]


def _launch_config(folder: Path) -> Path:
    config = folder / "launch-server.json"
    config.write_text(json.dumps({"executablePath": chromium_path(), "headless": True,
                                  "args": ARGS}))
    return config


@pytest.fixture(scope="session")
def browser_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserServer]:
    try:
        # How `python -m playwright` finds its node and CLI; the Python API has no
        # launch_server, the CLI's `launch-server` is Playwright's own way to share a browser.
        from playwright._impl._driver import compute_driver_executable
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[test]'")
    node, cli = compute_driver_executable()
    config = _launch_config(tmp_path_factory.mktemp("chromium"))
    process = subprocess.Popen(
        [str(node), str(cli), "launch-server", "--browser", "chromium", "--config", str(config)],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    leaks.keep_for_session(process.pid)  # Chromium's helpers come and go during any test
    try:
        assert process.stdout is not None
        # The server prints its endpoint once Chromium is up, then nothing more.
        line = process.stdout.readline().strip()
        if not line.startswith("ws://"):
            pytest.fail(f"playwright launch-server did not start Chromium: {line!r}")
        asyncio.run(_warm_up(line))
        yield BrowserServer(ws_endpoint=line, process=process)
    finally:
        _stop_tree(process)


async def _warm_up(ws_endpoint: str) -> None:
    """Open and close one page, before any test starts.

    Chromium starts its GPU, network and storage processes with the first page and
    keeps them; started here, they belong to the session, not to the first test
    (whose leak check would otherwise count them as its children).
    """
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.connect(ws_endpoint)
        page = await b.new_page()
        await page.set_content("<p>warm</p>")
        await b.close()


def _stop_tree(process: subprocess.Popen[str]) -> None:
    """End the server and Chromium under it (SIGTERM: the server closes the browser)."""
    try:
        tree = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    _, alive = psutil.wait_procs(tree, timeout=5)
    for child in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs(alive, timeout=5)
    if process.stdout is not None:
        process.stdout.close()


@pytest.fixture
async def browser(browser_server: BrowserServer) -> AsyncIterator[Browser]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[test]'")
    async with async_playwright() as pw:
        b = await pw.chromium.connect(browser_server.ws_endpoint)
        try:
            yield b
        finally:
            await b.close()  # closes this test's contexts; Chromium stays for the next test


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
