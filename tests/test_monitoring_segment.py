"""Day segmentation on scripted samples: visits, traffic and unplanned stops, charging, resume."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from busd.monitoring.segment import Change, DayTracker, Row, Sample, Settings, places_of
from busd.plan import haversine_m
from tests.monitoring_helpers import DEPOT, PREILI, ROZUPE, TURKI, Place, make_plan

T0 = 1_767_250_800.0  # 2026-01-01 09:00 Riga


class Script:
    """1 Hz samples of a bus that parks and drives in straight lines."""

    def __init__(self, place: Place = DEPOT, soc: float = 90.0) -> None:
        self.t = 0.0
        self.odo = 1000.0
        self.lat, self.lon = place[2], place[3]
        self.soc = soc
        self.lift = 0
        self.samples: list[Sample] = []

    def _emit(self, **kw: Any) -> None:
        base: dict[str, Any] = dict(
            mono=self.t, ts=T0 + self.t, speed_kmh=0.0, odometer_km=self.odo,
            lat=self.lat, lon=self.lon, power_kw=5.0, soc=self.soc, outside_temp_c=-5.0,
            plugged=False, charger_state="idle", lift_counter=self.lift)
        base.update(kw)
        self.samples.append(Sample(**base))
        self.t += 1.0

    def park(self, seconds: float, *, power_kw: float = 5.0, lifts: int = 0,
             charge_kw: float = 0.0, gps: bool = True) -> Script:
        n = int(seconds)
        for i in range(n):
            if lifts and i == n // 2:
                self.lift += lifts
            kw: dict[str, Any] = dict(power_kw=power_kw)
            if charge_kw:
                kw.update(power_kw=-charge_kw, plugged=True, charger_state="charging",
                          charger_power_kw=charge_kw)
                self.soc += charge_kw / 3600 / 1.1
            else:
                self.soc -= power_kw / 3600 / 1.1
            if not gps:
                kw.update(lat=None, lon=None)
            self._emit(**kw)
        return self

    def drive(self, to: Place, *, kmh: float = 54.0, power_kw: float = 30.0,
              gps: bool = True) -> Script:
        lat0, lon0 = self.lat, self.lon
        d = haversine_m(lat0, lon0, to[2], to[3])
        v = kmh / 3.6
        n = max(1, int(d / v))
        for i in range(1, n + 1):
            f = i / n
            self.lat, self.lon = lat0 + f * (to[2] - lat0), lon0 + f * (to[3] - lon0)
            self.odo += d / n / 1000.0
            self.soc -= power_kw / 3600 / 1.1
            kw: dict[str, Any] = dict(speed_kmh=kmh, power_kw=power_kw)
            if not gps:
                kw.update(lat=None, lon=None)
            self._emit(**kw)
        return self


def tracker(settings: Settings | None = None) -> DayTracker:
    return DayTracker(places=places_of(make_plan()), settings=settings or Settings(),
                      zone=ZoneInfo("Europe/Riga"))


def run(script: Script, day: DayTracker | None = None) -> tuple[DayTracker, list[Change]]:
    day = day or tracker()
    changes: list[Change] = []
    for s in script.samples:
        changes += day.step(s)
    return day, changes


def closed(changes: list[Change], kind: str) -> list[Row]:
    return [c.row for c in changes if c.kind == kind and c.row["status"] != "open"]


def test_a_day_is_legs_between_visits_and_time_partitions() -> None:
    script = (Script().park(600).drive(ROZUPE).park(1800, lifts=2).drive(TURKI)
              .park(1200, lifts=1).drive(DEPOT).park(600))
    day, changes = run(script)
    visits = closed(changes, "visit")
    legs = closed(changes, "leg")
    assert [v["place_id"] for v in visits] == ["livani", "rozupe", "turki"]
    assert day.visit is not None and day.visit.place is not None
    assert day.visit.place.id == "livani"  # parked at the end
    assert [(leg["from_place"], leg["to_place"]) for leg in legs] == [
        ("livani", "rozupe"), ("rozupe", "turki"), ("turki", "livani")]
    assert visits[1]["duration_min"] == pytest.approx(30.0, abs=2 / 60)
    assert visits[1]["lift_cycles"] == 2 and visits[2]["lift_cycles"] == 1
    assert visits[1]["out_kwh"] == pytest.approx(5.0 * 0.5, rel=0.01)
    route_km = sum(haversine_m(a[2], a[3], b[2], b[3]) for a, b in
                   ((DEPOT, ROZUPE), (ROZUPE, TURKI), (TURKI, DEPOT))) / 1000
    assert sum(leg["km"] for leg in legs) == pytest.approx(route_km, rel=1e-3)
    assert sum(leg["gps_km"] for leg in legs) == pytest.approx(route_km, rel=0.01)
    # Legs and visits tile the time: each leg starts where a visit ended, ends where one began.
    for leg, before, after in zip(legs, visits, [*visits[1:], day.checkpoint()[-1].row],
                                  strict=False):
        assert leg["start_ts"] == before["end_ts"]
        assert leg["end_ts"] == after["start_ts"]
        assert leg["kwh_per_km"] == pytest.approx(30.0 / 54.0, rel=0.01)
        assert leg["soc_used"] > 0
        assert leg["temp_c"] == pytest.approx(-5.0)
    events = [c.event for c in changes if c.event]
    assert events.count("visit_started") == 4 and events.count("visit_ended") == 3
    assert events.count("leg_completed") == 3


def test_traffic_stops_shorter_than_the_minimum_are_not_visits() -> None:
    midway = ("x", "x", (DEPOT[2] + ROZUPE[2]) / 2, (DEPOT[3] + ROZUPE[3]) / 2)
    script = (Script().park(300).drive(midway).park(170).drive(ROZUPE).park(60)
              .drive(TURKI).park(900))
    _, changes = run(script)
    visits = [c.row for c in changes if c.kind == "visit" and c.event == "visit_started"]
    assert [v["place_id"] for v in visits] == ["livani", "turki"]  # 60 s in Rožupe: passing


def test_an_unplanned_stop_longer_than_the_minimum_is_a_visit() -> None:
    midway = ("x", "x", (DEPOT[2] + ROZUPE[2]) / 2, (DEPOT[3] + ROZUPE[3]) / 2)
    script = Script().park(300).drive(midway).park(600).drive(ROZUPE).park(600)
    _, changes = run(script)
    visits = closed(changes, "visit")
    assert [v["place_kind"] for v in visits] == ["depot", "unplanned"]
    assert visits[1]["duration_min"] == pytest.approx(10.0, abs=2 / 60)
    assert visits[1]["lat"] == pytest.approx(midway[2], abs=1e-4)
    legs = closed(changes, "leg")
    assert [(leg["from_place"], leg["to_place"]) for leg in legs] == [
        ("livani", "unplanned"), ("unplanned", "rozupe")]


def test_without_gps_a_visit_ends_by_odometer_and_stops_are_unplanned() -> None:
    script = Script().park(300).drive(ROZUPE, gps=False).park(600, gps=False).drive(
        TURKI, gps=False)
    _, changes = run(script)
    visits = closed(changes, "visit")
    assert [v["place_kind"] for v in visits] == ["depot", "unplanned"]
    assert visits[1]["lat"] is None
    assert visits[1]["duration_min"] == pytest.approx(10.0, abs=2 / 60)


def test_charging_session_figures() -> None:
    # Parked long enough after unplugging that no replug can join the session.
    script = Script(place=PREILI, soc=40.0).park(120).park(2400, charge_kw=45.0).park(400)
    _, changes = run(script)
    (session,) = closed(changes, "charge")
    assert session["place_id"] == "preili"
    assert session["duration_min"] == pytest.approx(40.0, abs=2 / 60)
    assert session["energy_added_kwh"] == pytest.approx(45.0 * 40 / 60, rel=0.01)
    assert session["peak_kw"] == pytest.approx(45.0)
    assert session["soc_end"] > session["soc_start"]
    events = [c.event for c in changes if c.event and c.kind == "charge"]
    assert events == ["charging_started", "charging_ended"]


def test_restart_inside_the_stop_continues_the_same_visit() -> None:
    first = Script().park(300).drive(ROZUPE).park(900)
    day, _ = run(first)
    open_rows = {c.kind: c.row for c in day.checkpoint()}
    visit_id = open_rows["visit"]["id"]
    # busd is down for 5 minutes, then starts again with fresh counters.
    second = Script(place=ROZUPE)
    second.t, second.odo, second.soc = first.t + 300, first.odo, first.soc
    second.park(600).drive(TURKI)
    day2 = tracker()
    day2.resume(open_rows)
    _, changes2 = run(second, day2)
    visits = closed(changes2, "visit")
    assert [v["id"] for v in visits] == [visit_id]
    assert visits[0]["status"] == "closed"
    assert visits[0]["duration_min"] == pytest.approx((900 + 300 + 600) / 60, abs=2 / 60)
    assert visits[0]["gap_s"] == pytest.approx(300, abs=2)
    assert visits[0]["out_kwh"] == pytest.approx(5.0 * 1500 / 3600, rel=0.01)  # no downtime energy


def test_lift_cycles_made_while_busd_was_down_are_counted_after_the_restart() -> None:
    first = Script().park(300).drive(ROZUPE).park(900, lifts=2)
    day, _ = run(first)
    open_rows = {c.kind: c.row for c in day.checkpoint()}
    assert open_rows["visit"]["lift_cycles"] == 2
    # busd is down for 5 minutes; the lift goes up and down once meanwhile (its unit
    # counts it), and busd's first sample after the restart already sees the new count.
    second = Script(place=ROZUPE)
    second.t, second.odo, second.soc = first.t + 300, first.odo, first.soc
    second.lift = first.lift + 1
    second.park(600).drive(TURKI)
    day2 = tracker()
    day2.resume(open_rows)
    _, changes = run(second, day2)
    (visit,) = closed(changes, "visit")
    assert visit["id"] == open_rows["visit"]["id"]
    assert visit["lift_cycles"] == 3


def test_restart_after_the_bus_left_closes_the_visit_at_its_checkpoint() -> None:
    first = Script().park(300).drive(ROZUPE).park(900)
    day, _ = run(first)
    open_rows = {c.kind: c.row for c in day.checkpoint()}
    second = Script(place=TURKI)  # busd came back on the road near Turki
    second.t, second.odo = first.t + 1200, first.odo + 12.0
    second.drive(TURKI).park(600)
    day2 = tracker()
    day2.resume(open_rows)
    _, changes = run(second, day2)
    visits = closed(changes, "visit")
    assert visits[0]["id"] == open_rows["visit"]["id"]
    assert visits[0]["status"] == "interrupted"
    assert visits[0]["end_ts"] == pytest.approx(open_rows["visit"]["updated_ts"])
    legs = closed(changes, "leg")
    assert legs[0]["from_place"] == "rozupe" and legs[0]["to_place"] == "turki"
    assert legs[0]["km"] == pytest.approx(12.0, abs=0.01)  # the odometer saw the whole leg
    assert legs[0]["gap_s"] >= 1200


def test_a_stale_speed_does_not_make_or_break_a_visit() -> None:
    script = Script().park(300).drive(ROZUPE).park(900)
    samples = [replace(s, speed_kmh=None) if 1500 < s.mono < 1700 else s
               for s in script.samples]
    script.samples = samples
    _, changes = run(script)
    started = [c.row["place_id"] for c in changes if c.event == "visit_started"]
    assert started == ["livani", "rozupe"]


@pytest.mark.parametrize(("factor", "on_site"), [(0.9, True), (1.1, False), (1.5, False)])
def test_a_halt_near_the_geofence_is_on_site_only_inside_it(factor: float, on_site: bool) -> None:
    # The bus leaves the depot (geofence 150 m, exit margin 30 m) and stands in
    # traffic for 170 s at factor x the radius, then drives on to Rožupe. Inside
    # (0.9x) the halt extends the visit; outside (1.1x, short of the margin, and
    # 1.5x, past it) it belongs to the leg, with its distance and energy.
    radius = 150.0
    route_m = haversine_m(DEPOT[2], DEPOT[3], ROZUPE[2], ROZUPE[3])
    f = factor * radius / route_m
    junction = ("j", "junction", DEPOT[2] + f * (ROZUPE[2] - DEPOT[2]),
                DEPOT[3] + f * (ROZUPE[3] - DEPOT[3]))
    script = Script().park(600).drive(junction, kmh=20.0)
    halt_start = script.t
    script.park(170, power_kw=3.0).drive(ROZUPE).park(600)
    _, changes = run(script)
    visits = closed(changes, "visit")
    legs = closed(changes, "leg")
    assert [v["place_id"] for v in visits] == ["livani"]  # no visit of its own at the junction
    assert [(leg["from_place"], leg["to_place"]) for leg in legs] == [("livani", "rozupe")]
    departure = halt_start + 169 if on_site else 599.0  # the last still moment on site
    assert visits[0]["end_ts"] == pytest.approx(T0 + departure)
    assert legs[0]["start_ts"] == visits[0]["end_ts"]
    leg_km = (route_m - factor * radius if on_site else route_m) / 1000
    assert legs[0]["km"] == pytest.approx(leg_km, rel=0.01)
    parked_kwh, halt_kwh = 5.0 * 599 / 3600, 3.0 * 169 / 3600
    if on_site:
        assert visits[0]["out_kwh"] > parked_kwh + halt_kwh
    else:  # the halt's energy is the leg's
        assert visits[0]["out_kwh"] == pytest.approx(parked_kwh, rel=0.01)


def test_a_halt_outside_then_back_inside_extends_the_visit() -> None:
    radius = 150.0
    route_m = haversine_m(DEPOT[2], DEPOT[3], ROZUPE[2], ROZUPE[3])

    def at(factor: float) -> tuple[str, str, float, float]:
        f = factor * radius / route_m
        return ("p", "p", DEPOT[2] + f * (ROZUPE[2] - DEPOT[2]),
                DEPOT[3] + f * (ROZUPE[3] - DEPOT[3]))

    script = Script().park(600).drive(at(1.1), kmh=20.0).park(100)
    script.drive(at(0.5), kmh=10.0).park(120)  # back on site: the visit goes on
    back_end = script.t - 1
    script.drive(ROZUPE).park(600)
    _, changes = run(script)
    visits = closed(changes, "visit")
    assert [v["place_id"] for v in visits] == ["livani"]
    assert visits[0]["end_ts"] == pytest.approx(T0 + back_end)


def test_an_unplug_and_replug_within_minutes_is_one_session() -> None:
    script = (Script(place=PREILI, soc=40.0).park(120).park(1200, charge_kw=45.0)
              .park(120).park(1200, charge_kw=45.0).park(400))
    _, changes = run(script)
    (session,) = closed(changes, "charge")
    assert session["start_ts"] == pytest.approx(T0 + 120)
    assert session["end_ts"] == pytest.approx(T0 + 120 + 1200 + 120 + 1200)  # the last unplug
    assert session["battery_kwh"] == pytest.approx(45.0 * 40 / 60, rel=0.01)
    events = [c.event for c in changes if c.event and c.kind == "charge"]
    assert events == ["charging_started", "charging_ended"]


def test_a_replug_after_the_merge_window_is_a_new_session() -> None:
    from busd.monitoring.charge_energy import REPLUG_MERGE_S

    script = (Script(place=PREILI, soc=40.0).park(120).park(1200, charge_kw=45.0)
              .park(REPLUG_MERGE_S + 60).park(1200, charge_kw=45.0).park(400))
    _, changes = run(script)
    first, second = closed(changes, "charge")
    assert first["end_ts"] == pytest.approx(T0 + 120 + 1200)
    assert first["battery_kwh"] == pytest.approx(15.0, rel=0.01)
    assert second["battery_kwh"] == pytest.approx(15.0, rel=0.01)


def test_charger_and_battery_energy_with_impossible_counter_jumps_rejected() -> None:
    # The charger counts what it delivered (the pack gets 92 % of it); its counter
    # resets at 600 s, shows its lifetime total for one frame at 1200 s, and from
    # 1800 s on is offset by that total for good. Each jump is rejected and counted.
    script = Script(place=PREILI, soc=40.0).park(120).park(2400, charge_kw=45.0).park(400)
    delivered = 0.0
    lost_to_reset = 0.0
    lifetime = 54_321.0
    samples = []
    for sample in script.samples:
        if sample.charger_state == "charging":
            delivered += 45.0 / 0.92 / 3600
            t = sample.mono - 120
            if t == 600:
                lost_to_reset = delivered  # the counter restarts from zero
            counter = delivered - lost_to_reset + (lifetime if t == 1200 or t >= 1800 else 0.0)
            sample = replace(sample, charger_session_kwh=counter)
        samples.append(sample)
    script.samples = samples
    _, changes = run(script)
    (session,) = closed(changes, "charge")
    battery = 45.0 * 40 / 60
    assert session["battery_kwh"] == pytest.approx(battery, rel=0.01)
    assert session["charger_kwh"] == pytest.approx(battery / 0.92, rel=0.01)
    assert session["charge_diff_kwh"] == pytest.approx(battery / 0.92 - battery, rel=0.05)
    assert session["counter_rejects"] == 3
    assert session["session_kwh"] > lifetime  # the raw maximum, kept as reported


def test_switched_off_while_parked_is_not_missing_energy_data() -> None:
    from busd.monitoring.summary import daily_summary

    # Parked at the depot, the bus is switched off for two hours: the BMS sleeps,
    # CAN is silent (no power, speed, odometer or SOC), only the GPS still reports.
    script = Script().park(600)
    script.park(7200, power_kw=0.0)
    script.samples[600:] = [replace(s, power_kw=None, speed_kmh=None, odometer_km=None,
                                    soc=None) for s in script.samples[600:]]
    script.park(600).drive(ROZUPE)
    # A true gap: the current goes stale for 60 s while driving.
    script.samples[-120:-60] = [replace(s, power_kw=None) for s in script.samples[-120:-60]]
    script.park(600)
    _, changes = run(script)
    visits, legs = closed(changes, "visit"), closed(changes, "leg")
    assert visits[0]["off_s"] == pytest.approx(7200, abs=2)
    assert visits[0]["gap_s"] == 0 and visits[0]["gaps"] == 0
    assert legs[0]["gap_s"] == pytest.approx(60, abs=2)  # a true gap stays a gap
    summary = daily_summary("2026-01-01", {"visit": visits, "leg": legs})
    assert summary["switched_off_min"] == pytest.approx(120, abs=0.1)
    assert summary["energy_gap_min"] == pytest.approx(1.0, abs=0.05)
