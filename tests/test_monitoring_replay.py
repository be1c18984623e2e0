"""Real EV trips (MOTIVES-LAB, 20 Hz) replayed through the production path.

Each row becomes the bus's own CAN frames (BMS_Pack voltage/current, CCVS1
speed, VDHR odometer integrated from the speed, AMB temperature), sent on a
virtual CAN bus to the real CanReader → vehicle state → Tracker, in lock-step
with a ManualClock so every value arrives at its recorded time. The leg the
tracker records must agree with the trip's own figures — km from the speed
integrated over the same window (and from the GPS track), kWh from the
battery's own discharge/charge counters — within 2 %.

The dataset counts discharge current as *negative*: over each trip the
discharge counter ``tot_disc`` rises by what ∫V·I gives for I < 0 (checked
below), so the encoder negates it, as busd's convention is positive = discharge.

GPS: each second's position is written as NMEA (RMC, GGA, VTG) to a pty and
read by the production NMEA serial driver, as a receiver's would be.
"""

from __future__ import annotations

import asyncio
import csv
import itertools
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import can
import pytest

from busd import signals as sig
from busd.clock import ManualClock
from busd.config import MonitoringConfig
from busd.monitoring.tracker import Tracker
from busd.plan import Plan, haversine_m, parse_plan
from busd.state import VehicleState
from drivers.gps.nmea_serial import NmeaSerialSource
from simulators.gps.nmea_out import ReceiverOutput, epoch_sentences
from simulators.pty import PtyLink
from telemetry.monitoring_store import MonitoringStore
from tests.can_helpers import frame, own_db
from tests.lockstep import Lockstep
from tests.monitoring_helpers import CaptureSink, epoch
from tests.support.wait import wait_until

DRIVES = Path(__file__).parent / "fixtures" / "drives"
T0 = 1_767_250_800.0  # 2026-01-01 09:00 Riga: the replay's wall-clock start


@dataclass
class Row:
    t: float
    speed: float
    current: float  # dataset sign: negative = discharge
    voltage: float
    temp: float
    lat: float
    lon: float
    disc: float
    char: float


def load(name: str) -> list[Row]:
    with (DRIVES / name).open(newline="") as f:
        return [Row(float(r["PhaseTime"]), float(r["DAActualSpeed"]), float(r["REESSCurrent"]),
                    float(r["REESSVoltage"]), float(r["tempAmb"]), float(r["lat"]),
                    float(r["long"]), float(r["tot_disc"]), float(r["tot_char"]))
                for r in csv.DictReader(f)]


def test_the_datasets_current_sign_from_its_own_counters() -> None:
    for name in ("motives_007.csv", "motives_023.csv"):
        rows = load(name)
        negative = positive = 0.0
        for a, b in itertools.pairwise(rows):
            kwh = a.current * a.voltage * (b.t - a.t) / 3.6e6
            negative += max(-kwh, 0.0)
            positive += max(kwh, 0.0)
        assert negative == pytest.approx(rows[-1].disc - rows[0].disc, rel=0.02)
        assert positive == pytest.approx(rows[-1].char - rows[0].char, rel=0.02)


def window(rows: list[Row], start: float, end: float) -> tuple[float, float, float]:
    """The trip's own km (speed integrated), discharged and charged kWh over [start, end]."""
    km = 0.0
    for a, b in itertools.pairwise(rows):
        lo, hi = max(a.t, start), min(b.t, end)
        if hi > lo:
            km += (a.speed + b.speed) / 2 * (hi - lo) / 3600
    first = min(rows, key=lambda r: abs(r.t - start))
    last = min(rows, key=lambda r: abs(r.t - end))
    return km, last.disc - first.disc, last.char - first.char


