"""One reconnecting runner for every loop that holds a connection to something.

The CAN bus, gpsd, an NMEA serial port, the lift's Modbus line, the MQTT
broker (the bus's uplink and the office's subscriber) all do the same thing:
connect, work until the connection fails, wait, connect again. Each used to
carry its own copy of that loop, and the copies drifted apart (one never grew
its back-off again after the first GPS fix, one never reset it after a day of
good service). :class:`Reconnector` is the one copy.

A *session* is a coroutine ``session(link)`` that connects, calls
``link.connected()`` once the connection stands, calls ``link.working()``
whenever it does its job (a fix delivered, a poll answered, a frame decoded)
and runs until the connection fails, by raising. The runner:

- waits a capped, jittered exponential back-off (:class:`busd.supervisor.Backoff`)
  between attempts. The back-off grows with every failure, whether the connect
  failed or a session died, and starts again from the beginning only after a
  *healthy* session: one that did its job for at least ``backoff.reset_after_s``
  before it failed. A connection that opens and dies at once, or a session that
  delivered one fix and then nothing, is not healthy: a device that flaps must
  not be hammered at the initial delay for ever.
- reports health: degraded with a readable reason while disconnected or
  waiting, ready when connected (the session may report finer health itself),
  and it keeps beating the watchdog while it waits, since its loop still turns.
- counts: ``connects``, ``connect_failures`` (before ``link.connected()``),
  ``disconnects`` (after it), ``failures`` (both), ``consecutive_failures`` and
  ``backoff_s`` (the current wait) in the component's counters; the last error
  goes to the component's health.
- unwraps exception groups (a TaskGroup's, aiomqtt's) into the reasons of their
  leaves: "ConnectionRefusedError: [Errno 111] Connect call failed", not
  "unhandled errors in a TaskGroup (1 sub-exception)".
- retries only the failures it is told are the link's (``retry_on``; by default
  ``OSError``, which includes timeouts, and :class:`~busd.errors.DeviceError`).
  Anything else is a bug, not a bad cable: it is raised to the supervisor,
  which logs it with its traceback and restarts the component.
- lets cancellation through at once, whether connected or waiting.

This module is logic: it imports no driver, no aiomqtt, no serial library.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import NoReturn

from busd.clock import Clock
from busd.errors import DeviceError
from busd.supervisor import Backoff, ComponentContext

DEFAULT_RETRY_ON: tuple[type[BaseException], ...] = (OSError, DeviceError)


def leaves(err: BaseException) -> Iterator[BaseException]:
    """The exceptions inside ``err``, exception groups flattened, in order."""
    if isinstance(err, BaseExceptionGroup):
        for inner in err.exceptions:
            yield from leaves(inner)
    else:
        yield err


def describe(err: BaseException) -> str:
    """A reason a person can read: ``Type: message`` of every leaf, joined by "; "."""
    parts = []
    for leaf in leaves(err):
        text = str(leaf)
        parts.append(f"{type(leaf).__name__}: {text}" if text else type(leaf).__name__)
    return "; ".join(dict.fromkeys(parts))  # the same failure of sibling tasks, once


class Link:
    """What a session tells its runner about the connection it holds."""

    def __init__(self, clock: Clock, on_connected: Callable[[bool], None]) -> None:
        self._clock = clock
        self._on_connected = on_connected
        self.is_connected = False
        self.working_since: float | None = None  # clock.monotonic() of the first working()

    def connected(self, *, ready: bool = True) -> None:
        """The connection stands. ``ready=False`` when the session reports its own health
        (a gpsd that answers but has no fix yet is not ready)."""
        if not self.is_connected:
            self.is_connected = True
            self._on_connected(ready)

    def working(self) -> None:
        """The session did its job just now; the healthy period starts at the first call."""
        if self.working_since is None:
            self.working_since = self._clock.monotonic()


Session = Callable[[Link], Awaitable[None]]


@dataclass
class ReconnectStats:
    connects: int = 0
    connect_failures: int = 0
    disconnects: int = 0
    consecutive_failures: int = 0
    last_error: str = ""
    backoff_s: float = 0.0

    @property
    def failures(self) -> int:
        return self.connect_failures + self.disconnects


class Reconnector:
    """Runs a session again and again, with back-off, health and counters."""

    def __init__(
        self,
        *,
        ctx: ComponentContext,
        clock: Clock,
        target: str,
        backoff: Backoff,
        retry_on: tuple[type[BaseException], ...] = DEFAULT_RETRY_ON,
        rng: random.Random | None = None,
        beat_every_s: float = 1.0,
    ) -> None:
        if beat_every_s <= 0:
            raise ValueError("beat_every_s must be positive")
        self._ctx = ctx
        self._clock = clock
        self._target = target  # "gpsd 127.0.0.1:2947": what a reason names
        self._backoff = backoff
        self._retry_on = retry_on
        self._rng = rng or random.Random()
        self._beat_every_s = beat_every_s
        self.stats = ReconnectStats()

    async def run(self, session: Session) -> NoReturn:
        """Connect and reconnect until cancelled (or until a failure that is not the link's)."""
        self._ctx.degraded(f"connecting to {self._target}")
        while True:
            link = Link(self._clock, self._connected)
            try:
                await session(link)
            except Exception as err:  # sorted below: the link's failures, or raised on
                unexpected = [e for e in leaves(err) if not isinstance(e, self._retry_on)]
                if unexpected:
                    self._ctx.log.error("session_failed", target=self._target,
                                        error=describe(err))
                    if unexpected[0] is err:
                        raise
                    raise unexpected[0] from None
                reason = describe(err)
            else:
                reason = "the connection ended"
            delay = self._failed(link, reason)
            await self._wait(delay)

    def _connected(self, ready: bool) -> None:
        self.stats.connects += 1
        self._export()
        self._ctx.log.info("connected", target=self._target, connects=self.stats.connects)
        if ready:
            self._ctx.ready()
        else:
            self._ctx.beat()

    def _failed(self, link: Link, reason: str) -> float:
        stats = self.stats
        now = self._clock.monotonic()
        healthy = (link.working_since is not None
                   and now - link.working_since >= self._backoff.reset_after_s)
        if healthy:
            stats.consecutive_failures = 0
        stats.consecutive_failures += 1
        if link.is_connected:
            stats.disconnects += 1
            what = f"{self._target} lost: {reason}"
        else:
            stats.connect_failures += 1
            what = f"cannot connect to {self._target}: {reason}"
        stats.last_error = reason
        stats.backoff_s = round(self._backoff.delay(stats.consecutive_failures, self._rng), 3)
        self._export()
        self._ctx.record_error(reason)
        self._ctx.log.warning(
            "disconnected" if link.is_connected else "connect_failed", target=self._target,
            error=reason, failures=stats.consecutive_failures, retry_in_s=stats.backoff_s,
        )
        self._ctx.degraded(what)
        return stats.backoff_s

    async def _wait(self, delay: float) -> None:
        """Sleep ``delay`` on the clock, beating now and then: this loop is alive."""
        until = self._clock.monotonic() + delay
        while (left := until - self._clock.monotonic()) > 0:
            await self._clock.sleep(min(left, self._beat_every_s))
            self._ctx.beat()

    def _export(self) -> None:
        stats = self.stats
        self._ctx.counters.update(
            connects=stats.connects, connect_failures=stats.connect_failures,
            disconnects=stats.disconnects, failures=stats.failures,
            consecutive_failures=stats.consecutive_failures, backoff_s=stats.backoff_s,
        )

