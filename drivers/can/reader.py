"""The CAN driver: a python-can bus in, busd signal updates out.

python-can buses block in ``recv``, so one thread per bus reads frames into a
bounded buffer and wakes the event loop once per batch (not once per frame);
decoding and state updates happen on the loop. When the buffer is full the
newest frames are dropped and counted: at 10 Hz per signal a fresher frame
follows within 100 ms, while blocking would stall the reader and the bus
driver's own queue.

A bus error ends the reader thread and the session raises
:class:`DeviceError`; :class:`busd.reconnect.Reconnector` reopens the bus with
back-off, reporting degraded while it waits. A bus that stays open but goes
silent is reported as degraded too; its signals go stale by themselves.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import threading
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import can

from busd.clock import Clock
from busd.config import CanConfig
from busd.errors import DeviceError
from busd.logs import RateLimitedLog
from busd.reconnect import Link, Reconnector
from busd.state import VehicleState
from busd.supervisor import Backoff, ComponentContext
from drivers.can.decoder import FrameDecoder

BusFactory = Callable[..., can.BusABC]
_RECV_TIMEOUT_S = 0.5  # how long the reader thread blocks before checking for stop
_PROBLEM_LOG_INTERVAL_S = 30.0
_STATS_LOG_INTERVAL_S = 300.0  # counters in the log every 5 minutes and at stop
# After each batch the loop waits this long (real time: it is about CPU) so frames
# arrive in batches rather than waking the loop a thousand times a second. Each
# batch wakes every consumer of the state (tracker, planner, display, alert
# rules): at 20 ms that was 50 turns of all of them a second. 250 ms is a quarter
# of the shortest freshness limit (vehicle.speed, 1 s), half the display's push
# interval, and the lift's own poll period. A batch's frames share one time, so
# on an accelerated clock the wait shrinks with the speed (``gather_s``): at x600,
# 250 ms would stamp 150 simulated seconds of frames with one instant.
_BATCH_GATHER_S = 0.25
_MIN_GATHER_S = 0.02
_COUNTERS_EVERY_S = 1.0


@runtime_checkable
class LineFaults(Protocol):
    """A bus that reads a text protocol (slcan_stream) and counts lines that are no frame.

    Such lines never reach the buffer as frames, so the reader asks the bus for
    its count and reports it with the decoder's frame faults.
    """

    malformed_lines: int  # since the bus was opened; read from the loop, written by its thread
    last_malformed: bytes


class FrameBuffer:
    """A bounded thread-to-loop hand-over that wakes the loop once per batch."""

    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int) -> None:
        self._loop = loop
        self._capacity = capacity
        self._frames: collections.deque[can.Message] = collections.deque()
        self._ready = asyncio.Event()
        self._wake_pending = False
        self._waiting = False  # the loop is blocked in take(): only then is it woken
        self.dropped = 0
        self.error: BaseException | None = None

    def put(self, msg: can.Message) -> None:
        """Called from the reader thread."""
        if len(self._frames) >= self._capacity:
            self.dropped += 1
            return
        self._frames.append(msg)
        # Appended first, then checked: take() sets _waiting first, then looks
        # for frames, so one of the two always sees the other.
        if self._waiting:
            self._wake()

    def fail(self, error: BaseException) -> None:
        """Called from the reader thread when the bus fails."""
        self.error = error
        self._wake()

    def _wake(self) -> None:
        if not self._wake_pending:
            self._wake_pending = True
            with contextlib.suppress(RuntimeError):  # loop closed during shutdown
                self._loop.call_soon_threadsafe(self._ready.set)

    async def take(self) -> list[can.Message]:
        """Wait for frames and return all that are buffered.

        Frames put while the loop is busy or gathering do not wake it (a wake
        is a write to the loop's self-pipe and a turn of the loop, per batch).
        """
        self._waiting = True
        try:
            if not self._frames and self.error is None:
                await self._ready.wait()
        finally:
            self._waiting = False
        self._ready.clear()
        # Reset before draining: a frame put after this point wakes us again.
        self._wake_pending = False
        batch = []
        frames = self._frames
        while frames:
            batch.append(frames.popleft())
        return batch


class CanReader:
    """Component: reads one CAN bus into the vehicle state."""

    critical = True

    def __init__(
        self,
        *,
        config: CanConfig,
        decoder: FrameDecoder,
        state: VehicleState,
        clock: Clock,
        bus_factory: BusFactory = can.Bus,
        name: str = "can",
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        speed: float = 1.0,
    ) -> None:
        """``speed``: how much faster than real time ``clock`` runs (simulation)."""
        self.name = name
        self._gather_s = max(_MIN_GATHER_S, _BATCH_GATHER_S / speed) if speed > 1 \
            else _BATCH_GATHER_S
        self._backoff = backoff or Backoff()
        self._rng = rng or random.Random()
        self._config = config
        self._decoder = decoder
        self._state = state
        self._clock = clock
        self._bus_factory = bus_factory
        self._last_frame = clock.monotonic()
        self.buffer_dropped = 0
        self.bad_values = 0
        self.malformed_lines = 0  # over every bus this reader opened
        self._line_faults: LineFaults | None = None
        self._line_faults_seen = 0
        self._line_log: RateLimitedLog | None = None

    async def run(self, ctx: ComponentContext) -> None:
        config = self._config
        runner = Reconnector(ctx=ctx, clock=self._clock, backoff=self._backoff, rng=self._rng,
                             target=f"CAN {config.interface}:{config.channel}")
        await runner.run(lambda link: self._session(ctx, link))

    async def _session(self, ctx: ComponentContext, link: Link) -> None:
        bus = await self._open()
        self._watch_lines(bus)
        loop = asyncio.get_running_loop()
        buffer = FrameBuffer(loop, self._config.queue_size)
        stop = threading.Event()
        thread = threading.Thread(
            target=_read_frames, args=(bus, buffer, stop), name=f"busd-{self.name}-rx", daemon=True
        )
        problems = RateLimitedLog(ctx.log, _PROBLEM_LOG_INTERVAL_S)
        self._last_frame = self._clock.monotonic()
        thread.start()
        ctx.log.info("can_open", interface=self._config.interface, channel=self._config.channel)
        link.connected()  # the bus is open; the silence watchdog reports if nothing arrives
        watchdog = asyncio.create_task(
            self._watch_silence(ctx, buffer), name=f"busd:{self.name}:silence"
        )
        next_stats = self._clock.monotonic() + _STATS_LOG_INTERVAL_S
        next_counters = 0.0
        try:
            while True:
                batch = await buffer.take()
                if buffer.error is not None:
                    raise DeviceError(
                        f"CAN bus {self._config.channel} failed: {buffer.error}"
                    ) from buffer.error
                if batch:
                    self._ingest(batch, problems)
                    ctx.ready()
                    link.working()
                now = self._clock.monotonic()
                if now >= next_counters:
                    next_counters = now + _COUNTERS_EVERY_S
                    self._export_counters(ctx, buffer)
                if now >= next_stats:
                    next_stats += _STATS_LOG_INTERVAL_S
                    ctx.log.info("can_stats", **ctx.counters)
                await asyncio.sleep(self._gather_s)
        finally:
            self._export_counters(ctx, buffer)
            ctx.log.info("can_stats", **ctx.counters)
            watchdog.cancel()
            stop.set()
            await asyncio.gather(watchdog, return_exceptions=True)
            await asyncio.to_thread(_close, bus, thread)

    async def _open(self) -> can.BusABC:
        config = self._config
        kwargs: dict[str, Any] = {"interface": config.interface, "channel": config.channel}
        if config.interface not in ("virtual",):
            kwargs["bitrate"] = config.bitrate
        if config.filter_frames:
            kwargs["can_filters"] = self._decoder.can_filters()
        kwargs.update(config.options)
        try:
            return await asyncio.to_thread(self._bus_factory, **kwargs)
        except (can.CanError, OSError, ValueError, ImportError) as err:
            raise DeviceError(
                f"cannot open CAN interface {config.interface}:{config.channel}: {err}"
            ) from err

    def _ingest(self, batch: list[can.Message], problems: RateLimitedLog) -> None:
        now = self._clock.monotonic()
        wall = self._clock.now()  # one time for the batch: it was gathered within 100 ms
        self._last_frame = now
        decoder = self._decoder
        decode = decoder.decode
        frames: list[list[tuple[str, float | int | bool | str]]] = []
        take = frames.append
        for msg in batch:
            if msg.is_error_frame or msg.is_remote_frame:
                continue
            values = decode(msg.arbitration_id, msg.is_extended_id, msg.data, now)
            if values:
                take(values)
            problem = decoder.last_problem
            if problem is not None:
                decoder.last_problem = None
                problems.warning(
                    problem.kind, now, "can_frame_rejected", reason=problem.kind,
                    id=hex(problem.arbitration_id), detail=problem.detail,
                )
        # One state update per batch, frame by frame (power pairs one frame's values).
        for err in self._state.update_frames(frames, source=self.name, ts=wall, received=now):
            self.bad_values += 1
            problems.warning("bad_value", now, "can_bad_value", error=str(err))

    def _watch_lines(self, bus: can.BusABC) -> None:
        """Follow a text bus's malformed-line count (a new bus counts from 0)."""
        self._line_faults = bus if isinstance(bus, LineFaults) else None
        self._line_faults_seen = 0

    def _export_counters(self, ctx: ComponentContext, buffer: FrameBuffer) -> None:
        ctx.counters.update(self._decoder.stats.as_counters())
        ctx.counters["buffer_dropped"] = buffer.dropped
        ctx.counters["bad_values"] = self.bad_values
        self._report_lines(ctx)

    def _report_lines(self, ctx: ComponentContext) -> None:
        """Malformed lines go to health and, rate-limited, to the log, like rejected frames.

        Called from the frame loop and from the silence watchdog, so a line that
        carries nothing but garbage is reported too.
        """
        faults = self._line_faults
        if faults is None:
            return
        count = faults.malformed_lines
        new = count - self._line_faults_seen
        if new > 0:
            self._line_faults_seen = count
            self.malformed_lines += new
            if self._line_log is None:
                self._line_log = RateLimitedLog(ctx.log, _PROBLEM_LOG_INTERVAL_S)
            self._line_log.warning(
                "malformed_line", self._clock.monotonic(), "can_frame_rejected",
                reason="malformed_line", new=new, total=self.malformed_lines,
                detail=faults.last_malformed.decode("ascii", "backslashreplace"),
            )
        ctx.counters["malformed_lines"] = self.malformed_lines

    async def _watch_silence(self, ctx: ComponentContext, buffer: FrameBuffer) -> None:
        limit = self._config.silence_timeout_s
        while True:
            await self._clock.sleep(limit / 4)
            self._export_counters(ctx, buffer)
            silent_for = self._clock.monotonic() - self._last_frame
            if silent_for > limit:
                ctx.degraded(f"no CAN frames for more than {limit:g} s")
            else:
                ctx.beat()


def _read_frames(bus: can.BusABC, buffer: FrameBuffer, stop: threading.Event) -> None:
    """Reader thread: blocking receive, hand over, until stopped or the bus fails."""
    try:
        while not stop.is_set():
            msg = bus.recv(_RECV_TIMEOUT_S)
            if msg is not None:
                buffer.put(msg)
    except Exception as err:  # any bus failure ends this thread; the component reopens
        if not stop.is_set():
            buffer.fail(err)


def _close(bus: can.BusABC, thread: threading.Thread) -> None:
    thread.join(timeout=2 * _RECV_TIMEOUT_S)
    # Shutting down a failed bus may fail again; nothing to do.
    with contextlib.suppress(Exception):
        bus.shutdown()
