"""The planning problem as plain numbers, and how one itinerary is judged.

An :class:`Instance` is everything the search needs at one moment: where the
bus is, its SOC, the remaining stops, the chargers, the energy rates, and a
distance matrix over the nodes ``0`` (the bus now), ``1..n`` (stops),
``n+1..n+m`` (chargers) and ``n+m+1`` (the depot).

An itinerary is a sequence of stop and charger nodes (at most one charger);
the depot always closes it. :func:`evaluate` judges it, and is the one place
that defines the model, used by the projection, the search and the tests:

- Energy: driving ``drive_kwh_per_km`` per km, on site ``site_kw`` per hour.
  SOC only falls between charges, so it is lowest on arrival at a charger or
  the depot; *safe* means it stays at or above ``threshold_pct`` (reserve +
  margin) there.
- Visit lengths (when not given): the minutes that energy allows go to the
  most important stops first, in ``step_min`` steps from each stop's minimum
  up to its planned length (ties: the stop announced earlier). For a fixed
  itinerary this is the exact optimum of the objective's service terms.
- Time: the bus starts a visit when it arrives (early arrival costs nothing;
  lateness against an arrival window or the depot's return time does). A
  charging session must start before the charger closes; arriving before it
  opens means waiting. Charging goes to what the rest of the day needs plus
  a buffer, never above ``charge_max_pct``, at the charger's power (capped by
  the bus's) with a linear taper above ``taper_pct``.
- Objective, compared as a tuple (larger is better): safe; must-serve stops
  served; priority served; priority-weighted minutes on site; minutes on site
  of earlier-announced stops (tie-break); less disruption (minutes late plus
  ``reorder_penalty_min`` per pair swapped against the announced order); fewer km.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class StopNode:
    id: str
    index: int  # position in the announced order
    planned_min: float  # remaining planned minutes (less for a visit in progress)
    min_min: float
    priority: int
    must: bool
    latest: float | None = None  # epoch s, end of the announced arrival window
    in_progress: bool = False  # the bus is there now: first, and cannot be dropped


@dataclass(frozen=True, slots=True)
class ChargerNode:
    id: str
    power_kw: float  # effective: min(charger, bus)
    opens: float  # epoch s
    closes: float
    overhead_min: float | None = None  # None: the usual (plugging in); 0 for a charge under way


@dataclass(frozen=True, slots=True)
class ChargeParams:
    max_pct: float = 90.0
    taper_pct: float = 80.0
    taper_floor: float = 0.2
    overhead_min: float = 5.0
    buffer_pct: float = 5.0


@dataclass(frozen=True)
class Instance:
    now: float
    soc_pct: float
    capacity_kwh: float
    threshold_pct: float
    drive_kwh_per_km: float
    site_kw: float
    speed_kmh: float
    stops: tuple[StopNode, ...]
    chargers: tuple[ChargerNode, ...]
    return_by: float
    dist: tuple[tuple[float, ...], ...]  # km between nodes
    charge: ChargeParams = ChargeParams()
    step_min: float = 5.0
    reorder_penalty_min: float = 20.0
    # The line at the depot after a charging stop (None: ``threshold_pct``). A charge
    # resets the error of the energy spent before it: what follows needs a margin for its
    # own energy only.
    after_charge_threshold_pct: float | None = None

    def raised(self, by: float) -> Instance:
        """This moment with the line, and the line after a charge, ``by`` points higher: the
        hysteresis a proposal keeps, or the margin of another itinerary's energy."""
        after = self.after_charge_threshold_pct
        return replace(self, threshold_pct=self.threshold_pct + by,
                       after_charge_threshold_pct=None if after is None else after + by)

    @property
    def threshold2(self) -> float:
        """The line after a charging stop (and the charge's target rests on it)."""
        t = self.after_charge_threshold_pct
        return self.threshold_pct if t is None else t

    @property
    def n(self) -> int:
        return len(self.stops)

    @property
    def depot(self) -> int:
        return len(self.stops) + len(self.chargers) + 1

    def is_charger(self, node: int) -> bool:
        return node > len(self.stops) and node < self.depot

    def stop(self, node: int) -> StopNode:
        return self.stops[node - 1]

    def charger(self, node: int) -> ChargerNode:
        return self.chargers[node - len(self.stops) - 1]

    def node_id(self, node: int) -> str:
        if node == 0:
            return "(here)"
        if node == self.depot:
            return "(depot)"
        return self.charger(node).id if self.is_charger(node) else self.stop(node).id

    def with_soc(self, soc_pct: float) -> Instance:
        from dataclasses import replace

        return replace(self, soc_pct=soc_pct)


