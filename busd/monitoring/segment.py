"""Pure segmentation of the day: legs, visits and charging sessions from samples.

:class:`DayTracker` takes one :class:`Sample` at a time (what the vehicle
state said at that moment) and returns :class:`Change` records: a record
opened, updated (checkpoint) or closed, with the event name to publish. It
does no I/O and reads no clock, so every rule is tested with plain data.

Rules (config: :class:`~busd.config.MonitoringConfig`):

* *stopped*: the one definition, :func:`busd.motion.stopped` (``motion.stopped_kmh``).
* A **visit** begins where the bus stopped, once it has stayed stopped for
  ``min_visit_s`` (a shorter halt is a traffic stop and stays part of the leg).
  Inside a place's geofence it is a visit of that place (depot, stop or
  charger); elsewhere an *unplanned* visit with its own small geofence.
  *Where* the bus stands is judged only by a fix measured while it stood
  (``Sample.pos_ts``): GPS reaches busd later than the wheel speed (gpsd
  reports a fix when the next one begins; a receiver in a forest has none),
  and the last fix from before the halt is up to a braking distance, or a
  whole outage, away. Without such a fix the visit waits for one, up to
  ``locate_wait_s`` beyond the minimum, when the GPS worked shortly before the
  halt; after that, or when the bus drives on, it is an unplanned visit at an
  unknown position.
* It ends when the bus is ``exit_margin_m`` outside that geofence (odometer
  distance when there is no GPS), at the moment it started to move away from
  its last halt *inside the geofence*. A halt outside it (traffic at a junction
  110 m out, past a 100 m radius but short of the margin) belongs to the leg:
  counted as time on site it once moved 7 % of a leg's kWh and 3 minutes into
  the visit. A halt back inside extends the visit. Whether a halt is inside is
  judged by a fix measured during it (GPS lags the wheel speed: the last fix
  from before the halt may still be inside), else by the odometer's distance
  from where the visit began, else (no position at all) it counts as inside.
* A **leg** is everything between two visits; the time partitions exactly.
* A **charging session** runs from the charger reporting ``charging`` until it
  is unplugged or idle/faulty, unless charging resumes within
  :data:`~busd.monitoring.charge_energy.REPLUG_MERGE_S` (an unplug and replug is one
  session, not two); it ends at the unplug. Its energy is recorded twice: the
  charger's session counter (its impossible jumps rejected and counted) and the
  battery's ∫V·I, with their difference.

Records are identified by their kind and start time, so writing one twice is
an overwrite, never a duplicate. After a restart, the open records from the
store are resumed (:meth:`DayTracker.resume`): the downtime counts as a gap in
the energy figures; a visit or charging session the bus has clearly left is
closed at its last checkpoint and marked ``interrupted``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from busd.monitoring.charge_energy import REPLUG_MERGE_S, SessionCounter
from busd.monitoring.figures import Counters, EnergyIntegrator, GpsDistance, LiftCycles
from busd.monitoring.open_record import OpenRecord as _Open
from busd.monitoring.open_record import record_row
from busd.monitoring.records import (
    CHARGE,
    CLOSED,
    INTERRUPTED,
    LEG,
    OPEN,
    VISIT,
    Change,
    PlaceRef,
    Row,
    Sample,
    Settings,
    Snap,
    places_of,
)
from busd.motion import stopped
from busd.plan import haversine_m

__all__ = ["Change", "DayTracker", "PlaceRef", "Row", "Sample", "Settings", "Snap", "places_of"]


@dataclass
class _Standstill:
    """A halt on the road that may become a visit."""

    since: Snap
    last_still: Snap
    pos: tuple[float, float] | None = None  # from a fix measured while standing
    gps_before: bool = False  # the GPS gave a position shortly before the halt


@dataclass
class _Halt:
    """A halt during a visit: on site (it extends the visit) or outside (the leg's)."""

    since_ts: float
    last: Snap
    inside: bool | None = None  # judged by a fix measured during it


def _id(kind: str, ts: float) -> str:
    return f"{kind}-{round(ts * 1000)}"


def _measured(s: Sample) -> float:
    return s.pos_ts if s.pos_ts is not None else s.ts


class DayTracker:
    def __init__(self, *, places: Sequence[PlaceRef], settings: Settings, zone: ZoneInfo) -> None:
        self.places = list(places)
        self.settings = settings
        self.zone = zone
        self.energy = EnergyIntegrator(max_hold_s=settings.energy_gap_s)
        self.gps = GpsDistance(min_step_m=settings.gps_min_step_m)
        self.lift = LiftCycles()
        self._temp_cs = 0.0
        self._temp_s = 0.0
        self._last: Sample | None = None
        self.leg: _Open | None = None
        self.visit: _Open | None = None
        self.charge: _Open | None = None
        self._stop_cand: _Standstill | None = None
        self._fix_ts: float | None = None  # when the latest position was measured
        self._moving_since: Snap | None = None
        self._last_still: Snap | None = None  # in a visit: its last still moment on site
        self._halt: _Halt | None = None
        self._pending_resume: dict[str, Row] = {}

    # --- public -----------------------------------------------------------------

    def resume(self, open_rows: Mapping[str, Row]) -> None:
        """Continue records a previous run left open; decided on the next sample."""
        self._pending_resume = {k: dict(v) for k, v in open_rows.items() if v}
        counters = [int(r["lift_counter"]) for r in self._pending_resume.values()
                    if r.get("lift_counter") is not None]
        if counters:
            self.lift.resume(max(counters))

    def step(self, s: Sample) -> list[Change]:
        out: list[Change] = []
        if self._pending_resume:
            # Before this sample counts: what it adds (lift cycles made while busd was
            # down) belongs to the resumed records.
            self._do_resume(s, self._snap(s), out)
        self._accumulate(s)
        snap = self._snap(s)
        stopped = self._stopped(s)
        pos = (s.lat, s.lon) if s.lat is not None and s.lon is not None else None
        self._charging(s, snap, out)
        for rec in (self.visit, self.charge):
            if rec is not None and s.soc is not None:
                rec.min_soc = s.soc if rec.min_soc is None else min(rec.min_soc, s.soc)
        if self.visit is not None:
            self._in_visit(s, snap, stopped, pos, out)
        else:
            self._on_road(s, snap, stopped, pos, out)
        if pos is not None:
            self._fix_ts = _measured(s)
        self._last = s
        return out

    @property
    def away(self) -> bool:
        """The bus is out on its day: on a leg, or on a visit anywhere but the depot."""
        if self.leg is not None:
            return True
        return self.visit is not None and (self.visit.place is None
                                           or self.visit.place.kind != "depot")

    def checkpoint(self) -> list[Change]:
        """Rows of every open record, with the figures so far (the store keeps them)."""
        if self._last is None:
            return []
        snap = self._snap(self._last)
        return [
            Change(rec.kind, self._row(rec, snap, OPEN), None)
            for rec in (self.leg, self.visit, self.charge)
            if rec is not None
        ]

    def counters(self) -> Counters:
        return Counters(
            out_kwh=self.energy.out_kwh, regen_kwh=self.energy.regen_kwh,
            charged_kwh=self.energy.charged_kwh, gap_s=self.energy.gap_s, gaps=self.energy.gaps,
            gps_m=self.gps.metres, lift_cycles=self.lift.cycles,
            temp_cs=self._temp_cs, temp_s=self._temp_s, off_s=self.energy.off_s,
        )

    def place_at(self, lat: float, lon: float) -> PlaceRef | None:
        best: tuple[float, PlaceRef] | None = None
        for place in self.places:
            if place.lat is None or place.lon is None:
                continue
            d = haversine_m(place.lat, place.lon, lat, lon)
            if d <= place.radius_m and (best is None or d < best[0]):
                best = (d, place)
        return None if best is None else best[1]

    # --- accumulation -----------------------------------------------------------

    def _accumulate(self, s: Sample) -> None:
        stopped = self._stopped(s)
        # Charge flowing in while the bus stands still is charging, even if the
        # charger's own signals are stale: regeneration needs the wheels to turn.
        plugged = bool(s.plugged) or s.charger_state in ("charging", "complete") or bool(stopped)
        self.energy.step(s.mono, s.power_kw, age_s=s.power_age_s, plugged=plugged,
                         switched_off=self._switched_off(s))
        self.gps.step(s.lat, s.lon, moving=None if stopped is None else not stopped)
        self.lift.step(s.lift_counter, s.lift_state)
        last = self._last
        if last is not None and last.outside_temp_c is not None and s.mono > last.mono:
            dt = s.mono - last.mono
            self._temp_cs += last.outside_temp_c * dt
            self._temp_s += dt

    def _switched_off(self, s: Sample) -> bool:
        """The bus is off: no CAN value at all (BMS asleep) and not moving by GPS either."""
        can_silent = (s.power_kw is None and s.speed_kmh is None and s.odometer_km is None
                      and s.soc is None)
        # No GPS speed counts as not moving, as does one at or below the threshold.
        return can_silent and stopped(self.settings.motion, None, s.gps_speed_kmh) is not False

    def _snap(self, s: Sample) -> Snap:
        return Snap(s.mono, s.ts, s.odometer_km, s.soc, self.counters(), self.lift.last_counter)

    def _stopped(self, s: Sample) -> bool | None:
        return stopped(self.settings.motion, s.speed_kmh, s.gps_speed_kmh)

    # --- visits and legs ----------------------------------------------------------

    def _on_road(self, s: Sample, snap: Snap, stopped: bool | None,
                 pos: tuple[float, float] | None, out: list[Change]) -> None:
        place = self.place_at(*pos) if pos is not None else None
        if self.leg is None and stopped is None:
            return  # nothing to go on yet (no speed): wait rather than guess
        if self.leg is None and stopped and place is not None:
            # The day starts parked at a known place (the depot): no need to wait.
            self._open_visit(snap, place, out)
            return
        if self.leg is None:
            self._open_leg(snap, None, out)
        cand = self._stop_cand
        if stopped is False:
            self._stop_cand = None
            if cand is not None and self._matured(cand, cand.last_still):
                # It stood long enough but no fix said where: a visit all the same.
                self._open_standstill(cand, out)
                self._in_visit(s, snap, stopped, pos, out)
            return
        if not stopped:
            return  # speed unknown: neither a halt nor its end
        if cand is None:
            fix_age = None if self._fix_ts is None else snap.ts - self._fix_ts
            recent = fix_age is not None and fix_age <= self.settings.locate_wait_s
            cand = self._stop_cand = _Standstill(snap, snap, gps_before=recent)
        cand.last_still = snap
        if pos is not None and _measured(s) >= cand.since.ts:
            cand.pos = pos  # measured while standing: this is where the bus is
        if not self._matured(cand, snap):
            return
        waited = s.mono - cand.since.mono - self.settings.min_visit_s
        if cand.pos is None and cand.gps_before and waited < self.settings.locate_wait_s:
            return  # a fix from the halt is late (gpsd, an outage): wait for it
        self._open_standstill(cand, out)

    def _matured(self, cand: _Standstill, now: Snap) -> bool:
        return now.mono - cand.since.mono >= self.settings.min_visit_s

    def _open_standstill(self, cand: _Standstill, out: list[Change]) -> None:
        pos = cand.pos
        place = self.place_at(*pos) if pos is not None else None
        if place is None:
            place = PlaceRef("unplanned", "unplanned stop", "unplanned",
                             pos[0] if pos else None, pos[1] if pos else None,
                             self.settings.unplanned_radius_m)
        self._open_visit(cand.since, place, out)
        self._last_still = cand.last_still

    def _open_visit(self, snap: Snap, place: PlaceRef, out: list[Change]) -> None:
        if self.leg is not None:
            out.append(Change(LEG, self._row(self.leg, snap, CLOSED, to_place=place),
                              "leg_completed"))
            self.leg = None
        self.visit = _Open(VISIT, _id(VISIT, snap.ts), snap, place, odo_start=snap.odo,
                           soc_start=snap.soc, min_soc=snap.soc)
        self._stop_cand = None
        self._moving_since = None
        self._last_still = snap
        out.append(Change(VISIT, self._row(self.visit, snap, OPEN), "visit_started"))

    def _open_leg(self, snap: Snap, origin: PlaceRef | None, out: list[Change],
                  base: Counters | None = None) -> None:
        self.leg = _Open(LEG, _id(LEG, snap.ts), snap, origin, base=base or Counters(),
                         odo_start=snap.odo, soc_start=snap.soc)
        out.append(Change(LEG, self._row(self.leg, snap, OPEN), None))

    def _in_visit(self, s: Sample, snap: Snap, stopped: bool | None,
                  pos: tuple[float, float] | None, out: list[Change]) -> None:
        visit = self.visit
        assert visit is not None and visit.place is not None
        limit = visit.place.radius_m + self.settings.exit_margin_m
        if pos is not None and _measured(s) < visit.start.ts:
            pos = None  # a fix from before the visit says nothing about leaving it
        if stopped:
            self._still_in_visit(s, snap, pos)
            if (visit.resumed and s.odometer_km is not None and visit.checkpoint_odo is not None
                    and abs(s.odometer_km - visit.checkpoint_odo) * 1000.0 < limit):
                visit.resumed = False  # still standing where the last run left it
        elif stopped is False:
            self._end_halt(s)
            if self._moving_since is None:
                # The visit ends at the last moment the bus stood still on site.
                self._moving_since = self._last_still or snap
        left = False
        if pos is not None and visit.place.lat is not None and visit.place.lon is not None:
            left = haversine_m(visit.place.lat, visit.place.lon, *pos) > limit
        elif s.odometer_km is not None and visit.odo_start is not None:
            left = (s.odometer_km - visit.odo_start) * 1000.0 > limit
        if not left:
            if pos is not None and visit.place.lat is not None:
                visit.resumed = False  # seen on site since the restart
            return
        if visit.resumed:
            # Left while busd was down: the visit ended after its last checkpoint.
            end = self._checkpoint_snap(visit, snap)
            status = INTERRUPTED
        else:
            end = self._moving_since or snap
            status = CLOSED
        self._close_visit(end, status, out)
        base = Counters(gap_s=max(0.0, snap.ts - end.ts)) if status == INTERRUPTED else None
        start = end if status == CLOSED else replace(end, counters=snap.counters)
        self._open_leg(start, visit.place, out, base=base)

    def _still_in_visit(self, s: Sample, snap: Snap, pos: tuple[float, float] | None) -> None:
        halt = self._halt
        if halt is None:
            halt = self._halt = _Halt(snap.ts, snap)
        halt.last = snap
        if pos is not None and _measured(s) >= halt.since_ts:
            halt.inside = self._on_site(pos, None)
        if halt.inside:
            self._last_still = snap
            self._moving_since = None
        elif halt.inside is False:
            # Outside the geofence: the visit still ends where the bus last stood on site.
            self._moving_since = self._last_still or snap

    def _end_halt(self, s: Sample) -> None:
        """The bus moves on: a halt no fix placed is judged by the odometer, or is on site."""
        halt, self._halt = self._halt, None
        if halt is None or halt.inside is not None:
            return
        inside = self._on_site(None, halt.last.odo)
        if inside is None or inside:
            self._last_still = halt.last
            self._moving_since = None

    def _on_site(self, pos: tuple[float, float] | None, odo: float | None) -> bool | None:
        """Within the visit's geofence (not its exit margin): by a fix, else the odometer."""
        visit = self.visit
        assert visit is not None and visit.place is not None
        place = visit.place
        if pos is not None and place.lat is not None and place.lon is not None:
            return haversine_m(place.lat, place.lon, *pos) <= place.radius_m
        if odo is not None and visit.odo_start is not None:
            return abs(odo - visit.odo_start) * 1000.0 <= place.radius_m
        return None

    def _close_visit(self, end: Snap, status: str, out: list[Change]) -> None:
        assert self.visit is not None
        out.append(Change(VISIT, self._row(self.visit, end, status), "visit_ended"))
        self.visit = None
        self._moving_since = None
        self._last_still = None
        self._halt = None

    def _checkpoint_snap(self, rec: _Open, now: Snap) -> Snap:
        """Where a resumed record stood at its last checkpoint (nothing added since)."""
        ts = rec.checkpoint_ts if rec.checkpoint_ts is not None else rec.start.ts
        return Snap(now.mono, ts, rec.checkpoint_odo, rec.min_soc, rec.start.counters)

    # --- charging -----------------------------------------------------------------

    def _charging(self, s: Sample, snap: Snap, out: list[Change]) -> None:
        charge = self.charge
        power = s.charger_power_kw or 0.0
        charging = s.charger_state == "charging" or (
            s.charger_state is None and bool(s.plugged) and power > 0.5)
        if charge is None:
            if charging:
                self.charge = _Open(CHARGE, _id(CHARGE, snap.ts), snap, self._where(s),
                                    soc_start=s.soc, min_soc=s.soc, odo_start=s.odometer_km)
                self._charge_peaks(s)
                out.append(Change(CHARGE, self._row(self.charge, snap, OPEN), "charging_started"))
            return
        if charge.paused is not None:
            if charging:  # plugged in again soon: the same session goes on
                charge.paused = None
                charge.meter.replugged()
                self._charge_peaks(s)
            elif s.mono - charge.paused.mono > REPLUG_MERGE_S or self._stopped(s) is False:
                out.append(Change(CHARGE, self._row(charge, charge.paused, CLOSED),
                                  "charging_ended"))
                self.charge = None
            return
        ended = s.plugged is False or s.charger_state in ("idle", "fault")
        if not ended:
            self._charge_peaks(s)
            return
        charge.paused = snap

    def _charge_peaks(self, s: Sample) -> None:
        charge = self.charge
        assert charge is not None
        candidates = [charge.peak_kw]
        if s.charger_power_kw is not None:
            candidates.append(s.charger_power_kw)
        if s.power_kw is not None:
            candidates.append(-s.power_kw)
        charge.peak_kw = max(candidates)
        if s.charger_session_kwh is not None:
            charge.session_kwh = max(charge.session_kwh or 0.0, s.charger_session_kwh)
        charge.meter.step(s.mono, s.charger_session_kwh)

    def _where(self, s: Sample) -> PlaceRef | None:
        if self.visit is not None:
            return self.visit.place
        if s.lat is not None and s.lon is not None:
            return self.place_at(s.lat, s.lon) or PlaceRef(
                "unplanned", "unplanned stop", "unplanned", s.lat, s.lon,
                self.settings.unplanned_radius_m)
        return None

    # --- resume -----------------------------------------------------------------

    def _do_resume(self, s: Sample, snap: Snap, out: list[Change]) -> None:
        rows, self._pending_resume = self._pending_resume, {}
        for kind, row in rows.items():
            downtime = max(0.0, s.ts - float(row.get("updated_ts") or row["start_ts"]))
            base = Counters(
                out_kwh=row.get("out_kwh") or 0.0, regen_kwh=row.get("regen_kwh") or 0.0,
                charged_kwh=row.get("charged_kwh") or 0.0,
                gap_s=(row.get("gap_s") or 0.0) + downtime,
                gaps=int(row.get("gaps") or 0)
                + (1 if downtime > self.settings.energy_gap_s else 0),
                gps_m=(row.get("gps_km") or 0.0) * 1000.0,
                lift_cycles=int(row.get("lift_cycles") or 0),
                temp_cs=(row.get("temp_c") or 0.0) * (row.get("temp_s") or 0.0),
                temp_s=row.get("temp_s") or 0.0, off_s=row.get("off_s") or 0.0,
            )
            place = None
            if row.get("place_id") or row.get("from_place"):
                place = PlaceRef(
                    row.get("place_id") or row.get("from_place") or "",
                    row.get("place_name") or row.get("from_name") or "",
                    row.get("place_kind") or "stop",
                    row.get("lat"), row.get("lon"),
                    row.get("radius_m") or self.settings.unplanned_radius_m,
                )
            start = Snap(snap.mono, float(row["start_ts"]), row.get("odo_start"),
                         row.get("soc_start"), snap.counters)
            rec = _Open(kind, row["id"], start, place, base=base, odo_start=row.get("odo_start"),
                        soc_start=row.get("soc_start"), min_soc=row.get("soc_min"),
                        peak_kw=row.get("peak_kw") or 0.0, session_kwh=row.get("session_kwh"),
                        resumed=True, checkpoint_ts=row.get("updated_ts"),
                        checkpoint_odo=row.get("odo_end"),
                        meter=SessionCounter(kwh=row.get("charger_kwh") or 0.0,
                                             rejected=int(row.get("counter_rejects") or 0)))
            if kind == LEG:
                self.leg = rec
            elif kind == VISIT:
                self.visit = rec
            elif kind == CHARGE:
                self.charge = rec
        if self.charge is not None and not (
            s.charger_state in ("charging", "complete") or s.plugged
        ):
            end = self._checkpoint_snap(self.charge, snap)
            out.append(Change(CHARGE, self._row(self.charge, end, INTERRUPTED), "charging_ended"))
            self.charge = None

    # --- rows ---------------------------------------------------------------------

    def day_of(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, self.zone).date().isoformat()

    def _row(self, rec: _Open, end: Snap, status: str, *, to_place: PlaceRef | None = None) -> Row:
        return record_row(rec, end, status, day=self.day_of(rec.start.ts), to_place=to_place)
