"""The CAN simulator as a supervised component: model or replay → frames → output.

In model mode it steps :class:`~simulators.can.model.VehicleModel` on the
injected clock every ``tick_s`` of simulated time (stretched by the clock's
speed so that an accelerated run still ticks about 100 times per *real*
second), sends the frames that are due, and exposes the model and its ground
truth for tests. In replay mode it plays a recorded log instead.
"""

from __future__ import annotations

from collections.abc import Mapping

import can

from busd.clock import Clock
from busd.config import CanSimulatorConfig
from busd.supervisor import ComponentContext
from simulators.can.duty import DutyCycle, InputSource
from simulators.can.frames import RATES_HZ, FrameScheduler, load_dbc
from simulators.can.model import Truth, VehicleModel
from simulators.can.outputs import BusOutput, FrameOutput, SlcanOutput
from simulators.can.replay import Replayer

STATS_EVERY_REAL_S = 60.0  # how often a running simulator logs its counters


class CanSimulator:
    """Implements the supervisor's Component protocol (``name``, ``critical``, ``run``).

    ``bus``: an already open python-can bus to send on (tests); otherwise the
    output comes from the config (``slcan_link`` or ``interface``/``channel``).
    ``inputs``: elapsed simulated seconds → :class:`Inputs`; defaults to the
    config's :class:`DutyCycle`. ``time_scale``: simulated seconds per real
    second; defaults to the clock's ``speed`` (a ScaledClock has one), else 1.
    ``rates_hz``: frames per second of each DBC message (default ``RATES_HZ``);
    a scenario runner thins the slow signals to keep an accelerated day light.
    """

    name = "sim.can"
    critical = False

    def __init__(
        self,
        config: CanSimulatorConfig,
        clock: Clock,
        *,
        bus: can.BusABC | None = None,
        inputs: InputSource | None = None,
        time_scale: float | None = None,
        tick_s: float = 0.01,
        seed: int = 1,
        rates_hz: Mapping[str, float] | None = None,
    ) -> None:
        if tick_s <= 0:
            raise ValueError("tick_s must be positive")
        self.config = config
        self.clock = clock
        scale = time_scale if time_scale is not None else getattr(clock, "speed", 1.0)
        self.time_scale = float(scale)
        if self.time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.tick_s = tick_s * max(1.0, self.time_scale)
        self.seed = seed
        self.rates_hz = rates_hz if rates_hz is not None else RATES_HZ
        self._bus = bus
        self.model = VehicleModel(
            capacity_kwh=config.capacity_kwh,
            initial_soc=config.initial_soc,
            outside_temp_c=config.outside_temp_c,
        )
        self.inputs: InputSource = inputs or DutyCycle(
            cruise_kmh=config.cruise_kmh,
            drive_s=config.drive_s,
            stop_s=config.stop_s,
            outside_temp_c=config.outside_temp_c,
        )
        self.db = load_dbc(config.dbc)  # fail at construction, before anything is opened
        self.elapsed_s = 0.0  # simulated seconds the model has run
        self.output: FrameOutput | None = None
        self.scheduler: FrameScheduler | None = None
        self.replayer: Replayer | None = None

    @property
    def truth(self) -> Truth:
        """Snapshot of the model's ground truth."""
        return self.model.truth()

    def _make_output(self) -> FrameOutput:
        if self._bus is not None:
            return BusOutput(bus=self._bus)
        if self.config.slcan_link is not None:
            return SlcanOutput(self.config.slcan_link)
        return BusOutput(interface=self.config.interface, channel=self.config.channel)

    async def run(self, ctx: ComponentContext) -> None:
        output = self._make_output()
        output.open()
        self.output = output
        try:
            ctx.ready()
            if self.config.replay is not None:
                await self._replay(ctx, output)
            else:
                await self._simulate(ctx, output)
        finally:
            output.close()
            self._publish(ctx, output)

    async def _replay(self, ctx: ComponentContext, output: FrameOutput) -> None:
        assert self.config.replay is not None
        self.replayer = Replayer(self.config.replay, self.clock, loop=self.config.replay_loop)
        ctx.log.info("can_replay_start", path=str(self.config.replay), loop=self.config.replay_loop)

        def beat() -> None:
            ctx.beat()
            self._publish(ctx, output)

        await self.replayer.run(output, beat)

    async def _simulate(self, ctx: ComponentContext, output: FrameOutput) -> None:
        scheduler = FrameScheduler(
            self.db,
            self.model.state,
            time_scale=self.time_scale,
            total_fps=self.config.fps,
            seed=self.seed,
            rates_hz=self.rates_hz,
            epoch=self.clock.now() - self.elapsed_s,
        )
        self.scheduler = scheduler
        ctx.log.info(
            "can_sim_start", dbc_fps=scheduler.dbc_fps, background_fps=scheduler.background_fps,
            time_scale=self.time_scale, soc=round(self.model.state.soc, 2),
        )
        # Send the first frames at once, so a daemon has data before the first tick.
        for frame in scheduler.due(self.elapsed_s):
            output.send(frame)
        output.flush()
        last = self.clock.monotonic()
        stats_every = STATS_EVERY_REAL_S * max(1.0, self.time_scale)
        next_stats = self.elapsed_s + stats_every
        while True:
            await self.clock.sleep(self.tick_s)
            now = self.clock.monotonic()
            dt, last = now - last, now
            self.model.step(dt, self.inputs(self.elapsed_s))
            self.elapsed_s += dt
            for frame in scheduler.due(self.elapsed_s):
                output.send(frame)
            output.flush()
            ctx.beat()
            self._publish(ctx, output)
            if self.elapsed_s >= next_stats:
                next_stats += stats_every
                ctx.log.info("can_sim_stats", **ctx.counters)

    def _publish(self, ctx: ComponentContext, output: FrameOutput) -> None:
        c = ctx.counters
        c.update(output.counters)
        if self.scheduler is not None:
            c["frames_skipped"] = self.scheduler.skipped
        if self.replayer is not None:
            c.update(self.replayer.counters)
        else:
            c["sim_time_s"] = round(self.elapsed_s, 2)
            c["soc"] = round(self.model.state.soc, 2)