@dataclass(frozen=True, slots=True)
class Point:
    """One place of an evaluated itinerary."""

    node: int
    arrive: float  # epoch s
    depart: float
    soc_arrive: float
    soc_depart: float
    minutes: float  # on site, or charging (with overhead and waiting)
    late_min: float = 0.0
    charge_kwh: float = 0.0


@dataclass(frozen=True)
class Evaluation:
    seq: tuple[int, ...]
    safe: bool
    minutes: dict[int, float]  # stop node -> minutes on site
    points: tuple[Point, ...] = ()  # every stop/charger, then the depot
    km: float = 0.0
    late_min: float = 0.0
    inversions: int = 0
    key: tuple[float, ...] = field(default=())

    @property
    def depot_soc(self) -> float:
        return self.points[-1].soc_arrive if self.points else float("nan")

    @property
    def min_soc(self) -> float:
        return min((p.soc_arrive for p in self.points), default=float("nan"))


def charge_hours(inst: Instance, power_kw: float, soc_from: float, soc_to: float) -> float:
    """Hours to charge from one SOC % to another, with a linear taper near full."""
    if soc_to <= soc_from:
        return 0.0
    cp = inst.charge
    kwh_per_pct = inst.capacity_kwh / 100.0
    flat_end = min(soc_to, cp.taper_pct)
    hours = max(0.0, flat_end - soc_from) * kwh_per_pct / power_kw
    lo, hi = max(soc_from, cp.taper_pct), soc_to
    if hi > lo:
        k = (1 - cp.taper_floor) / max(_EPS, 100.0 - cp.taper_pct)
        # power(s) = P (1 - k (s - taper)); integrate dE / power
        a, b = 1 - k * (lo - cp.taper_pct), 1 - k * (hi - cp.taper_pct)
        hours += kwh_per_pct / power_kw * (math.log(a / b) / k if k > _EPS else hi - lo)
    return hours


def _budget_min(inst: Instance, start_pct: float, km: float, line_pct: float) -> float:
    """Minutes on site the energy allows over a segment of ``km`` driving, down to
    ``line_pct``."""
    spare_kwh = (start_pct - line_pct) / 100 * inst.capacity_kwh
    spare_kwh -= inst.drive_kwh_per_km * km
    if inst.site_kw <= _EPS:
        return math.inf if spare_kwh >= -_EPS else -math.inf
    return spare_kwh / inst.site_kw * 60


def allocate(inst: Instance, nodes: list[int], budget_min: float) -> dict[int, float] | None:
    """Visit lengths for the stops of one segment; None when even the minimums do not fit."""
    minutes = {v: inst.stop(v).min_min for v in nodes}
    spare = budget_min - sum(minutes.values())
    if spare < -1e-6:
        return None
    step = inst.step_min
    for v in sorted(nodes, key=lambda v: (-inst.stop(v).priority, inst.stop(v).index)):
        s = inst.stop(v)
        room = s.planned_min - s.min_min
        if room <= 0:
            continue
        extra = room if spare >= room - 1e-9 else math.floor(spare / step + 1e-9) * step
        if extra > 0:
            minutes[v] += extra
            spare -= extra
    return minutes


