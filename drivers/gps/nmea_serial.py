"""GPS straight from a serial port speaking NMEA 0183, for boxes without gpsd.

pyserial blocks, so a reader thread owns the port: it splits bytes into
lines and hands complete lines to the event loop through a bounded queue
(overflow: the newest line is dropped and counted; at 1 Hz that only happens
when the loop is stuck). A partial line cut off by EOF or an error is counted
as truncated and never parsed. A port that fails is reopened by
:class:`busd.reconnect.Reconnector`, with the back-off every device loop uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import serial

from busd.clock import Clock
from busd.errors import DecodeError, DeviceError
from busd.logs import RateLimitedLog
from busd.reconnect import Link, Reconnector
from busd.state import VehicleState
from busd.supervisor import Backoff, ComponentContext
from drivers.gps.fix import GpsFix, GpsPublisher
from drivers.gps.nmea import MAX_SENTENCE, NmeaInterpreter, Vtg, parse_sentence, vtg_velocity


class SerialPort(Protocol):
    """What the reader uses of a pyserial port (``serial_factory`` may hand in another)."""

    @property
    def port(self) -> str | None: ...

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int, /) -> bytes: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class _PortClosed:
    reason: str


def _bump(counters: dict[str, int | float], key: str, by: int = 1) -> None:
    counters[key] = counters.get(key, 0) + by


class _ReaderThread(threading.Thread):
    """Owns the serial port; never touches asyncio objects except through the loop."""

    def __init__(
        self,
        *,
        port: SerialPort,
        loop: asyncio.AbstractEventLoop,
        queue: asyncio.Queue[bytes | _PortClosed],
        counters: dict[str, int | float],
    ) -> None:
        super().__init__(name=f"nmea-reader:{port.port}", daemon=True)
        self._port = port
        self._loop = loop
        self._queue = queue
        self._counters = counters
        self.stop = threading.Event()

    def _hand_over(self, item: bytes | _PortClosed) -> None:
        def put() -> None:
            try:
                self._queue.put_nowait(item)
            except asyncio.QueueFull:
                _bump(self._counters, "dropped_lines")

        with contextlib.suppress(RuntimeError):  # loop already closed at shutdown
            self._loop.call_soon_threadsafe(put)

    def run(self) -> None:
        partial = bytearray()
        reason = "stopped"
        try:
            while not self.stop.is_set():
                chunk = self._port.read(self._port.in_waiting or 1)
                if not chunk:
                    continue  # read timeout: look at the stop flag again
                _bump(self._counters, "bytes", len(chunk))  # ints under the GIL: safe enough
                partial += chunk
                while (end := partial.find(b"\n")) >= 0:
                    self._hand_over(bytes(partial[: end + 1]))
                    del partial[: end + 1]
                if len(partial) > 4 * MAX_SENTENCE:
                    # Line noise without newlines: drop it rather than grow forever.
                    self._hand_over(bytes(partial))
                    partial.clear()
        except (serial.SerialException, OSError) as err:
            reason = f"serial port failed: {err}"
        finally:
            if partial:
                _bump(self._counters, "truncated")
            with contextlib.suppress(Exception):
                self._port.close()
            self._hand_over(_PortClosed(reason))


class NmeaSerialSource:
    """A supervisor component feeding gps.* signals from an NMEA serial port."""

    critical = False

    def __init__(
        self,
        *,
        state: VehicleState,
        clock: Clock,
        device: str,
        baudrate: int = 9600,
        name: str = "gps",
        stale_after_s: float = 5.0,
        time_offset_alarm_s: float = 5.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        queue_size: int = 256,
        on_fix: Callable[[GpsFix], None] | None = None,
        serial_factory: Callable[..., SerialPort] = serial.Serial,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < backoff_initial_s <= backoff_max_s:
            raise ValueError("need 0 < backoff_initial_s <= backoff_max_s")
        self.name = name
        self._state = state
        self._clock = clock
        self._device = device
        self._baudrate = baudrate
        self._stale_after_s = stale_after_s
        self._time_offset_alarm_s = time_offset_alarm_s
        self._backoff = Backoff(initial_s=backoff_initial_s, max_s=backoff_max_s)
        self._queue_size = queue_size
        self._on_fix = on_fix
        self._serial_factory = serial_factory
        self._rng = rng or random.Random()

    async def run(self, ctx: ComponentContext) -> None:
        publisher = GpsPublisher(
            state=self._state, clock=self._clock, source=self.name,
            time_offset_alarm_s=self._time_offset_alarm_s, counters=ctx.counters, log=ctx.log,
        )
        garbage_log = RateLimitedLog(ctx.log, 30.0)

        async def session(link: Link) -> None:
            try:
                port = await asyncio.to_thread(
                    self._serial_factory, self._device, self._baudrate, timeout=0.2
                )
            except ValueError as err:  # pyserial's word for bad settings or a bad path
                raise DeviceError(f"cannot open {self._device}: {err}") from err
            link.connected(ready=False)  # ready once a fix arrives
            ctx.log.info("nmea_port_opened", device=self._device, baudrate=self._baudrate)
            reason = await self._session(port, ctx, publisher, garbage_log, link)
            raise DeviceError(reason)

        runner = Reconnector(ctx=ctx, clock=self._clock, target=f"NMEA port {self._device}",
                             backoff=self._backoff, rng=self._rng)
        await runner.run(session)

    async def _session(
        self, port: SerialPort, ctx: ComponentContext, publisher: GpsPublisher,
        garbage_log: RateLimitedLog, link: Link,
    ) -> str:
        queue: asyncio.Queue[bytes | _PortClosed] = asyncio.Queue(maxsize=self._queue_size)
        thread = _ReaderThread(
            port=port, loop=asyncio.get_running_loop(), queue=queue, counters=ctx.counters
        )
        thread.start()
        interpreter = NmeaInterpreter()
        tick = max(0.05, self._stale_after_s / 2)
        try:
            while True:
                try:
                    async with asyncio.timeout(tick):
                        item = await queue.get()
                except TimeoutError:
                    self._report_health(ctx, publisher, link)
                    continue
                if isinstance(item, _PortClosed):
                    return item.reason
                self._handle(item, ctx, publisher, interpreter, garbage_log)
                self._report_health(ctx, publisher, link)
        finally:
            thread.stop.set()
            # The thread wakes within its 0.2 s read timeout and closes the port itself.
            await asyncio.to_thread(thread.join, 2.0)

    def _handle(
        self, raw: bytes, ctx: ComponentContext, publisher: GpsPublisher,
        interpreter: NmeaInterpreter, garbage_log: RateLimitedLog,
    ) -> None:
        _bump(ctx.counters, "lines")
        try:
            sentence = parse_sentence(raw.decode("ascii"))
        except (DecodeError, UnicodeDecodeError) as err:
            _bump(ctx.counters, "garbage")
            garbage_log.warning("nmea", self._clock.monotonic(), "nmea_garbage",
                                error=str(err), line=raw[:100].decode("ascii", "replace"))
            return
        if sentence is None:
            _bump(ctx.counters, "ignored")
            return
        if isinstance(sentence, Vtg):
            speed, heading = vtg_velocity(sentence)
            if publisher.last_mode >= 2:
                publisher.publish_velocity(speed_kmh=speed, heading=heading)
            return
        fix, quality = interpreter.feed(sentence)
        if quality is not None:
            publisher.publish_quality(quality)
        if fix is not None:
            publisher.publish(fix)
            if self._on_fix is not None:
                self._on_fix(fix)

    def _report_health(self, ctx: ComponentContext, publisher: GpsPublisher, link: Link) -> None:
        problem = publisher.health_problem(stale_after_s=self._stale_after_s)
        if problem is None:
            ctx.ready()
            link.working()  # fresh fixes: the healthy period that resets the back-off
        else:
            ctx.degraded(problem)

