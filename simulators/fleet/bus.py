"""One simulated bus: the production outbox, uplink and sampler, fed by a day model.

Everything between the vehicle state and the broker is the bus's own code: the config is a
:class:`busd.config.BusdConfig` made for this bus, the parts come from
:func:`telemetry.wiring.build_uplink`, and the outbox and uplink run under a
:class:`busd.supervisor.Supervisor`, as in ``busd run``. Only the drivers are replaced, by
:class:`simulators.fleet.day.DayModel` writing straight into the vehicle state, and the tracker,
by the same model's events committed to the outbox.

The sampler runs outside the supervisor: at the end of the run the bus stops *producing* first
(day model and sampler), then waits until its outbox is empty (every record acknowledged by the
broker), and only then stops the uplink and the outbox, so its last ``seq`` is what the office
must have.

A backlog (``backlog_min``) is made before the bus connects: the same day model, sampler and
outbox, run on a :class:`busd.clock.ManualClock` through the minutes before now, as fast as the
CPU goes, as if the bus had been out of reach that long.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from pathlib import Path

import structlog
from pydantic import BaseModel

from busd import signals as sig
from busd.clock import Clock, ManualClock
from busd.config import BusdConfig, outbox_path
from busd.event_catalog import DailyReport, EventModel
from busd.state import VehicleState
from busd.supervisor import Backoff, ComponentContext, ComponentHealth, Supervisor
from simulators.fleet.config import FleetConfig
from simulators.fleet.day import DayModel, Step
from simulators.fleet.link import Link
from telemetry.outbox import Outbox
from telemetry.sampler import TelemetrySampler
from telemetry.wiring import build_uplink

log = structlog.get_logger("simulators.fleet")


class BusResult(BaseModel):
    """What one bus produced: the office must hold seq 1..``last_seq``, each once."""

    bus: str
    last_seq: int
    backlog_seq: int  # the last seq of the backlog made before it connected
    undelivered: int  # records still in the outbox at the end (0 after a full drain)
    outages: int
    events: int


def bus_config(fleet: FleetConfig, index: int, data_dir: Path, port: int) -> BusdConfig:
    """The bus's own config: its id, its outbox file, the broker (or its link), the rates."""
    r = fleet.rates
    # The model updates every tick_s: a limit of a few ticks keeps the values fresh between.
    freshness = {name: max(spec.freshness_s, 3 * r.tick_s) for name, spec in sig.SIGNALS.items()}
    return BusdConfig(
        bus_id=fleet.bus_id(index),
        data_dir=data_dir / fleet.bus_id(index),
        freshness_s=freshness,
        mqtt={"host": fleet.broker_host, "port": port, "protocol": "5",
              "reconnect_initial_s": fleet.reconnect_initial_s,
              "reconnect_max_s": fleet.reconnect_max_s, "timeout_s": 20},
        # NORMAL: a few hundred buses share one disk here; each real bus has its own (FULL).
        outbox={"commit_interval_s": r.commit_interval_s, "synchronous": "NORMAL",
                "delete_interval_s": 30.0},
        uplink={"telemetry_interval_moving_s": r.telemetry_moving_s,
                "telemetry_interval_parked_s": r.telemetry_parked_s,
                "state_interval_moving_s": r.state_moving_s,
                "state_interval_parked_s": r.state_parked_s},
    )


async def emit(outbox: Outbox, event: EventModel) -> None:
    if isinstance(event, DailyReport):
        await outbox.emit_report(event)
    else:
        await outbox.append("event", str(getattr(event, "kind")), event)  # noqa: B009


def apply(state: VehicleState, step: Step) -> None:
    for name, value in step.values.items():
        state.update(name, value, source="fleet")


