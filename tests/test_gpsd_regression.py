"""gpsd's own regression logs, through a pty, a real gpsd and our driver.

Each ``X.log`` is what a real receiver sent; ``X.log.chk`` holds the TPV
reports gpsd produced for it. We replay the log into a pty read by a real
gpsd, let :class:`GpsdSource` consume gpsd's JSON, and compare what the
driver reports (its fixes and the vehicle state) with the .chk TPV lines.

Documented tolerances (the .chk files come from gpsfake, we run a live gpsd):
* Repeats: gpsd emits a TPV per sentence or per cycle depending on how the
  bytes arrive, so consecutive identical reports are collapsed on both sides.
* Dates: a live gpsd resolves the GPS week rollover against its own start
  time, so a 2009 log comes out 1024 weeks (7168 days) later. Times must
  match to the millisecond in time of day, and the date modulo 1024 weeks
  within one day: at bt451's backwards time jump gpsd 3.22 dates one fix a
  day later than the gpsd that made the .chk.
* No-fix blips: gpsfake hands gpsd one sentence at a time, so a receiver
  that says "fix" in GGA and "no fix" in RMC of the same epoch yields a
  fix and then a no-fix report of that same epoch in the .chk; a live gpsd
  folds both into the epoch's one report. A no-fix report in the same epoch
  as the fix just before it (same time, or neither has one) may therefore
  be missing; every fix, and every no-fix epoch of its own, must be there.
* Speed: within 0.05 m/s (the same fix reads 0.00 and 0.02 m/s in the two
  gpsd versions).
Positions must agree to 1e-6 degrees (0.1 m) and fix modes exactly.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from busd import signals as sig
from busd.clock import SystemClock
from busd.state import VehicleState
from drivers.gps import GpsdSource, GpsFix
from simulators.pty import PtyLink
from tests.support.components import running
from tests.support.gpsd import Gpsd, gpsd_on  # noqa: F401 - fixture
from tests.support.pty import pty_link  # noqa: F401 - fixture
from tests.support.wait import wait_until

LOGS = Path(__file__).parent / "fixtures" / "gpsd"
ROLLOVER_S = 1024 * 7 * 86400
DAY_S = 86400


@dataclass(frozen=True)
class Report:
    mode: int
    time: float | None
    lat: float | None
    lon: float | None
    speed_mps: float | None

    def same_as(self, other: Report) -> bool:
        if self.mode != other.mode:
            return False
        if (self.time is None) != (other.time is None):
            return False
        if self.time is not None and other.time is not None:
            if round(self.time % DAY_S, 3) != round(other.time % DAY_S, 3):
                return False
            days = round((self.time - other.time) / DAY_S) % (ROLLOVER_S // DAY_S)
            if days not in (0, 1, ROLLOVER_S // DAY_S - 1):
                return False
        for a, b in ((self.lat, other.lat), (self.lon, other.lon)):
            if (a is None) != (b is None) or (a is not None and b is not None
                                              and abs(a - b) > 1e-6):
                return False
        if self.speed_mps is not None and other.speed_mps is not None:
            return abs(self.speed_mps - other.speed_mps) <= 0.05
        return True


def collapse(reports: list[Report]) -> list[Report]:
    out: list[Report] = []
    for report in reports:
        if not out or not out[-1].same_as(report):
            out.append(report)
    return out


def expected(log: str) -> list[Report]:
    reports = []
    for line in (LOGS / f"{log}.chk").read_text().splitlines():
        if not line.startswith('{"class":"TPV"'):
            continue
        tpv = json.loads(line)
        when = tpv.get("time")
        mode = tpv.get("mode", 0)
        reports.append(Report(
            mode=1 if mode == 0 else mode,  # 0 (unknown) and 1 both mean no fix
            time=datetime.fromisoformat(when).timestamp() if when else None,
            lat=tpv.get("lat") if mode >= 2 else None,
            lon=tpv.get("lon") if mode >= 2 else None,
            speed_mps=tpv.get("speed") if mode >= 2 else None,
        ))
    return collapse(reports)


def observed(fixes: list[GpsFix]) -> list[Report]:
    return collapse([
        Report(
            mode=max(1, f.mode), time=f.time,
            lat=f.lat if f.mode >= 2 else None, lon=f.lon if f.mode >= 2 else None,
            speed_mps=f.speed_kmh / 3.6 if f.speed_kmh is not None and f.mode >= 2 else None,
        )
        for f in fixes
    ])


def without_blips(want: list[Report], got: list[Report]) -> list[Report]:
    """``want`` minus no-fix reports folded into the preceding fix's epoch that ``got`` lacks."""
    out: list[Report] = []
    j = 0
    for i, w in enumerate(want):
        lone_blip = (
            w.mode < 2 and i > 0 and want[i - 1].mode >= 2 and want[i - 1].time == w.time
        )
        if lone_blip and not (j < len(got) and got[j].same_as(w)):
            continue
        out.append(w)
        j += 1
    return collapse(out)


