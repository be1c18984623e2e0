"""What both GPS sources produce, and how it lands in the vehicle state.

gpsd and the direct NMEA reader differ only in how they obtain a position;
from a :class:`GpsFix` onwards the path is shared: the signals written, the
check of GPS time against the system clock, and the counters.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from busd import signals as sig
from busd.clock import Clock
from busd.state import VehicleState

KNOT_KMH = 1.852
MPS_KMH = 3.6

_MODES = {0: "none", 1: "none", 2: "2d", 3: "3d"}


def fix_label(mode: int) -> str:
    """gpsd's TPV mode (0 unknown, 1 no fix, 2, 3) as the gps.fix signal's value."""
    return _MODES.get(mode, "none")


@dataclass(frozen=True, slots=True)
class GpsFix:
    """One position report. Fields the receiver did not give are None."""

    mode: int  # 0/1 no fix, 2 = 2D, 3 = 3D (gpsd's convention)
    time: float | None = None  # GPS time, UTC seconds since the epoch
    lat: float | None = None
    lon: float | None = None
    speed_kmh: float | None = None
    heading: float | None = None

    @property
    def has_position(self) -> bool:
        return self.mode >= 2 and self.lat is not None and self.lon is not None


@dataclass(frozen=True, slots=True)
class FixQuality:
    """Dilution and satellites, from gpsd's SKY or NMEA GGA."""

    hdop: float | None = None
    satellites: int | None = None


class TimeOffsetCheck:
    """Compares GPS time with the system clock (many boards have no RTC).

    Pure bookkeeping: ``observe`` returns the offset; ``alarm`` says whether it
    is currently beyond the threshold; ``alarms`` counts how often it went there.
    """

    def __init__(self, *, threshold_s: float) -> None:
        self.threshold_s = threshold_s
        self.offset_s: float | None = None
        self.alarm = False
        self.alarms = 0

    def observe(self, *, gps_time: float, system_time: float) -> bool:
        """Record one comparison; True when this observation *starts* an alarm."""
        self.offset_s = system_time - gps_time
        was = self.alarm
        self.alarm = abs(self.offset_s) > self.threshold_s
        if self.alarm and not was:
            self.alarms += 1
            return True
        return False


class GpsPublisher:
    """Writes fixes into the vehicle state and keeps the GPS counters.

    A report without a fix updates gps.fix to "none" and nothing else, so the
    last position goes stale instead of being repeated as current.
    """

    def __init__(
        self,
        *,
        state: VehicleState,
        clock: Clock,
        source: str,
        time_offset_alarm_s: float,
        counters: dict[str, int | float],
        log: structlog.typing.FilteringBoundLogger,
    ) -> None:
        self._state = state
        self._clock = clock
        self._source = source
        self._counters = counters
        self._log = log
        self.time_check = TimeOffsetCheck(threshold_s=time_offset_alarm_s)
        self.last_fix_mono: float | None = None  # last report of any kind with a mode
        self.last_position_mono: float | None = None
        self.last_mode = 0

    def _put(self, name: str, value: object, ts: float | None = None) -> None:
        try:
            self._state.update(name, value, source=self._source, ts=ts)
        except ValueError as err:
            # A receiver can send nonsense that parses (speed -1, heading 400).
            self._counters["rejected_values"] = self._counters.get("rejected_values", 0) + 1
            self._log.debug("gps_value_rejected", signal=name, error=str(err))

    def publish(self, fix: GpsFix) -> None:
        now_mono = self._clock.monotonic()
        self.last_fix_mono = now_mono
        self._counters["fixes"] = self._counters.get("fixes", 0) + 1
        if fix_label(fix.mode) != fix_label(self.last_mode):
            self._log.info(
                "gps_fix_changed", fix=fix_label(fix.mode), was=fix_label(self.last_mode)
            )
        self.last_mode = fix.mode
        self._put(sig.GPS_FIX, fix_label(fix.mode))
        if not fix.has_position:
            return
        self.last_position_mono = now_mono
        self._counters["positions"] = self._counters.get("positions", 0) + 1
        measured = self._measured_at(fix.time)
        self._put(sig.GPS_LAT, fix.lat, measured)
        self._put(sig.GPS_LON, fix.lon, measured)
        if fix.speed_kmh is not None:
            self._put(sig.GPS_SPEED, fix.speed_kmh, measured)
        if fix.heading is not None:
            self._put(sig.GPS_HEADING, fix.heading, measured)
        if fix.time is not None:
            self._put(sig.GPS_TIME, fix.time, measured)
            self._check_time(fix.time)

    def _measured_at(self, gps_time: float | None) -> float | None:
        """When the position was measured: the fix's own time, if the system clock agrees.

        A fix reaches busd late (gpsd reports one when the receiver's next cycle
        begins; a busy loop adds more), so its arrival is not when the bus was
        there. A GPS time beyond the offset alarm is the system clock's fault or
        the receiver's; then arrival time (None) is the better guess.
        """
        if gps_time is None or abs(self._clock.now() - gps_time) > self.time_check.threshold_s:
            return None
        return gps_time

    def publish_quality(self, quality: FixQuality) -> None:
        if quality.hdop is not None:
            self._put(sig.GPS_HDOP, quality.hdop)
        if quality.satellites is not None:
            self._put(sig.GPS_SATELLITES, quality.satellites)

    def publish_velocity(self, *, speed_kmh: float | None, heading: float | None) -> None:
        if speed_kmh is not None:
            self._put(sig.GPS_SPEED, speed_kmh)
        if heading is not None:
            self._put(sig.GPS_HEADING, heading)

    def _check_time(self, gps_time: float) -> None:
        started = self.time_check.observe(gps_time=gps_time, system_time=self._clock.now())
        offset = self.time_check.offset_s
        assert offset is not None
        self._counters["time_offset_s"] = round(offset, 3)
        self._counters["time_offset_alarms"] = self.time_check.alarms
        if started:
            self._log.warning(
                "gps_time_offset", offset_s=round(offset, 3),
                threshold_s=self.time_check.threshold_s,
                hint="system clock and GPS disagree; check NTP/RTC",
            )

    def health_problem(self, *, stale_after_s: float) -> str | None:
        """Why the GPS is not doing its job right now, or None."""
        now_mono = self._clock.monotonic()
        if self.last_fix_mono is None or now_mono - self.last_fix_mono > stale_after_s:
            return f"no position report for more than {stale_after_s:g} s"
        if self.last_mode < 2:
            return "receiver reports no fix"
        if self.time_check.alarm:
            # The offset itself is in the counters; a reason that changed every
            # second would log a new "degraded" line every second.
            return (f"system clock differs from GPS time by more than "
                    f"{self.time_check.threshold_s:g} s")
        return None
