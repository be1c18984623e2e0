"""Samples vehicle state into telemetry records for the outbox.

Once per ``telemetry_interval_moving_s`` while the bus moves, once per
``telemetry_interval_parked_s`` when parked. A *keyframe* (``full``: every
fresh signal) every ``telemetry_keyframe_s``; in between only the signals
that moved by more than their *deadband* since they were last sent, so a bus
on site for hours costs a few bytes a minute and a driving bus does not send
sensor noise every second. Values are rounded to a resolution per signal
(:data:`RESOLUTION`: GPS to about a metre, SOC to 0.01 %), which is finer than
the deadband and much shorter on the wire. A stale signal is listed in
``stale``, never sent as a value.
"""

from __future__ import annotations

from typing import Any

from busd import signals as sig
from busd.clock import Clock
from busd.config import MotionConfig, UplinkConfig
from busd.motion import DEFAULT_MOTION, moving_now
from busd.state import Value, VehicleState
from busd.supervisor import ComponentContext
from telemetry.outbox import Outbox

# Signal -> (resolution, deadband). Resolution: values are rounded to it everywhere
# they leave the bus. Deadband: a change smaller than this since the last sent value
# is not worth a telemetry delta (the next keyframe carries it anyway).
RESOLUTION: dict[str, tuple[float, float]] = {
    sig.BATTERY_SOC: (0.01, 0.1),
    "battery.voltage": (0.1, 1.0),
    "battery.current": (0.1, 2.0),
    "battery.power": (0.01, 1.0),
    "battery.temp_min": (0.1, 0.5),
    "battery.temp_max": (0.1, 0.5),
    "battery.cell_v_min": (0.001, 0.005),
    "battery.cell_v_max": (0.001, 0.005),
    "battery.soh": (0.1, 0.5),
    "charger.power": (0.01, 0.5),
    "charger.session_energy": (0.01, 0.1),
    sig.VEHICLE_SPEED: (0.1, 2.0),
    "vehicle.odometer": (0.01, 0.1),
    "vehicle.outside_temp": (0.1, 0.5),
    "vehicle.hvac_power": (0.01, 0.5),
    "vehicle.aux_voltage": (0.01, 0.2),
    sig.GPS_LAT: (0.00001, 0.00005),
    sig.GPS_LON: (0.00001, 0.00005),
    sig.GPS_SPEED: (0.1, 2.0),
    "gps.heading": (1.0, 10.0),
    "gps.time": (1.0, 60.0),
    "gps.hdop": (0.1, 0.5),
}


def compact(value: Value, name: str = "") -> Value:
    """The value rounded to its signal's resolution (7 significant digits when unknown)."""
    if not isinstance(value, float):
        return value
    res = RESOLUTION.get(name)
    if res is None:
        return float(f"{value:.7g}")
    step = res[0]
    decimals = max(0, -int(f"{step:e}".split("e")[1]))
    return round(round(value / step) * step, decimals)


def moved(name: str, old: Value | None, new: Value) -> bool:
    """True when ``new`` differs from the last sent ``old`` by more than the deadband."""
    if old is None or type(old) is not type(new):
        return True
    res = RESOLUTION.get(name)
    if res is not None and isinstance(new, float) and isinstance(old, float):
        return abs(new - old) >= res[1] - 1e-12
    return old != new


class TelemetrySampler:
    """Supervisor component ``telemetry``: state -> outbox."""

    name = "telemetry"
    critical = False

    def __init__(
        self, *, state: VehicleState, outbox: Outbox, clock: Clock, config: UplinkConfig,
        motion: MotionConfig = DEFAULT_MOTION,
    ) -> None:
        self._state = state
        self._motion = motion
        self._outbox = outbox
        self._clock = clock
        self._cfg = config
        self._names = list(config.telemetry_signals or sig.SIGNALS)
        self._last: dict[str, Value] = {}
        self._stale: set[str] = set()
        self._next_key = float("-inf")
        self.samples = 0

    def sample(self) -> dict[str, Any] | None:
        """One telemetry record's data, or None when nothing changed since the last one."""
        now = self._clock.monotonic()
        full = now >= self._next_key
        values: dict[str, Value] = {}
        stale: list[str] = []
        current: dict[str, Value] = {}
        for name, view in self._state.snapshot(self._names).items():
            if view.value is None:
                continue
            if view.stale:
                if name not in self._stale:
                    stale.append(name)
                continue
            current[name] = compact(view.value, name)
        if full:
            values = current
        else:
            values = {k: v for k, v in current.items() if moved(k, self._last.get(k), v)}
        # Remember what the office now has: the deadband is measured from that.
        self._last = {k: v for k, v in self._last.items() if k in current} | values
        self._stale = {n for n in self._names if n not in current and (
            n in self._stale or n in stale)}
        if not values and not stale:
            return None  # nothing known or nothing changed: no record at all
        if full:
            self._next_key = now + self._cfg.telemetry_keyframe_s
        data: dict[str, Any] = {"full": full, "values": values}
        if stale:
            data["stale"] = stale
        return data

    async def run(self, ctx: ComponentContext) -> None:
        ctx.ready()
        self._next_key = float("-inf")  # a restart begins with a keyframe
        while True:
            data = self.sample()
            if data is not None:
                self._outbox.add_telemetry(data, full=data["full"])
                self.samples += 1
                ctx.counters["samples"] = self.samples
            ctx.beat()
            moving = moving_now(self._motion, self._state)
            await self._clock.sleep(self._cfg.telemetry_interval_moving_s if moving
                                    else self._cfg.telemetry_interval_parked_s)
