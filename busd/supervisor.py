"""Runs every part of the daemon as a task, restarts what fails, reports health.

A part is a :class:`Component`: something with a name and an ``async run(ctx)``
that works until it is cancelled. If ``run`` raises, the supervisor logs why,
waits a capped, jittered exponential back-off on the injected clock, and runs
it again; a part that stayed up for ``reset_after_s`` starts its back-off from
the beginning.

Parts start one by one in the order given, each awaited *ready* before the
next starts, because later parts depend on earlier ones (the outbox is open
before the uplink reads it, drivers listen before simulators send). A part is
ready once it called ``ready()`` or ``degraded()`` (it runs; a device that is
not there yet is its own business), or once it failed or finished. A part that
is not ready within ``ready_timeout_s`` (real time: opening a device takes wall
time whatever the simulated speed) is logged and marked, and the start goes on:
one stuck part must not keep the whole daemon down. Parts stop in reverse
(sources first, sinks flush last), all within the stop timeout.

Each part reports through its :class:`ComponentContext`: ``ready()`` once it
works, ``degraded(reason)`` while it runs but is not doing its job (a silent
CAN bus, a broker that is down), ``beat()`` to show its loop is alive, and
``counters`` for the numbers an operator wants to see.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import structlog

from busd.clock import Clock

log = structlog.get_logger("busd.supervisor")


class Phase(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    DEGRADED = "degraded"
    BACKOFF = "backoff"
    STOPPED = "stopped"
    FINISHED = "finished"


@dataclass
class ComponentHealth:
    name: str
    critical: bool
    phase: Phase = Phase.STARTING
    reason: str = ""
    restarts: int = 0
    last_error: str = ""
    last_error_at: float | None = None
    last_beat: float | None = None  # clock.monotonic()
    counters: dict[str, int | float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase.value,
            "critical": self.critical,
            "reason": self.reason,
            "restarts": self.restarts,
            "last_error": self.last_error,
            "counters": dict(self.counters),
        }


class ComponentContext:
    """What a running component uses to report on itself."""

    def __init__(
        self, health: ComponentHealth, clock: Clock, started: asyncio.Event | None = None
    ) -> None:
        self._health = health
        self._clock = clock
        self._started = started or asyncio.Event()
        self.log = log.bind(component=health.name)

    @property
    def counters(self) -> dict[str, int | float]:
        return self._health.counters

    @property
    def reason(self) -> str:
        """Why the part is degraded ("" while it runs normally)."""
        return self._health.reason

    def ready(self) -> None:
        self._started.set()
        self.beat()
        if self._health.phase is not Phase.RUNNING:
            if self._health.phase is Phase.DEGRADED:
                self.log.info("component_recovered", was=self._health.reason)
            self._health.phase = Phase.RUNNING
            self._health.reason = ""

    def degraded(self, reason: str) -> None:
        self._started.set()
        self.beat()
        if self._health.phase is not Phase.DEGRADED or self._health.reason != reason:
            self.log.warning("component_degraded", reason=reason)
        self._health.phase = Phase.DEGRADED
        self._health.reason = reason

    def beat(self) -> None:
        self._health.last_beat = self._clock.monotonic()

    def record_error(self, error: str) -> None:
        """A failure the component handles itself (a lost link it reconnects), for health."""
        self._health.last_error = error
        self._health.last_error_at = self._clock.now()


class Component(Protocol):
    name: str
    critical: bool

    async def run(self, ctx: ComponentContext) -> None: ...


@dataclass(frozen=True)
class Backoff:
    initial_s: float = 1.0
    max_s: float = 60.0
    reset_after_s: float = 60.0

    def delay(self, failures: int, rng: random.Random) -> float:
        """Exponential in the number of consecutive failures, capped, with 50-100 % jitter."""
        base = min(self.max_s, self.initial_s * 2.0 ** max(0, failures - 1))
        return base * rng.uniform(0.5, 1.0)


class Supervisor:
    def __init__(
        self,
        components: Sequence[Component],
        *,
        clock: Clock,
        backoff: Backoff | None = None,
        stop_timeout_s: float = 4.0,
        ready_timeout_s: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        names = [c.name for c in components]
        if len(set(names)) != len(names):
            raise ValueError(f"component names must be unique: {names}")
        self._components = list(components)
        self._clock = clock
        self._backoff = backoff or Backoff()
        self._stop_timeout_s = stop_timeout_s
        self._ready_timeout_s = ready_timeout_s
        self._rng = rng or random.Random()
        self.health = {c.name: ComponentHealth(c.name, c.critical) for c in components}
        self._stop = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._started: dict[str, asyncio.Event] = {}

    def add(self, component: Component) -> None:
        """Add a component before :meth:`run`; it starts last and stops first."""
        if self._tasks:
            raise RuntimeError("components can only be added before run()")
        if component.name in self.health:
            raise ValueError(f"component name {component.name!r} already used")
        self._components.append(component)
        self.health[component.name] = ComponentHealth(component.name, component.critical)

    def request_stop(self) -> None:
        """Ask for a clean shutdown (safe to call from a signal handler)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def all_critical_running(self) -> bool:
        return all(
            h.phase in (Phase.RUNNING, Phase.DEGRADED) for h in self.health.values() if h.critical
        )

    async def run(self) -> None:
        """Start every component in order, each awaited ready; run until
        :meth:`request_stop`, then stop them in reverse order."""
        try:
            for component in self._components:
                if self._stop.is_set():
                    break
                started = self._started[component.name] = asyncio.Event()
                self._tasks[component.name] = asyncio.create_task(
                    self._keep_running(component, started), name=f"busd:{component.name}"
                )
                await self._await_ready(component.name, started)
            log.info("supervisor_started", components=list(self._tasks))
            await self._stop.wait()
        finally:
            await self._shutdown()

    async def _await_ready(self, name: str, started: asyncio.Event) -> None:
        stop = asyncio.create_task(self._stop.wait())
        ready = asyncio.create_task(started.wait())
        try:
            await asyncio.wait({stop, ready}, timeout=self._ready_timeout_s,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            ready.cancel()
        if not started.is_set() and not self._stop.is_set():
            health = self.health[name]
            health.reason = f"not ready within {self._ready_timeout_s:g} s of its start"
            log.warning("component_not_ready", component=name,
                        timeout_s=self._ready_timeout_s)

    async def _shutdown(self) -> None:
        deadline = self._clock.monotonic() + self._stop_timeout_s
        for component in reversed(self._components):
            task = self._tasks.get(component.name)
            if task is None:  # stopped while starting: never started
                continue
            task.cancel()
            remaining = max(0.05, deadline - self._clock.monotonic())
            try:
                async with asyncio.timeout(remaining):
                    await asyncio.gather(task, return_exceptions=True)
            except TimeoutError:
                log.error("component_stop_timeout", component=component.name)
            self.health[component.name].phase = Phase.STOPPED
        log.info("supervisor_stopped")

    async def _keep_running(self, component: Component, ready: asyncio.Event) -> None:
        health = self.health[component.name]
        ctx = ComponentContext(health, self._clock, ready)
        failures = 0
        while True:
            started = self._clock.monotonic()
            health.phase = Phase.STARTING
            try:
                await component.run(ctx)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # a part's failure must never take the daemon down
                if self._clock.monotonic() - started >= self._backoff.reset_after_s:
                    failures = 0
                failures += 1
                health.restarts += 1
                health.last_error = f"{type(err).__name__}: {err}"
                health.last_error_at = self._clock.now()
                health.phase = Phase.BACKOFF
                ready.set()  # failed: its dependents start anyway (and cope, as they must)
                delay = self._backoff.delay(failures, self._rng)
                ctx.log.error(
                    "component_failed", error=health.last_error, restart_in_s=round(delay, 3),
                    failures=failures, exc_info=failures == 1,
                )
                await self._clock.sleep(delay)
                continue
            health.phase = Phase.FINISHED
            ready.set()
            ctx.log.info("component_finished")
            return