def evaluate(
    inst: Instance, seq: tuple[int, ...], minutes: dict[int, float] | None = None
) -> Evaluation:
    """Judge one itinerary (stop and charger nodes, depot implied)."""
    d = inst.dist
    chargers = [i for i, v in enumerate(seq) if inst.is_charger(v)]
    cut = chargers[0] if chargers else len(seq)
    seg1, seg2 = list(seq[:cut]), list(seq[cut + 1 :])
    path = [0, *seq, inst.depot]
    legs = [d[a][b] for a, b in itertools.pairwise(path)]
    km = sum(legs)
    km1 = sum(legs[: cut + 1])
    speed = inst.speed_kmh / 60.0  # km per minute

    safe = len(chargers) <= 1
    budget1 = _budget_min(inst, inst.soc_pct, km1, inst.threshold_pct)
    if chargers:
        ch = inst.charger(seq[cut])
        # The session must start before the charger closes (waiting for it to open is fine).
        latest_start = (ch.closes - inst.now) / 60 - km1 / speed
        budget1 = min(budget1, latest_start)
        budget2 = _budget_min(inst, inst.charge.max_pct, km - km1, inst.threshold2)
    if minutes is None:
        m1 = allocate(inst, seg1, budget1)
        m2 = allocate(inst, seg2, budget2) if chargers else {}
        if m1 is None or m2 is None:
            safe = False
            m1 = m1 or {v: inst.stop(v).min_min for v in seg1}
            m2 = m2 or {v: inst.stop(v).min_min for v in seg2}
        minutes = {**m1, **m2}
    else:
        if sum(minutes[v] for v in seg1) > budget1 + 1e-6:
            safe = False
        if chargers and sum(minutes[v] for v in seg2) > budget2 + 1e-6:
            safe = False
    if inst.stops and inst.stops[0].in_progress and (not seq or seq[0] != 1):
        safe = False  # a visit in progress is node 1 and always comes first

    # Walk the itinerary for times and SOC.
    cap = inst.capacity_kwh
    t = inst.now
    soc = inst.soc_pct
    late = 0.0
    points: list[Point] = []
    drive2 = inst.drive_kwh_per_km * (km - km1)
    site2 = inst.site_kw * sum(minutes[v] for v in seg2) / 60
    for leg, v in zip(legs, [*seq, inst.depot], strict=False):
        t += leg / speed * 60
        soc -= inst.drive_kwh_per_km * leg / cap * 100
        if v == inst.depot:
            late_here = max(0.0, (t - inst.return_by) / 60)
            late += late_here
            points.append(Point(v, t, t, soc, soc, 0.0, late_here))
            break
        if inst.is_charger(v):
            ch = inst.charger(v)
            if soc < inst.threshold_pct - 1e-6:
                safe = False
            target = inst.threshold2 + (drive2 + site2) / cap * 100 + inst.charge.buffer_pct
            target = min(inst.charge.max_pct, target)
            wait = max(0.0, ch.opens - t)
            hours = charge_hours(inst, ch.power_kw, soc, target)
            overhead = inst.charge.overhead_min if ch.overhead_min is None else ch.overhead_min
            charging_min = wait / 60 + (hours * 60 + overhead if hours else 0.0)
            new_soc = max(soc, target)
            points.append(
                Point(v, t, t + charging_min * 60, soc, new_soc, charging_min, 0.0,
                      (new_soc - soc) / 100 * cap)
            )
            t += charging_min * 60
            soc = new_soc
            continue
        s = inst.stop(v)
        late_here = max(0.0, (t - s.latest) / 60) if s.latest is not None else 0.0
        late += late_here
        m = minutes[v]
        soc_arr = soc
        soc -= inst.site_kw * m / 60 / cap * 100
        points.append(Point(v, t, t + m * 60, soc_arr, soc, m, late_here))
        t += m * 60
    if soc < (inst.threshold2 if chargers else inst.threshold_pct) - 1e-6:
        safe = False

    inversions = sum(
        1
        for i, a in enumerate(seg1 + seg2)
        for b in (seg1 + seg2)[i + 1 :]
        if inst.stop(a).index > inst.stop(b).index
    )
    stops = seg1 + seg2
    n = inst.n
    key = (
        1.0 if safe else 0.0,
        float(sum(1 for v in stops if inst.stop(v).must)),
        float(sum(inst.stop(v).priority for v in stops)),
        round(sum(inst.stop(v).priority * minutes[v] for v in stops), 6),
        round(sum((n - inst.stop(v).index) * minutes[v] for v in stops), 6),
        -round(late + inst.reorder_penalty_min * inversions, 4),
        -round(km, 4),
    )
    return Evaluation(seq, safe, minutes, tuple(points), km, late, inversions, key)
