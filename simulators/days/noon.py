"""Why the noon projection missed: its error on one bus-day, cause by cause.

The figure (:mod:`simulators.days.evaluation`) is the depot SOC the planner projected at
noon against the SOC the bus really came home with. The projection at noon is an
evaluation of the active itinerary (:meth:`busd.planner.projection.Built.project`); the
breakdown evaluates that same itinerary again, putting the day's truth in one piece at a
time, and charges each piece with the change it makes:

- ``roads``: the real km of the remaining legs (detours, and the planner's straight line
  times road factor against the real road), the leg under way at noon left as projected;
- ``drive``: the afternoon's real kWh per km (the day's consumption, the roads' surfaces
  and speeds, the temperature as it went) against the model's at noon, both as the SOC
  spends them (the pack's own losses included);
- ``site``: the afternoon's real on-site kW against the model's, the same way;
- ``plan``: what is left once all three are true: the plan the bus followed after noon
  was not the one projected (minutes given back or cut, a charge longer or shorter, a
  stop skipped), and the projection's own simplifications.

The four add up to the error (projected minus actual, positive: the projection was
optimistic), in that order. A charge still ahead at noon (or under way) ends at the SOC
the projection gave it, held in every step: the bus charges to what the rest of the day
then needs, so the truth before the charge changes the charge and not the SOC home, while
the truth after it (a detour on the way home, a hungrier afternoon) comes home with the
bus and counts as roads, drive and site. Evaluated as the projection does, a charge would
take up every error after it too, and those would all count as ``plan``.
"""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass, replace

from busd.planner.model import Instance, evaluate
from busd.planner.projection import Built
from simulators.scenario.driver import DayTruth
from simulators.scenario.model import LoadedScenario


@dataclass(frozen=True)
class NoonBreakdown:
    error: float  # projected depot SOC at noon minus the SOC the bus came home with
    roads: float
    drive: float
    site: float
    plan: float
    drive_kwh_per_km: tuple[float, float]  # (the model's at noon, the afternoon's real)
    site_kw: tuple[float, float]

    def label(self) -> str:
        return (f"noon error {self.error:+5.1f} = roads {self.roads:+4.1f} drive "
                f"{self.drive:+4.1f} site {self.site:+4.1f} plan {self.plan:+4.1f}")


def _afternoon_rates(truth: DayTruth, since: float, capacity_kwh: float
                     ) -> tuple[float | None, float | None]:
    """The real kWh per km on the road and kW on stop visits after ``since``, as the SOC
    spent them (each leg's and visit's kWh at the terminals times its SOC used over them:
    the pack's own losses are the bus's consumption too, and the projection counts them)."""

    def soc_kwh(kwh: float, whole_kwh: float, soc_used: float | None) -> float:
        if soc_used is None or whole_kwh <= 0.05:
            return kwh
        return kwh * soc_used / 100 * capacity_kwh / whole_kwh

    departed = {v.departed_ts: v.soc_departed for v in truth.visits if v.departed_ts}
    arrived = {v.arrived_ts: v.soc_arrived for v in truth.visits}
    km = drive_kwh = 0.0
    for leg in truth.legs:
        if leg.end_ts is None or leg.end_ts <= since or leg.end_ts <= leg.start_ts:
            continue
        share = 1.0 if leg.start_ts >= since else (leg.end_ts - since) / (leg.end_ts -
                                                                           leg.start_ts)
        km += leg.km * share
        start, end = departed.get(leg.start_ts), arrived.get(leg.end_ts)
        drive_kwh += soc_kwh(
            truth.out_kwh_between(max(leg.start_ts, since), leg.end_ts) - leg.regen_kwh * share,
            leg.out_kwh - leg.regen_kwh, None if start is None or end is None else start - end)
    hours = site_kwh = 0.0
    for v in truth.visits:
        if v.kind != "stop" or v.departed_ts is None or v.departed_ts <= since:
            continue
        begin = max(v.arrived_ts, since)
        hours += (v.departed_ts - begin) / 3600.0
        site_kwh += soc_kwh(
            truth.out_kwh_between(begin, v.departed_ts),
            truth.out_kwh_between(v.arrived_ts, v.departed_ts),
            None if v.soc_departed is None else v.soc_arrived - v.soc_departed)
    return (drive_kwh / km if km >= 1.0 else None,
            site_kwh / hours if hours >= 0.1 else None)


