"""A charging session's energy as the charger reports it, with its counter's faults removed.

Chargers report a session energy counter (kWh since the plug went in). Real ones
misbehave, and users of peer systems complain about it most: the counter resets
mid-session (a charger reboot, or the replug that :data:`REPLUG_MERGE_S` makes one
session), or jumps to the charger's lifetime total for a frame or for good. An
increment is believed only when it is no larger than the charger's top power
allows over the time since the last believed value; anything else (a fall, or a
rise beyond physics) is rejected, counted, and the counter is re-based on the
new value once a second value confirms it, so the session energy never takes
the jump in. Pure: values and times in, kWh out.
"""

from __future__ import annotations

from dataclasses import dataclass

# Unplugged and plugged in again within this long (s): the same session.
REPLUG_MERGE_S = 300.0
# No charger a minibus meets delivers more (kW): a faster rise is a counter fault.
CHARGER_MAX_KW = 400.0
# The counter's own resolution (kWh): rises this small are always believable.
_RESOLUTION_KWH = 0.05


@dataclass(slots=True)
class SessionCounter:
    """The charger-side energy of one session from its reported counter."""

    max_kw: float = CHARGER_MAX_KW
    kwh: float = 0.0  # believed energy so far
    rejected: int = 0  # impossible jumps seen (resets, lifetime totals)
    _last: float | None = None  # last believed counter value
    _last_t: float = 0.0
    _pending: float | None = None  # a rejected value, kept to see if the counter stays there
    _pending_t: float = 0.0

    def step(self, t: float, counter_kwh: float | None) -> None:
        """Take the counter's value at monotonic ``t`` (None: not reported)."""
        if counter_kwh is None:
            return
        if self._last is None:
            # The first value of a session: what the counter shows when charging
            # starts is what it counted before (zero, or a previous session).
            self._last, self._last_t = counter_kwh, t
            return
        if self._plausible(counter_kwh - self._last, t - self._last_t):
            self.kwh += counter_kwh - self._last
            self._last, self._last_t, self._pending = counter_kwh, t, None
            return
        if self._pending is not None and self._plausible(
            counter_kwh - self._pending, t - self._pending_t
        ):
            # The counter stays where it jumped: re-base on it, the jump itself not counted.
            self.kwh += counter_kwh - self._pending
            self._last, self._last_t, self._pending = counter_kwh, t, None
            return
        self.rejected += 1
        self._pending, self._pending_t = counter_kwh, t

    def replugged(self) -> None:
        """A new plug-in joined to this session: its counter may start from zero again."""
        self._last = None
        self._pending = None

    def _plausible(self, rise: float, dt: float) -> bool:
        return 0.0 <= rise <= self.max_kw * max(dt, 0.0) / 3600.0 + _RESOLUTION_KWH
