"""Live vehicle state: the latest value of every signal, with its age.

Drivers write with :meth:`VehicleState.update`; consumers read views that say
whether a value is stale, and wait for changes through a :class:`Watcher`
(each consumer has its own "changed since I last looked" view, as OVMS
metrics do), so nothing polls.

A value that has not been refreshed within its signal's freshness limit reads
as stale. Staleness is computed on every read, so it is always right; the
:meth:`VehicleState.check_freshness` sweep only exists to *notify* watchers
when a signal goes stale, since a silent bus sends no update to react to.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import structlog

from busd import signals as sig
from busd.clock import Clock
from busd.signals import SIGNALS, SignalSpec

log = structlog.get_logger("busd.state")

Value = float | int | bool | str
_POWER_INPUTS = frozenset({sig.BATTERY_VOLTAGE, sig.BATTERY_CURRENT})  # battery.power derives

# battery.power pairs a voltage and a current measured at the same instant:
# from one frame when the source sends both together, otherwise from two
# readings whose times differ by at most this much (one frame period at the
# 10 Hz a BMS sends at). Never a new voltage times an old current: a junk
# voltage times the previous frame's current once made a 126 kW spike.
POWER_PAIR_TOLERANCE_S = 0.1
_PAIR = (sig.BATTERY_VOLTAGE, sig.BATTERY_CURRENT)


class Reading:
    """The latest value of one signal as a driver delivered it.

    Private to the state, and updated in place: an update per CAN value that
    allocated a new object was the biggest cost of the decode-and-update path.
    Consumers get a :class:`SignalView` copy.
    """

    __slots__ = ("received", "source", "ts", "value")

    def __init__(self, value: Value, ts: float, received: float, source: str) -> None:
        self.value = value
        self.ts = ts  # wall time of the measurement (clock.now() domain)
        self.received = received  # clock.monotonic() when busd took it in
        self.source = source


@dataclass(frozen=True, slots=True)
class SignalView:
    """What a consumer sees of one signal."""

    name: str
    value: Value | None  # None when never received
    unit: str
    ts: float | None
    age_s: float | None
    stale: bool
    source: str

    @property
    def fresh_value(self) -> Value | None:
        """The value, or None when it is stale or missing: never a stale number as current."""
        return None if self.stale else self.value


class VehicleState:
    def __init__(
        self,
        clock: Clock,
        *,
        specs: Mapping[str, SignalSpec] = SIGNALS,
        freshness_overrides: Mapping[str, float] | None = None,
    ) -> None:
        self._clock = clock
        self._specs = dict(specs)
        self._freshness = {name: s.freshness_s for name, s in self._specs.items()}
        for name, limit in (freshness_overrides or {}).items():
            if name not in self._specs:
                raise KeyError(f"unknown signal {name!r}")
            self._freshness[name] = limit
        self._readings: dict[str, Reading] = {}
        # For update_frame's fast paths (decoded CAN: floats, and numbers for booleans).
        self._floats = frozenset(n for n, s in self._specs.items() if s.kind is sig.Kind.FLOAT)
        self._bools = frozenset(n for n, s in self._specs.items() if s.kind is sig.Kind.BOOL)
        self._seq = 0
        self._changed_seq: dict[str, int] = {}
        self._stale: set[str] = set()
        self._wakeup: asyncio.Event | None = None
        self.updates = 0
        self._frame: set[str] | None = None  # names updated in the open frame()
        self._pairs_in_one_frame = False  # the source sends voltage and current together
        self.power_unpaired = 0  # a voltage or current with no partner of its instant

    @property
    def clock(self) -> Clock:
        return self._clock

    def spec(self, name: str) -> SignalSpec:
        return self._specs[name]

    def freshness(self, name: str) -> float:
        return self._freshness[name]

    # --- writing ---------------------------------------------------------------

    def update(
        self, name: str, value: object, *, source: str, ts: float | None = None,
        received: float | None = None,
    ) -> None:
        """Record a new value; raises KeyError for an unknown signal, ValueError for a bad value.

        ``ts`` is the measurement's wall time and ``received`` the clock's
        monotonic time it was taken in; both default to now.
        """
        if received is None:
            received = self._clock.monotonic()
        if ts is None:
            ts = self._clock.now()
        for error in self.update_frames((((name, value),),), source=source, ts=ts,
                                        received=received):
            raise error

    def update_frame(
        self, values: Iterable[tuple[str, object]], *, source: str, ts: float, received: float,
    ) -> list[ValueError]:
        """Record the values of one measurement (one CAN frame): see :meth:`update_frames`."""
        return self.update_frames((values,), source=source, ts=ts, received=received)

    def update_frames(
        self, frames: Iterable[Iterable[tuple[str, object]]], *, source: str, ts: float,
        received: float,
    ) -> list[ValueError]:
        """Record measurements taken in together (a CAN batch), each frame's values in order.

        A value that does not fit its signal is skipped and its ValueError
        returned; the others are recorded. An unknown signal raises KeyError.
        Derived values (battery.power) are computed once per frame, after
        every value of that frame is in. One call per batch, with its times
        given once: a call and two clock reads per value were most of the CAN
        path's update cost (benchmarks/can_ingest.py).
        """
        errors: list[ValueError] = []
        readings = self._readings
        floats = self._floats
        bools = self._bools
        stale = self._stale
        power_inputs = _POWER_INPUTS
        changed_names: list[str] = []
        recorded = 0
        try:
            for values in frames:
                voltage_in = current_in = False
                for name, value in values:
                    # A finite float for a float signal is already what coerce() would
                    # return (x - x is 0.0 unless x is inf or nan): no call per CAN value.
                    if type(value) is float and name in floats and value - value == 0.0:
                        coerced: Value = value
                    elif type(value) is float and name in bools:
                        coerced = value != 0.0  # as coerce() makes a number a boolean
                    else:
                        try:
                            coerced = self._specs[name].coerce(value)
                        except ValueError as err:
                            errors.append(err)
                            continue
                    reading = readings.get(name)
                    if reading is None:
                        readings[name] = Reading(coerced, ts, received, source)
                        changed = True
                    else:
                        changed = reading.value != coerced
                        reading.value = coerced
                        reading.ts = ts
                        reading.received = received
                        reading.source = source
                    recorded += 1
                    if name in stale:
                        stale.discard(name)
                        changed = True
                    if changed:
                        changed_names.append(name)
                    if name in power_inputs:
                        if name == sig.BATTERY_VOLTAGE:
                            voltage_in = True
                        else:
                            current_in = True
                if voltage_in or current_in:  # once the frame's values are all in
                    self._power_inputs_of_frame(source, voltage_in, current_in, received)
        finally:  # an unknown name (KeyError) still leaves what was recorded announced
            self.updates += recorded
            if changed_names:
                self._mark_changed(*changed_names)
        return errors

    def _power_inputs_of_frame(
        self, source: str, voltage_in: bool, current_in: bool, received: float,
    ) -> None:
        """A frame brought a voltage, a current or both: derive power, like with like."""
        if self._frame is not None:  # inside frame(): it derives once the frame ends
            if voltage_in:
                self._frame.add(sig.BATTERY_VOLTAGE)
            if current_in:
                self._frame.add(sig.BATTERY_CURRENT)
        elif voltage_in and current_in:
            self._pairs_in_one_frame = True
            self._derive_power(source, alone=False, received=received)
        else:
            self._derive_power(source, alone=True, received=received)

    @contextmanager
    def frame(self, *, source: str) -> Iterator[None]:
        """Updates made inside are one measurement (one CAN frame).

        Derived values are computed once, after every value of the frame is in,
        so a frame carrying both voltage and current never pairs its new
        voltage with the previous frame's current.
        """
        if self._frame is not None:  # nested: the outer frame derives
            yield
            return
        self._frame = set()
        try:
            yield
        finally:
            names, self._frame = self._frame, None
            if sig.BATTERY_VOLTAGE in names and sig.BATTERY_CURRENT in names:
                self._pairs_in_one_frame = True
                self._derive_power(source, alone=False, received=None)
            elif sig.BATTERY_VOLTAGE in names or sig.BATTERY_CURRENT in names:
                self._derive_power(source, alone=True, received=None)

    def _derive_power(self, source: str, *, alone: bool, received: float | None) -> None:
        voltage, current = (self._readings.get(name) for name in _PAIR)
        if voltage is None or current is None:
            return
        if alone and (
            self._pairs_in_one_frame or abs(voltage.ts - current.ts) > POWER_PAIR_TOLERANCE_S
        ):
            # Its partner is of another instant (or, from a source that sends
            # both in one frame, of another frame, such as a junk layout).
            self.power_unpaired += 1
            return
        if received is None:
            received = max(voltage.received, current.received)
        v = self._fresh(sig.BATTERY_VOLTAGE, received)
        i = self._fresh(sig.BATTERY_CURRENT, received)
        if isinstance(v, float) and isinstance(i, float):
            self.update(sig.BATTERY_POWER, v * i / 1000.0, source=source,
                        ts=max(voltage.ts, current.ts), received=received)

    def _fresh(self, name: str, now_mono: float) -> Value | None:
        """``view(name).fresh_value`` without building the view (per CAN frame)."""
        reading = self._readings.get(name)
        if reading is None or now_mono - reading.received > self._freshness[name]:
            return None
        return reading.value

    def _mark_changed(self, *names: str) -> None:
        for name in names:
            self._seq += 1
            self._changed_seq[name] = self._seq
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None

    def check_freshness(self) -> list[str]:
        """Notify watchers of signals that went stale since the last sweep; returns their names."""
        now_mono = self._clock.monotonic()
        newly_stale = [
            name
            for name, reading in self._readings.items()
            if name not in self._stale and now_mono - reading.received > self._freshness[name]
        ]
        for name in newly_stale:
            self._stale.add(name)
            self._mark_changed(name)
        if newly_stale:
            log.info("signals_stale", signals=sorted(newly_stale))
        return newly_stale

    # --- reading ---------------------------------------------------------------

    def view(self, name: str) -> SignalView:
        spec = self._specs[name]
        reading = self._readings.get(name)
        if reading is None:
            return SignalView(name, None, spec.unit, None, None, True, "")
        age = self._clock.monotonic() - reading.received
        return SignalView(
            name, reading.value, spec.unit, reading.ts, age,
            age > self._freshness[name], reading.source,
        )

    def value(self, name: str) -> Value | None:
        """The current value, or None if stale or never received.

        ``view(name).fresh_value`` without building the view: the tracker and
        the alert rules read a dozen values per sample, several times a second.
        """
        reading = self._readings.get(name)
        if reading is None:
            if name not in self._specs:  # an unknown signal is a KeyError, as in view()
                raise KeyError(name)
            return None
        if self._clock.monotonic() - reading.received > self._freshness[name]:
            return None
        return reading.value

    def snapshot(self, names: Iterable[str] | None = None) -> dict[str, SignalView]:
        return {name: self.view(name) for name in (self._specs if names is None else names)}

    def watch(self, names: Iterable[str] | None = None) -> Watcher:
        return Watcher(self, None if names is None else frozenset(names))

    async def wait_for(
        self, predicate: Callable[[VehicleState], bool], *, timeout: float | None = None
    ) -> None:
        """Wait until ``predicate(state)`` holds; TimeoutError after ``timeout`` seconds."""
        watcher = self.watch()
        async with asyncio.timeout(timeout):
            while not predicate(self):
                await watcher.changed()

    # --- for Watcher -----------------------------------------------------------

    def _changes_since(self, seen: int, names: frozenset[str] | None) -> set[str]:
        return {
            name
            for name, seq in self._changed_seq.items()
            if seq > seen and (names is None or name in names)
        }

    def _event(self) -> asyncio.Event:
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
        return self._wakeup


class Watcher:
    """One consumer's view of what changed since it last looked."""

    def __init__(self, state: VehicleState, names: frozenset[str] | None) -> None:
        self._state = state
        self._names = names
        self._seen = state._seq

    def pending(self) -> set[str]:
        """Names changed (value, or fresh/stale) since the last call; does not wait."""
        changed = self._state._changes_since(self._seen, self._names)
        self._seen = self._state._seq
        return changed

    async def changed(self) -> set[str]:
        """Wait until at least one watched signal changed, and return which."""
        while True:
            changed = self.pending()
            if changed:
                return changed
            await self._state._event().wait()