def matches(got: list[Report], want: list[Report]) -> bool:
    want = without_blips(want, got)
    return len(got) == len(want) and all(g.same_as(w) for g, w in zip(got, want, strict=True))


def receiver_lines(log: str) -> list[bytes]:
    raw = (LOGS / log).read_bytes()
    # Comment lines are the test suite's annotations, never sent by a receiver.
    return [line for line in raw.splitlines(keepends=True) if not line.startswith(b"#")]


@pytest.mark.slow
@pytest.mark.parametrize(
    "log",
    ["bt451.log", "mtk-3301.log", "magellan-ec10.log", "gp-320fw-2019-04-07-coldboot.log"],
)
async def test_driver_reports_what_gpsd_expects(
    log: str, pty_link: PtyLink, gpsd_on: Callable[[str], Gpsd],  # noqa: F811
) -> None:
    clock = SystemClock()
    state = VehicleState(clock)
    gpsd = gpsd_on(pty_link.path)
    await gpsd.start()
    await gpsd.sync(pty_link)
    fixes: list[GpsFix] = []
    source = GpsdSource(
        state=state, clock=clock, port=gpsd.port, stale_after_s=2.0,
        time_offset_alarm_s=5.0, on_fix=fixes.append,
    )
    want = expected(log)
    async with running(source, clock) as run:
        # VERSION, DEVICES and WATCH acknowledged: gpsd now streams to us.
        await wait_until(lambda: run.ctx.counters.get("ignored", 0) >= 3, timeout=5,
                         what="gpsd's WATCH reply")
        for line in receiver_lines(log):
            pty_link.write(line)
            await asyncio.sleep(0.01)  # a serial line's pace, not a single burst
        try:
            await wait_until(lambda: matches(observed(fixes), want), timeout=10,
                             what="the driver's reports to match the .chk")
        except AssertionError:
            got = observed(fixes)
            want = without_blips(want, got)
            diff = "\n".join(f"want {w}\n got {g}" for w, g in
                             itertools.zip_longest(want, got))
            raise AssertionError(
                f"{log}: {len(got)} reports, expected {len(want)}\n{diff}"
            ) from None
        assert run.ctx.counters.get("malformed", 0) == 0
        last_fix = [w for w in want if w.mode >= 2][-1]
        if want[-1].mode >= 2:
            # The state holds the last position, as current.
            assert state.value(sig.GPS_LAT) == pytest.approx(last_fix.lat, abs=1e-6)
            assert state.value(sig.GPS_LON) == pytest.approx(last_fix.lon, abs=1e-6)
        else:
            assert state.value(sig.GPS_FIX) == "none"
        # Old logs: GPS time is years away from the system clock, and it shows.
        assert run.ctx.counters["time_offset_alarms"] >= 1
        assert "system clock differs" in run.health.reason or want[-1].mode < 2
