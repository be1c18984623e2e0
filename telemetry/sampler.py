"""Samples vehicle state into telemetry records for the outbox.

Once per ``telemetry_interval_moving_s`` while the bus moves, once per
``telemetry_interval_parked_s`` when parked. A *keyframe* (``full``: every
fresh signal) every ``telemetry_keyframe_s``; in between only the signals
that changed, so a bus on site for hours costs a few bytes a minute. Floats are
kept to 7 significant digits (GPS to about a metre), enough for every signal
and much shorter on the wire. A stale signal is listed in ``stale``, never
sent as a value.
"""

from __future__ import annotations

from typing import Any

from busd import signals as sig
from busd.clock import Clock
from busd.config import UplinkConfig
from busd.state import Value, VehicleState
from busd.supervisor import ComponentContext
from telemetry.outbox import Outbox


def compact(value: Value) -> Value:
    if isinstance(value, float):
        return float(f"{value:.7g}")
    return value


def is_moving(state: VehicleState, threshold_kmh: float) -> bool:
    speed = state.value(sig.VEHICLE_SPEED)
    if speed is None:
        speed = state.value(sig.GPS_SPEED)
    return isinstance(speed, int | float) and speed > threshold_kmh


class TelemetrySampler:
    """Supervisor component ``telemetry``: state -> outbox."""

    name = "telemetry"
    critical = False

    def __init__(
        self, *, state: VehicleState, outbox: Outbox, clock: Clock, config: UplinkConfig
    ) -> None:
        self._state = state
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
            current[name] = compact(view.value)
        if full:
            values = current
        else:
            values = {k: v for k, v in current.items() if self._last.get(k) != v}
        self._last = current
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
            moving = is_moving(self._state, self._cfg.moving_kmh)
            await self._clock.sleep(self._cfg.telemetry_interval_moving_s if moving
                                    else self._cfg.telemetry_interval_parked_s)