def noon_breakdown(loaded: LoadedScenario, built: Built, truth: DayTruth,
                   end_soc: float) -> NoonBreakdown:
    """The error of the projection ``built`` (the planner's at noon) against ``end_soc``."""
    inst = built.instance
    ids = built.node_ids

    def real_km(i: int, j: int) -> float:
        if i == 0 or j == 0 or i == j:
            return inst.dist[i][j]  # the leg under way: as projected
        return loaded.road(ids[i], ids[j])[0]

    n = len(ids)
    dist = tuple(tuple(real_km(i, j) for j in range(n)) for i in range(n))
    drive, site = _afternoon_rates(truth, inst.now, inst.capacity_kwh)
    drive = inst.drive_kwh_per_km if drive is None else drive
    site = inst.site_kw if site is None else site
    steps = [inst, replace(inst, dist=dist)]
    steps.append(replace(steps[-1], drive_kwh_per_km=drive))
    steps.append(replace(steps[-1], site_kw=site))
    seq, minutes = built.active_seq, built.active_minutes
    charge = next((p for p in evaluate(inst, seq, minutes).points if inst.is_charger(p.node)),
                  None)
    if charge is not None:
        steps = [_charging_to(s, seq, minutes, charge.soc_depart) for s in steps]
    socs = [evaluate(s, seq, minutes).depot_soc for s in steps]
    return NoonBreakdown(
        error=socs[0] - end_soc, roads=socs[0] - socs[1], drive=socs[1] - socs[2],
        site=socs[2] - socs[3], plan=socs[3] - end_soc,
        drive_kwh_per_km=(inst.drive_kwh_per_km, drive), site_kw=(inst.site_kw, site),
    )


def _charging_to(inst: Instance, seq: tuple[int, ...], minutes: dict[int, float],
                 soc: float) -> Instance:
    """``inst`` with the line after the charge set so that the charge ends at ``soc``: the
    target :func:`~busd.planner.model.evaluate` charges to is that line, the energy after the
    charge and the buffer."""
    cut = next(k for k, v in enumerate(seq) if inst.is_charger(v))
    path = [*seq[cut:], inst.depot]
    km = sum(inst.dist[a][b] for a, b in itertools.pairwise(path))
    after = inst.drive_kwh_per_km * km + inst.site_kw * sum(
        minutes.get(v, 0.0) for v in seq[cut + 1:]) / 60
    line = soc - inst.charge.buffer_pct - after / inst.capacity_kwh * 100
    return replace(inst, after_charge_threshold_pct=line)


def summary(days: list[NoonBreakdown]) -> list[str]:
    """Per cause over many days: its mean (a bias), its mean size (the spread) and the p95 of
    its size. The p95 of ``roads`` alone is the figure's floor on these days: the error of a
    projection that knew the afternoon's consumption exactly and only expected the detours."""
    if not days:
        return []
    out = []
    for cause in ("error", "roads", "drive", "site", "plan"):
        values = [getattr(d, cause) for d in days]
        sizes = [abs(v) for v in values]
        mean = sum(values) / len(values)
        size = sum(sizes) / len(sizes)
        p95 = statistics.quantiles(sizes, n=20, method="inclusive")[18] if len(sizes) > 1 \
            else sizes[0]
        out.append(f"noon {cause:5s}: mean {mean:+5.2f}, mean size {size:4.2f}, "
                   f"p95 size {p95:4.2f} points")
    return out
