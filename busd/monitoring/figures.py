"""Pure accumulators behind the monitoring figures: energy, distance, lift cycles.

Each works on explicit times and values (no clock, no state), so the tests feed
them dense synthetic series. All of them are *cumulative*: a leg's or a visit's
figure is the difference of two :class:`Counters` snapshots taken at its ends.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from busd.plan import haversine_m

_S_PER_H = 3600.0


@dataclass(frozen=True, slots=True)
class Counters:
    """Cumulative, additive figures; differences of two snapshots give a record's figures."""

    out_kwh: float = 0.0  # discharge at the pack terminals (∫V·I, I > 0)
    regen_kwh: float = 0.0  # charge back while not plugged in
    charged_kwh: float = 0.0  # charge back while plugged in
    gap_s: float = 0.0  # time with no usable battery current: energy unknown, not invented
    gaps: int = 0  # how many separate gaps
    gps_m: float = 0.0  # GPS track length (cross-check of the odometer)
    lift_cycles: int = 0
    temp_cs: float = 0.0  # ∫ outside temperature dt (°C·s), for a time-weighted mean
    temp_s: float = 0.0  # seconds with a known outside temperature
    # Time switched off (BMS asleep, CAN silent while parked): no energy flows, so
    # it is not a gap in the energy data.
    off_s: float = 0.0

    def __sub__(self, other: Counters) -> Counters:
        return Counters(*(getattr(self, f.name) - getattr(other, f.name) for f in fields(self)))

    def __add__(self, other: Counters) -> Counters:
        return Counters(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def mean_temp_c(self) -> float | None:
        return self.temp_cs / self.temp_s if self.temp_s > 0 else None


class EnergyIntegrator:
    """∫V·I over time from irregular updates, holding each value until the next one.

    A power value is held for at most ``max_hold_s`` after it was received; any
    time beyond that (a CAN current that went stale) is counted as a gap, and
    no energy is invented for it. Discharge, regeneration and charging are kept
    apart (the sign convention is busd's: positive = discharge).
    """

    def __init__(self, *, max_hold_s: float) -> None:
        if max_hold_s <= 0:
            raise ValueError("max_hold_s must be positive")
        self.max_hold_s = max_hold_s
        self.out_kwh = 0.0
        self.regen_kwh = 0.0
        self.charged_kwh = 0.0
        self.gap_s = 0.0
        self.gaps = 0
        self.off_s = 0.0
        self._off = False  # switched off since the last step
        self._t: float | None = None
        self._p_kw: float | None = None
        self._p_received = 0.0
        self._plugged = False
        self._in_gap = False

    def step(
        self, t: float, power_kw: float | None, *, age_s: float = 0.0, plugged: bool = False,
        switched_off: bool = False,
    ) -> None:
        """Account for the time up to ``t``, then hold ``power_kw`` (None: unknown).

        ``age_s`` is how old the value already is at ``t`` (received at ``t - age_s``).
        ``switched_off``: from ``t`` on the vehicle is off (its CAN silent while
        parked); time without power then is switched-off time, not a gap.
        """
        if self._t is not None and t > self._t:
            covered = 0.0
            if self._p_kw is not None:
                covered = max(0.0, min(t, self._p_received + self.max_hold_s) - self._t)
                self._add(self._p_kw * covered / _S_PER_H, self._plugged)
            gap = (t - self._t) - covered
            if gap > 1e-9 and (self._off or switched_off):  # off then, or found off now
                self.off_s += gap
            elif gap > 1e-9:
                self.gap_s += gap
                if not self._in_gap:
                    self.gaps += 1
                    self._in_gap = True
            elif covered > 0:
                self._in_gap = False
        if self._t is None or t >= self._t:
            self._t = t
        self._off = switched_off
        if power_kw is not None and age_s <= self.max_hold_s:
            self._p_kw = power_kw
            self._p_received = t - max(0.0, age_s)
            self._plugged = plugged
        else:
            self._p_kw = None

    def _add(self, kwh: float, plugged: bool) -> None:
        if kwh >= 0:
            self.out_kwh += kwh
        elif plugged:
            self.charged_kwh -= kwh
        else:
            self.regen_kwh -= kwh


class GpsDistance:
    """Length of the GPS track, with parked jitter filtered out.

    A point counts only once it is at least ``min_step_m`` from the anchor (the
    last accepted point). While the bus is known to be parked nothing counts;
    while it is known to move a point counts at once; when nobody knows (no
    wheel or GPS speed) a displacement counts only after ``confirm`` fixes in a
    row are all that far away, which random scatter around a parked bus never
    achieves. A parked anchor settles on the mean of its fixes, not one noisy fix.
    """

    def __init__(self, *, min_step_m: float, confirm: int = 3) -> None:
        self.min_step_m = min_step_m
        self.confirm = confirm
        self.metres = 0.0
        self._anchor: tuple[float, float] | None = None
        self._n = 0  # fixes averaged into the anchor
        self._beyond = 0

    def step(self, lat: float | None, lon: float | None, *, moving: bool | None) -> None:
        if lat is None or lon is None:
            return
        if self._anchor is None:
            self._anchor, self._n = (lat, lon), 1
            return
        d = haversine_m(self._anchor[0], self._anchor[1], lat, lon)
        if d < self.min_step_m:
            self._beyond = 0
            if moving is not True:
                self._n = min(self._n + 1, 30)
                a_lat, a_lon = self._anchor
                self._anchor = (a_lat + (lat - a_lat) / self._n, a_lon + (lon - a_lon) / self._n)
            return
        if moving is None:
            self._beyond += 1
            if self._beyond < self.confirm:
                return
        self._beyond = 0
        if moving is not False:
            self.metres += d
        # Parked: follow the fix without counting it (a jump while parked is noise).
        self._anchor, self._n = (lat, lon), 1


class LiftCycles:
    """Lift cycles from the unit's counter (``lift.cycles``) or, without one, from its state.

    A counter that goes backwards (unit replaced or reset) restarts from its
    new value. After a restart, :meth:`resume` continues from the last counter
    stored, so cycles made while busd was down are not lost. Without a counter,
    a cycle is a return to ``stowed`` after the lift was ``deployed``.
    """

    def __init__(self) -> None:
        self.cycles = 0
        self._last_counter: int | None = None
        self._have_counter = False
        self._was_out = False

    @property
    def last_counter(self) -> int | None:
        return self._last_counter

    def resume(self, counter: int) -> None:
        """Continue from the counter a previous run last saw: cycles made while busd was
        down (the unit counts them) are counted on its first reading."""
        if self._last_counter is None:
            self._last_counter = counter
            self._have_counter = True

    def step(self, counter: int | None, lift_state: str | None) -> None:
        if counter is not None:
            if self._last_counter is not None:
                delta = counter - self._last_counter
                self.cycles += delta if delta >= 0 else counter
            self._last_counter = counter
            self._have_counter = True
            return
        if self._have_counter or lift_state is None:
            return
        if lift_state in ("deployed", "deploying", "stowing"):
            self._was_out = self._was_out or lift_state == "deployed"
        elif lift_state == "stowed":
            if self._was_out:
                self.cycles += 1
            self._was_out = False