def trip_plan(rows: list[Row], *, depot_m: float = 100) -> Plan:
    """A depot where the trip starts (geofence ``depot_m``), a stop where it ends."""
    return parse_plan({
        "date": date(2026, 1, 1).isoformat(), "version": 1,
        "depot": {"id": "start", "name": "Start", "lat": rows[0].lat, "lon": rows[0].lon,
                  "geofence_m": depot_m},
        "stops": [{"id": "end", "name": "End", "lat": rows[-1].lat, "lon": rows[-1].lon,
                   "geofence_m": 100, "planned_min": 10, "min_min": 5}],
    })


async def replay(
    rows: list[Row], plan: Plan, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> tuple[CaptureSink, VehicleState, str]:
    """The trip through CAN and NMEA into the tracker; then it stands 200 s at its end."""
    clock = ManualClock(start=T0)
    state = VehicleState(clock)
    store = MonitoringStore(tmp_path / "monitoring.sqlite")
    sink = CaptureSink()
    tracker = Tracker(state=state, clock=clock, plan=plan, store=store, sink=sink,
                      config=MonitoringConfig(min_visit_min=3.0))
    db = own_db()
    odo = 20_000.0

    def frames(r: Row, i: int) -> list[can.Message]:
        out = [frame(db, "BMS_Pack", PackVoltage=r.voltage, PackCurrent=-r.current,
                     ContactorClosed=1),
               frame(db, "CCVS1", WheelBasedVehicleSpeed=r.speed, ParkingBrakeSwitch=0)]
        if i % 2 == 0:  # VDHR at 10 Hz
            out.append(frame(db, "VDHR", HiResTotalVehicleDistance=odo))
        if i % 20 == 0:
            out.append(frame(db, "AMB", AmbientAirTemperature=r.temp))
        return out

    link = PtyLink(link=tmp_path / "gps.pty")
    receiver = NmeaSerialSource(state=state, clock=clock, device=str(tmp_path / "gps.pty"),
                                stale_after_s=5.0, time_offset_alarm_s=1e9)

    async def gps(r: Row) -> None:
        """One receiver epoch as NMEA through the pty; wait until the driver took it."""
        epoch = ReceiverOutput(utc=clock.now(), fix=True, lat=r.lat, lon=r.lon,
                               speed_kmh=r.speed)
        before = state.view(sig.GPS_LAT).ts
        link.write(b"".join(epoch_sentences(epoch, with_satellites=False)))
        await wait_until(lambda: state.view(sig.GPS_LAT).ts != before, timeout=5,
                         what="the driver took the epoch", interval=0.0005)

    async with link, Lockstep(monkeypatch, clock=clock, state=state,
                              extra=[tracker, receiver]) as ls:
        async with asyncio.timeout(10):  # the driver has opened the pty
            while ls.supervisor.health[receiver.name].counters.get("bytes") is None:
                link.write(b"$GPTXT,01,01,02,hello*00\r\n")  # garbage: counted, harmless
                await asyncio.sleep(0.01)
        previous: Row | None = None
        for i, r in enumerate(rows):
            if previous is not None:
                odo += (previous.speed + r.speed) / 2 * (r.t - previous.t) / 3600
            await ls.advance_to(r.t)
            if i % 20 == 0:
                await gps(r)
            ls.send(frames(r, i))
            await ls.settle()
            previous = r
        # The car stands at its destination until the tracker counts it as a visit.
        end = rows[-1]
        for k in range(1, 200):
            await ls.advance_to(end.t + k)
            await gps(end)
            ls.send(frames(end, 0))
            await ls.settle()
    store.close()
    return sink, state, receiver.name


@pytest.mark.parametrize("name", ["motives_007.csv", "motives_023.csv"])
async def test_real_trip_replayed_through_can_gives_the_trips_km_and_kwh(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rows = load(name)
    sink, state, receiver_name = await replay(rows, trip_plan(rows), monkeypatch, tmp_path)
    assert state.view(sig.GPS_LAT).source == receiver_name  # positions came through NMEA

    legs = sink.of("leg_completed")
    assert len(legs) == 1, sink.kinds()
    leg = legs[0]
    assert (leg["from_place"], leg["to_place"]) == ("start", "end")
    start, stop = epoch(leg["start"]) - T0, epoch(leg["end"]) - T0
    km, disc, char = window(rows, start, stop)
    whole_km, whole_disc, whole_char = window(rows, 0, rows[-1].t)
    detail = (f"{name}: leg {start:.1f}-{stop:.1f} s: {leg['km']:.3f} km (gps {leg['gps_km']:.3f}),"
              f" out {leg['out_kwh']:.3f} regen {leg['regen_kwh']:.3f} kWh; trip window "
              f"{km:.3f} km, disc {disc:.3f} char {char:.3f}; whole trip {whole_km:.3f} km, "
              f"disc {whole_disc:.3f}, char {whole_char:.3f}")
    print(detail)
    assert leg["km"] == pytest.approx(km, rel=0.02), detail
    assert leg["gps_km"] == pytest.approx(km, rel=0.05), detail
    assert leg["out_kwh"] == pytest.approx(disc, rel=0.02), detail
    assert leg["regen_kwh"] == pytest.approx(char, rel=0.02), detail
    assert leg["gap_s"] == 0, detail
    # The leg is nearly the whole trip: the car left the start and arrived at the end.
    assert km == pytest.approx(whole_km, rel=0.02)
    assert haversine_m(rows[0].lat, rows[0].lon, rows[-1].lat, rows[-1].lon) > 5000
    visits = sink.of("visit_started")
    assert [v["place_id"] for v in visits] == ["start", "end"]  # no false visits at the lights


def departure_and_arrival(rows: list[Row], stopped_kmh: float = 3.0) -> tuple[float, float]:
    """From the data alone: the last still moment before the car first drives off, and the
    first still moment after it last drove (the replay stands still at its end)."""
    first = next(i for i, r in enumerate(rows) if r.speed > stopped_kmh)
    last = max(i for i, r in enumerate(rows) if r.speed > stopped_kmh)
    return rows[first - 1].t, rows[last + 1].t if last + 1 < len(rows) else rows[last].t + 1.0


async def test_a_traffic_halt_just_outside_the_depot_geofence_belongs_to_the_leg(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # motives_007 stands 50 s in traffic 210 m from where it started (53-103 s). With
    # the depot's geofence at 191 m the halt is at 1.1x the radius, short of the exit
    # margin (30 m): it belongs to the leg, and the depot visit ends when the car
    # first drove off. It used to end after that halt, and the leg lost its
    # first 210 m and their energy.
    rows = load("motives_007.csv")
    halt = [r for r in rows if 53 <= r.t <= 103]
    assert max(r.speed for r in halt) <= 3.0
    start_m = haversine_m(rows[0].lat, rows[0].lon, halt[0].lat, halt[0].lon)
    radius = round(start_m / 1.1)
    assert radius < start_m < radius + 30  # outside the geofence, inside its margin
    sink, _, _ = await replay(rows, trip_plan(rows, depot_m=radius), monkeypatch, tmp_path)

    departure, arrival = departure_and_arrival(rows)
    km, disc, char = window(rows, departure, arrival)
    (depot,) = [v for v in sink.of("visit_ended") if v["place_id"] == "start"]
    (leg,) = sink.of("leg_completed")
    depot_end = epoch(depot["end"]) - T0
    detail = (f"depot visit ends {depot_end:.1f} s (truth {departure:.1f}); leg "
              f"{leg['km']:.3f} km, out {leg['out_kwh']:.3f} kWh, regen {leg['regen_kwh']:.3f}; "
              f"truth {km:.3f} km, disc {disc:.3f}, char {char:.3f}")
    print(detail)
    assert depot_end == pytest.approx(departure, abs=60.0), detail
    assert leg["start"] == depot["end"]
    assert leg["km"] == pytest.approx(km, rel=0.01), detail
    assert leg["out_kwh"] == pytest.approx(disc, rel=0.02), detail
    assert leg["regen_kwh"] == pytest.approx(char, rel=0.02), detail
    assert [v["place_id"] for v in sink.of("visit_started")] == ["start", "end"]
