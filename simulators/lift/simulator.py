"""The lift's Modbus RTU unit on a pty, cycling the lift at stops.

Answers the driver's polls from a :class:`LiftModel`; a scenario (or a test)
commands deploy/stow/cycle, injects a controller fault, or makes the unit
fall silent (``answering = False``) as a unit with a cut RS-485 pair would.
With ``stopped`` given (a callable saying whether the bus stands still), it
runs one boarding cycle at each stop by itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import structlog

from busd.clock import Clock
from busd.config import LiftRegisterMap, LiftSimulatorConfig
from busd.supervisor import ComponentContext
from simulators.lift.model import LiftModel
from simulators.lift.rtu import RequestParser, answer
from simulators.pty import PtyLink

log = structlog.get_logger("simulators.lift")

TICK_S = 0.1
# The simulated crew deploys the lift only when the modelled bus truly stands: the
# model's true speed, with float residue below this. Deliberately not busd's
# ``motion.stopped_kmh``, which judges a measured, noisy speed: a simulator that
# shared busd's definition would hide a wrong one (as it shares no decoding code).
STANDSTILL_KMH = 0.5


def standing(true_speed_kmh: float) -> bool:
    """Whether the modelled bus stands still (for ``stopped``)."""
    return true_speed_kmh < STANDSTILL_KMH


class LiftSimulator:
    critical = False

    def __init__(
        self,
        *,
        clock: Clock,
        link: Path,
        unit_id: int = 1,
        registers: LiftRegisterMap | None = None,
        model: LiftModel | None = None,
        dwell_s: float = 60.0,
        stopped: Callable[[], bool] | None = None,
        settle_s: float = 5.0,
        name: str = "sim-lift",
    ) -> None:
        self.name = name
        self._clock = clock
        self._link_path = link
        self._unit = unit_id
        self._registers = registers or LiftRegisterMap()
        self.model = model or LiftModel()
        self._dwell_s = dwell_s
        self._stopped = stopped
        self._settle_s = settle_s
        self.answering = True
        self.requests = 0
        self.ignored = 0
        self.started = asyncio.Event()
        self._stopped_since: float | None = None
        self._cycled_this_stop = False

    @classmethod
    def from_config(cls, config: LiftSimulatorConfig, *, clock: Clock,
                    stopped: Callable[[], bool] | None = None) -> LiftSimulator:
        return cls(
            clock=clock, link=config.link, unit_id=config.unit_id, registers=config.registers,
            model=LiftModel(deploy_s=config.deploy_s, stow_s=config.stow_s,
                            cycles=config.initial_cycles),
            dwell_s=config.dwell_s, stopped=stopped if config.cycle_at_stops else None,
        )

    # --- commands (scenario / tests) ----------------------------------------------

    def deploy(self) -> None:
        self.model.deploy(self._clock.monotonic())

    def stow(self) -> None:
        self.model.stow(self._clock.monotonic())

    def cycle(self, dwell_s: float | None = None) -> None:
        self.model.cycle(self._clock.monotonic(),
                         dwell_s=self._dwell_s if dwell_s is None else dwell_s)

    def inject_fault(self, on: bool = True) -> None:
        self.model.inject_fault(on)

    # --- the unit -------------------------------------------------------------------

    def _bit(self, address: int) -> bool | None:
        inputs = self.model.inputs()
        regs = self._registers
        by_address = {regs.stowed: "stowed", regs.deployed: "deployed", regs.moving: "moving",
                      regs.door_open: "door_open", regs.interlock: "interlock",
                      regs.fault: "fault"}
        name = by_address.get(address)
        if name is not None:
            return inputs[name]
        # A 16-input module: unwired inputs read 0; beyond it, illegal address.
        return False if 0 <= address < 16 else None

    def _register(self, address: int) -> int | None:
        regs = self._registers
        cycles = self.model.cycles
        if regs.cycles_words == 1 and address == regs.cycles:
            return cycles & 0xFFFF
        if regs.cycles_words == 2 and address in (regs.cycles, regs.cycles + 1):
            return (cycles >> 16) & 0xFFFF if address == regs.cycles else cycles & 0xFFFF
        return None

    async def run(self, ctx: ComponentContext | None = None) -> None:
        async with PtyLink(link=self._link_path) as link:
            self.started.set()
            if ctx is not None:
                ctx.ready()
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._serve(link), name=f"{self.name}:serve")
                    group.create_task(self._tick(ctx), name=f"{self.name}:tick")
            finally:
                self.started.clear()

    async def _serve(self, link: PtyLink) -> None:
        parser = RequestParser()
        while True:
            data = await link.read()
            for request in parser.feed(data):
                self.model.step(self._clock.monotonic())
                if request.unit != self._unit:
                    continue  # another unit on the bus: not ours to answer
                if not self.answering:
                    self.ignored += 1
                    continue
                self.requests += 1
                link.write(answer(request, bit=self._bit, register=self._register))

    async def _tick(self, ctx: ComponentContext | None) -> None:
        while True:
            await self._clock.sleep(TICK_S)
            now = self._clock.monotonic()
            self.model.step(now)
            self._auto_cycle(now)
            if ctx is not None:
                ctx.beat()
                ctx.counters.update(requests=self.requests, ignored=self.ignored,
                                    cycles=self.model.cycles)

    def _auto_cycle(self, now: float) -> None:
        if self._stopped is None:
            return
        if not self._stopped():
            self._stopped_since = None
            self._cycled_this_stop = False
            return
        if self._stopped_since is None:
            self._stopped_since = now
        if not self._cycled_this_stop and now - self._stopped_since >= self._settle_s:
            self._cycled_this_stop = True
            log.info("lift_cycle_at_stop")
            self.cycle()
