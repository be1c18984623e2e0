"""``busd office web``: open the archive, listen to the fleet, serve the pages."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog
from aiohttp import web
from argon2 import PasswordHasher

from busd.clock import Clock, SystemClock
from office.archive import Archive, open_archive
from office.config import OfficeConfig
from office.live import Office
from office.web.app import WebContext, create_app
from office.web.fleet import FleetFeed
from telemetry.mqtt import BrokerSettings

log = structlog.get_logger("office.web")


@dataclass
class RunningWeb:
    url: str
    port: int
    ctx: WebContext
    feed: FleetFeed
    runner: web.AppRunner


def broker_settings(config: OfficeConfig) -> BrokerSettings:
    m = config.mqtt
    password = os.environ.get("BUSD_OFFICE_PASSWORD")
    if m.password_file is not None:
        password = m.password_file.read_text(encoding="utf-8").strip()
    return BrokerSettings(host=m.host, port=m.port, username=m.username, password=password)


@asynccontextmanager
async def serving(config: OfficeConfig, *, archive: Archive | None = None,
                  clock: Clock | None = None, session_clock: Clock | None = None,
                  settings: BrokerSettings | None = None,
                  archive_poll_s: float = 10.0,
                  hasher: PasswordHasher | None = None) -> AsyncIterator[RunningWeb]:
    """The web, listening, until the block ends. ``archive``: one already open (else the
    config's is opened); ``session_clock``: the sessions' clock (tests step it)."""
    clock = clock or SystemClock()
    async with _archive(config, archive) as store:
        office = None
        if config.mqtt.enabled:
            office = Office(settings=settings or broker_settings(config), archive=None,
                            prefix=config.mqtt.prefix, clock=clock, persistent=False,
                            client_id=f"busd-office-web-{socket.gethostname()}-{os.getpid()}")
        feed = FleetFeed(config=config, archive=store, clock=clock, office=office,
                         archive_poll_s=archive_poll_s)
        ctx = WebContext(config=config, archive=store, clock=session_clock or clock,
                         fleet=feed, hasher=hasher)
        app = create_app(ctx)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, config.web.host, config.web.port)
        await site.start()
        port = _port(runner)
        host = config.web.host if config.web.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        url = f"http://{host}:{port}/"
        task = asyncio.create_task(feed.run(), name="office-web-feed")
        task.add_done_callback(_feed_ended)
        log.info("office_web_listening", url=url, buses_source="mqtt" if office else "archive")
        try:
            yield RunningWeb(url=url, port=port, ctx=ctx, feed=feed, runner=runner)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await runner.cleanup()
            await _handlers_finished()


@asynccontextmanager
async def _archive(config: OfficeConfig, archive: Archive | None) -> AsyncIterator[Archive]:
    if archive is not None:
        yield archive
        return
    async with open_archive(config.archive) as opened:
        yield opened


def _feed_ended(task: asyncio.Task[None]) -> None:
    # The pages go on answering with the last snapshot; the log says why it stopped.
    if not task.cancelled() and task.exception() is not None:
        log.error("office_web_feed_failed", reason=repr(task.exception()))


async def _handlers_finished(timeout: float = 2.0) -> None:
    """aiohttp cancels the handlers of closed connections (an event stream whose page went
    away) but does not wait for them: wait here, so nothing of the web outlives it."""
    left = [t for t in asyncio.all_tasks()
            if "RequestHandler" in getattr(t.get_coro(), "__qualname__", "")]
    if left:
        await asyncio.wait(left, timeout=timeout)


def _port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return int(address[1])
    raise RuntimeError("the web is not listening")


async def run_web(config: OfficeConfig, *, duration_s: float | None = None) -> int:
    async with serving(config) as running:
        print(f"office web: {running.url}", flush=True)
        try:
            async with asyncio.timeout(duration_s):
                await asyncio.Event().wait()
        except TimeoutError:
            pass
    return 0