class SimBus:
    def __init__(self, *, fleet: FleetConfig, index: int, data_dir: Path, start: float) -> None:
        """``start``: simulated UTC seconds the bus's day begins (before now by the backlog)."""
        self.fleet = fleet
        self.index = index
        self.id = fleet.bus_id(index)
        self._data_dir = data_dir
        self.day = DayModel(config=fleet.day, start=start, seed=fleet.seed * 100_003 + index)
        self._rng = random.Random(fleet.seed * 7919 + index)
        self.backlog_seq = 0
        self.events = 0
        self._log = log.bind(bus=self.id)

    def config(self, port: int) -> BusdConfig:
        return bus_config(self.fleet, self.index, self._data_dir, port)

    # --- the backlog ----------------------------------------------------------------------

    async def prefill(self, *, start: float, until: float) -> int:
        """Run the day from ``start`` to ``until`` offline, as fast as it goes; returns the
        last seq in the outbox."""
        clock = ManualClock(start)
        config = self.config(self.fleet.broker_port)
        state = VehicleState(clock, freshness_overrides=config.freshness_s)
        rates = self.fleet.rates
        async with Outbox(path=outbox_path(config), clock=clock, config=config.outbox) as outbox:
            sampler = TelemetrySampler(state=state, outbox=outbox, clock=clock,
                                       config=config.uplink, motion=config.motion)
            next_sample = clock.now()
            buffered = 0
            while clock.now() < until:
                step = self.day.step(clock.now())
                apply(state, step)
                for event in step.events:
                    await emit(outbox, event)
                    self.events += 1
                while next_sample <= clock.now():
                    data = sampler.sample()
                    if data is not None:
                        outbox.add_telemetry(data, full=data["full"])
                        buffered += 1
                    moving = self.day.phase.kind == "drive"
                    next_sample += rates.telemetry_moving_s if moving else \
                        rates.telemetry_parked_s
                if buffered >= 400:  # well before the sampler's buffer (600) overflows
                    await outbox.flush()
                    buffered = 0
                await clock.advance(min(rates.tick_s, until - clock.now()))
            await outbox.flush()
            self.backlog_seq = outbox.last_seq
        return self.backlog_seq

    # --- live -------------------------------------------------------------------------------

    async def run(self, *, clock: Clock, stop: asyncio.Event) -> BusResult:
        """Produce records until ``stop``, then drain the outbox and shut down cleanly."""
        fleet = self.fleet
        async with contextlib.AsyncExitStack() as stack:
            link: Link | None = None
            port = fleet.broker_port
            if fleet.outages.count:
                link = await stack.enter_async_context(Link(fleet.broker_host, port))
                port = link.port
            config = self.config(port)
            state = VehicleState(clock, freshness_overrides=config.freshness_s)
            parts = build_uplink(config, state=state, clock=clock)
            outbox = parts.outbox
            await outbox.open()  # before anything records (the supervisor's open is a no-op)
            # The supervisor's stop deadline is on the clock (at speed 600 its default 4 s
            # would be 7 real ms, and the outbox, stopped last, would be cut off while
            # closing); each part's own wait is in real seconds, so it is bounded below too.
            supervisor = Supervisor([outbox, parts.uplink], clock=clock,
                                    backoff=Backoff(initial_s=1.0, max_s=30.0),
                                    stop_timeout_s=10 * fleet.speed,
                                    ready_timeout_s=30 * fleet.speed)
            running = asyncio.create_task(supervisor.run(), name=f"fleet:{self.id}")
            sampler_ctx = ComponentContext(ComponentHealth("telemetry", critical=False), clock)
            producers = [
                asyncio.create_task(parts.sampler.run(sampler_ctx), name=f"{self.id}:sampler"),
                asyncio.create_task(self._drive(clock, state, outbox), name=f"{self.id}:day"),
            ]
            if link is not None:
                producers.append(asyncio.create_task(self._outages(clock, link),
                                                     name=f"{self.id}:outages"))
            try:
                await stop.wait()
            finally:
                for task in producers:
                    task.cancel()
                for outcome in await asyncio.gather(*producers, return_exceptions=True):
                    if not isinstance(outcome, asyncio.CancelledError | None):
                        self._log.error("fleet_producer_failed", error=repr(outcome))
                if link is not None:
                    await link.restore()
                undelivered = await self._drain(outbox)
                last_seq = outbox.last_seq
                supervisor.request_stop()
                try:
                    async with asyncio.timeout(60):
                        await running
                except TimeoutError:
                    self._log.error("fleet_bus_stop_timeout")
            return BusResult(bus=self.id, last_seq=last_seq, backlog_seq=self.backlog_seq,
                             undelivered=undelivered, outages=link.cuts if link else 0,
                             events=self.events)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _drive(self, clock: Clock, state: VehicleState, outbox: Outbox) -> None:
        while True:
            step = self.day.step(clock.now())
            apply(state, step)
            for event in step.events:
                await emit(outbox, event)
                self.events += 1
            await clock.sleep(self.fleet.rates.tick_s)

    def outage_plan(self) -> list[tuple[float, float]]:
        """(start, length) in simulated seconds from the live start, in order."""
        o = self.fleet.outages
        span = self.fleet.duration_s
        plan = sorted((self._rng.uniform(0.05, 0.75) * span,
                       self._rng.uniform(o.length_min.low, o.length_min.high) * 60)
                      for _ in range(o.count))
        return plan

    async def _outages(self, clock: Clock, link: Link) -> None:
        begun = clock.monotonic()
        for start, length in self.outage_plan():
            await clock.sleep(start - (clock.monotonic() - begun))
            link.cut()
            self._log.info("fleet_link_cut", minutes=round(length / 60, 1))
            await clock.sleep(length)
            await link.restore()

    async def _drain(self, outbox: Outbox) -> int:
        """Commit what is buffered and wait (real time) until the broker acknowledged it all;
        returns the records left when the wait timed out."""
        await outbox.flush()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.fleet.drain_timeout_s
        # Asked of the outbox's file, not its ``rows`` counter: a record acknowledged twice
        # (sent again on a new connection while its first PUBACK was on its way) counts twice
        # there, so ``rows`` can read 0 while records still wait.
        while (left := len(await outbox.peek(after_seq=0, limit=100_000))) and \
                loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        if left:
            self._log.warning("fleet_bus_not_drained", records=left)
        return left


def live_start(fleet: FleetConfig, now: float) -> float:
    """Where a bus's day begins: ``backlog_min`` before ``now``."""
    return now - fleet.backlog_min * 60 if fleet.backlog_min > 0 else now


__all__ = ["BusResult", "SimBus", "bus_config", "live_start"]
