"""GPS through gpsd: an asyncio client of its JSON protocol over TCP.

It sends ``?WATCH={"enable":true,"json":true}`` and reads one JSON report per
line. TPV reports become fixes, SKY reports fix quality; other classes are
ignored; malformed lines are counted and logged at a limited rate, never
fatal. A lost or refused connection is retried by :class:`busd.reconnect.Reconnector`
(capped, jittered back-off that starts over only after a period of good fixes)
while health shows degraded, so the supervisor never has to restart the
component for an ordinary gpsd restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable

from busd.clock import Clock
from busd.errors import DecodeError
from busd.logs import RateLimitedLog
from busd.reconnect import Link, Reconnector
from busd.state import VehicleState
from busd.supervisor import Backoff, ComponentContext
from drivers.gps.fix import GpsFix, GpsPublisher
from drivers.gps.gpsd_json import Sky, Tpv, parse_report

WATCH = b'?WATCH={"enable":true,"json":true};\n'


def _bump(counters: dict[str, int | float], key: str, by: int = 1) -> None:
    counters[key] = counters.get(key, 0) + by


class GpsdSource:
    """A supervisor component feeding gps.* signals from gpsd."""

    critical = False

    def __init__(
        self,
        *,
        state: VehicleState,
        clock: Clock,
        host: str = "127.0.0.1",
        port: int = 2947,
        name: str = "gps",
        stale_after_s: float = 5.0,
        time_offset_alarm_s: float = 5.0,
        connect_timeout_s: float = 5.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        max_line_bytes: int = 64 * 1024,
        on_fix: Callable[[GpsFix], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if stale_after_s <= 0 or connect_timeout_s <= 0:
            raise ValueError("timeouts must be positive")
        if not 0 < backoff_initial_s <= backoff_max_s:
            raise ValueError("need 0 < backoff_initial_s <= backoff_max_s")
        self.name = name
        self._state = state
        self._clock = clock
        self._host = host
        self._port = port
        self._stale_after_s = stale_after_s
        self._time_offset_alarm_s = time_offset_alarm_s
        self._connect_timeout_s = connect_timeout_s
        self._backoff = Backoff(initial_s=backoff_initial_s, max_s=backoff_max_s)
        self._max_line_bytes = max_line_bytes
        self._on_fix = on_fix  # a tap for tests and the track recorder; must not block
        self._rng = rng or random.Random()
        self.connected = asyncio.Event()

    async def run(self, ctx: ComponentContext) -> None:
        publisher = GpsPublisher(
            state=self._state, clock=self._clock, source=self.name,
            time_offset_alarm_s=self._time_offset_alarm_s, counters=ctx.counters, log=ctx.log,
        )
        bad_lines = RateLimitedLog(ctx.log, 30.0)

        async def session(link: Link) -> None:
            async with asyncio.timeout(self._connect_timeout_s):
                reader, writer = await asyncio.open_connection(
                    self._host, self._port, limit=self._max_line_bytes
                )
            link.connected(ready=False)  # ready once a fix arrives
            self.connected.set()
            try:
                await self._session(reader, writer, ctx, publisher, bad_lines, link)
            finally:
                self.connected.clear()
                writer.close()
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(1.0):
                        await writer.wait_closed()

        runner = Reconnector(ctx=ctx, clock=self._clock, target=f"gpsd {self._host}:{self._port}",
                             backoff=self._backoff, rng=self._rng)
        await runner.run(session)

    async def _session(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        ctx: ComponentContext,
        publisher: GpsPublisher,
        bad_lines: RateLimitedLog,
        link: Link,
    ) -> None:
        writer.write(WATCH)
        async with asyncio.timeout(self._connect_timeout_s):
            await writer.drain()
        # Wake often enough to notice a silent receiver even when gpsd sends nothing.
        tick = max(0.05, self._stale_after_s / 2)
        while True:
            try:
                async with asyncio.timeout(tick):
                    line = await reader.readline()
            except TimeoutError:
                self._report_health(ctx, publisher, link)
                continue
            except ValueError as err:
                # Longer than the stream limit: asyncio has already discarded it.
                _bump(ctx.counters, "malformed")
                bad_lines.warning("long", self._clock.monotonic(), "gpsd_line_too_long",
                                  error=str(err))
                continue
            if not line:
                raise ConnectionError("gpsd closed the connection")
            if not line.endswith(b"\n"):
                raise ConnectionError("gpsd closed the connection mid-line")
            self._handle(line, ctx, publisher, bad_lines)
            self._report_health(ctx, publisher, link)

    def _handle(
        self, line: bytes, ctx: ComponentContext, publisher: GpsPublisher, bad: RateLimitedLog
    ) -> None:
        _bump(ctx.counters, "lines")
        try:
            report = parse_report(line)
        except DecodeError as err:
            _bump(ctx.counters, "malformed")
            bad.warning("json", self._clock.monotonic(), "gpsd_malformed_report",
                        error=str(err), line=line[:120].decode("utf-8", "replace"))
            return
        if isinstance(report, Tpv):
            fix = report.to_fix()
            publisher.publish(fix)
            if self._on_fix is not None:
                self._on_fix(fix)
        elif isinstance(report, Sky):
            publisher.publish_quality(report.to_quality())
        else:
            _bump(ctx.counters, "ignored")

    def _report_health(self, ctx: ComponentContext, publisher: GpsPublisher, link: Link) -> None:
        problem = publisher.health_problem(stale_after_s=self._stale_after_s)
        if problem is None:
            ctx.ready()
            link.working()  # fresh fixes: the healthy period that resets the back-off
        else:
            ctx.degraded(problem)
