"""Level 2 of the exact search: the order within a split (see :mod:`busd.planner.exact`).

:class:`OrderSearch` is the half of :class:`~busd.planner.exact.Exact` that,
given the splits tied at the best must-serve, priority and minutes on site,
finds the order with the least disruption (lateness plus the reorder cost),
then the fewest km. Within a split the visit lengths are fixed: an order
that drives further leaves a smaller budget, and a smaller budget that still
buys the same minutes on site buys them with the same allocation. So an
order only has to keep each part within the km that still affords them.

Times and lateness are exact up to the charger and lower bounds after it (the
charging time depends on the km of the part after it, known only at the end),
so every complete order is scored by the judge, which has the last word.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from busd.planner.fastkey import Judge
from busd.planner.model import Instance, charge_hours

if TYPE_CHECKING:  # search imports exact, which imports this module
    from busd.planner.search import SearchStats

_INF = math.inf
_TOL = 1e-6

# (part 1, charger or 0, part 2, km1, km2, budget1, budget2, minutes on site value)
Split = tuple[int, int, int, float, float, float, float, tuple[float, float]]
# (sharper bound, part 1, charger or 0, part 2, km1, km limit 1, km limit 2, minutes per stop)
Prepared = tuple[float, int, int, int, float, float, float, list[float]]
# ``better(seq, key)``: whether the itinerary given is the best so far
Better = Callable[[tuple[int, ...], tuple[float, ...]], bool]


class OrderSearch:
    """Mixed into :class:`~busd.planner.exact.Exact`, whose attributes it reads.

    The attributes are declared here (annotations only: no class attributes, so
    lookups in the search loops are unchanged) and set by ``Exact.__init__``.
    """

    inst: Instance
    judge: Judge
    stats: SearchStats
    n: int
    depot: int
    chargers: list[int]
    d: tuple[tuple[float, ...], ...]  # km between nodes
    sp: list[list[float]]  # shortest km between nodes
    speed: float  # km per minute
    site_min: float  # kWh per minute on site
    drive: float  # kWh per km
    in_progress: bool
    latest: list[float | None]  # per stop: end of its arrival window
    later: list[int]  # per stop: the set announced after it
    earlier: list[int]  # per stop: the set announced before it
    announced: list[int]  # the stops in announced order
    bits: list[list[int]]  # per set: its stops
    minsum: list[float]  # per set: its minimum minutes on site
    best: tuple[float, float] | None  # (rounded disruption, rounded km) of the best order

    def _tick(self, k: int = 1) -> None:
        raise NotImplementedError  # Exact counts nodes against its budget

    def _limit_km(self, start_pct: float, minutes: float, closes: float | None,
                  line_pct: float) -> float:
        """The most km a part may drive and still afford ``minutes`` on site (a little
        generous: the judge has the last word)."""
        inst = self.inst
        need = minutes - 1e-6
        spare = (start_pct - line_pct) / 100 * inst.capacity_kwh
        if inst.site_kw > 1e-9:
            spare -= need * inst.site_kw / 60
        limit = spare / self.drive + 1e-6 if self.drive > 1e-12 else _INF
        if closes is not None:
            limit = min(limit, ((closes - inst.now) / 60 - need) * self.speed + 1e-6)
        return limit

    def _window_late(self) -> list[list[float]]:
        """Per set, the least lateness at arrival windows its stops can have: [0] as part 1
        (straight from here), [k + 1] as part 2 after charger k (straight from it, left
        no earlier than reachable and open)."""
        inst, n, sp, speed = self.inst, self.n, self.sp, self.speed
        size = 1 << n
        tables: list[list[float]] = []
        starts = [(0, inst.now)] + [
            (c, max(inst.now + sp[0][c] / speed * 60, inst.charger(c).opens))
            for c in self.chargers
        ]
        for node, t0 in starts:
            per_stop = [
                max(0.0, (t0 + sp[node][i + 1] / speed * 60 - lat) / 60) if lat is not None
                else 0.0
                for i, lat in enumerate(self.latest)
            ]
            table = [0.0] * size
            for mask in range(1, size):
                i = self.bits[mask][-1]
                table[mask] = table[mask ^ (1 << i)] + per_stop[i]
            tables.append(table)
        return tables

    def _orders(
        self,
        splits: list[Split],
        F: list[list[float]],
        B: list[list[float]],
        better: Better,
        top: tuple[float, float],
    ) -> None:
        """The splits cheapest bound first; each searched unless its bound cannot tie."""
        inst = self.inst
        pen = inst.reorder_penalty_min
        earlier, bits, speed, minsum = self.earlier, self.bits, self.speed, self.minsum
        late = self._window_late()
        charger_row = {c: k + 1 for k, c in enumerate(self.chargers)}
        ranked: list[tuple[float, float, Split]] = []
        for split in splits:
            m1, c, m2, km1, km2 = split[:5]
            # inversions the split forces: a stop after the charger announced before one
            # before it
            forced = sum([(m2 & earlier[i]).bit_count() for i in bits[m1]])
            t_home = inst.now + ((km1 + km2) / speed + minsum[m1 | m2]) * 60
            lb = (pen * forced + late[0][m1] + (late[charger_row[c]][m2] if c else 0.0)
                  + max(0.0, (t_home - inst.return_by) / 60))
            ranked.append((lb, km1 + km2, split))
        ranked.sort(key=lambda r: (r[0], r[1]))
        self.best = None
        for lb, km_lb, split in ranked:
            if self._cut(lb, km_lb):
                break  # sorted: no later split can do better
            self._tick()
            prepared = self._prepare(split, lb)
            if prepared is not None and not self._cut(prepared[0], km_lb):
                self._search(*prepared[1:], F, B, better, self.later, top)

    def _prepare(self, split: Split, lb: float) -> Prepared | None:
        """Visit lengths, km limits and a sharper bound (with the charging time) of a split."""
        inst, judge, n, speed = self.inst, self.judge, self.n, self.speed
        m1, c, m2, km1, km2, b1, b2, _v = split
        a1 = judge.allocate([i + 1 for i in self.bits[m1]], b1)
        a2 = judge.allocate([i + 1 for i in self.bits[m2]], b2) if c else {}
        if a1 is None or a2 is None:
            return None
        minutes = [0.0] * n
        for v, mins in (*a1.items(), *a2.items()):
            minutes[v - 1] = mins
        on1, on2 = sum(a1.values()), sum(a2.values())
        if not c:
            k1 = self._limit_km(inst.soc_pct, on1, None, inst.threshold_pct)
            t_home = inst.now + (km1 / speed + on1) * 60
            sharp = self._window_late_one(m1) + max(0.0, (t_home - inst.return_by) / 60)
            return (max(lb, sharp), m1, c, m2, km1, k1, _INF, minutes)
        ch = inst.charger(c)
        k1 = self._limit_km(inst.soc_pct, on1, ch.closes, inst.threshold_pct)
        k2 = self._limit_km(inst.charge.max_pct, on2, None, inst.threshold2)
        ch_min = self._charge_lb(c, m1, m2, km1, km2, minutes)
        leave = max(inst.now + (km1 / speed + on1) * 60, ch.opens) + ch_min * 60
        t_home = leave + (km2 / speed + on2) * 60
        late2 = 0.0
        for i in self.bits[m2]:
            lat = self.latest[i]
            if lat is not None:
                late2 += max(0.0, (leave + self.sp[c][i + 1] / speed * 60 - lat) / 60)
        forced = sum([(m2 & self.earlier[i]).bit_count() for i in self.bits[m1]])
        sharp = (inst.reorder_penalty_min * forced + self._window_late_one(m1) + late2
                 + max(0.0, (t_home - inst.return_by) / 60))
        return (max(lb, sharp), m1, c, m2, km1, k1, k2, minutes)

    def _window_late_one(self, m1: int) -> float:
        inst, sp, speed = self.inst, self.sp, self.speed
        total = 0.0
        for i in self.bits[m1]:
            lat = self.latest[i]
            if lat is not None:
                total += max(0.0, (inst.now + sp[0][i + 1] / speed * 60 - lat) / 60)
        return total

    def _charge_lb(
        self, c: int, m1: int, m2: int, km1: float, km2: float, minutes: list[float]
    ) -> float:
        """Fewest minutes at the charger: the shortest parts charge least."""
        inst = self.inst
        cap = inst.capacity_kwh
        used1 = self.drive * km1 + self.site_min * sum([minutes[i] for i in self.bits[m1]])
        soc_at = inst.soc_pct - used1 / cap * 100
        need2 = self.drive * km2 + self.site_min * sum([minutes[i] for i in self.bits[m2]])
        cp = inst.charge
        target = min(cp.max_pct, inst.threshold2 + need2 / cap * 100 + cp.buffer_pct)
        ch = inst.charger(c)
        hours = charge_hours(inst, ch.power_kw, soc_at, target)
        overhead = cp.overhead_min if ch.overhead_min is None else ch.overhead_min
        return hours * 60 + overhead if hours > 1e-9 else 0.0

    def _cut(self, disruption_lb: float, km_lb: float) -> bool:
        if self.best is None:
            return False
        r = round(disruption_lb, 4)
        return r > self.best[0] or (r == self.best[0] and round(km_lb, 4) > self.best[1])

    def _search(
        self,
        m1: int,
        c: int,
        m2: int,
        km1_min: float,
        k1: float,
        k2: float,
        minutes: list[float],
        F: list[list[float]],
        B: list[list[float]],
        better: Better,
        later: list[int],
        top: tuple[float, float],
    ) -> None:
        """Orders of one split, announced order first (t and lateness are exact before the
        charger, lower bounds after it; the judge scores every complete one)."""
        inst, judge = self.inst, self.judge
        d, depot, speed, sp, bits = self.d, self.depot, self.speed, self.sp, self.bits
        pen = inst.reorder_penalty_min
        return_by = inst.return_by
        latest, announced, earlier = self.latest, self.announced, self.earlier
        # the stops with an arrival window, with its end (the loop below reads both)
        timed = [(i, lat) for i, lat in enumerate(latest) if lat is not None]

        def home_km(last: int, rem: int) -> float:
            """Shortest km from node ``last`` through ``rem`` home (exact, from B)."""
            if not rem:
                return d[last][depot]
            row, dl = B[rem], d[last]
            return min([dl[i + 1] + row[i] for i in bits[rem]])

        km2_min = home_km(c, m2) if c else 0.0
        ch_min = self._charge_lb(c, m1, m2, km1_min, km2_min, minutes) if c else 0.0
        opens = inst.charger(c).opens if c else 0.0
        on_site2 = sum([minutes[i] for i in bits[m2]])

        labels: dict[tuple[int, int], list[tuple[float, float, float]]] = {}

        def dominated(state: tuple[int, int], t: float, km: float, cost: float) -> bool:
            """Same stops served, standing at the same place: a beginning that left no later,
            drove no further and disrupted no more does at least as well with every
            continuation, so this one can go. Only before the charger, where all three are
            exact (after it, times wait for the charging time, known at the end)."""
            seen = labels.get(state)
            if seen is None:
                labels[state] = [(t, km, cost)]
                return False
            for lt, lk, lc in seen:
                if lt <= t and lk <= km and lc <= cost:
                    self.stats.dominated += 1
                    return True
            seen.append((t, km, cost))
            return False

        def visit(
            seq: tuple[int, ...],
            last: int,
            vis: int,
            rem1: int,
            km: float,
            t: float,
            late: float,
            inv: int,
            on1: float,
            phase2: bool,
            km1: float = 0.0,
        ) -> None:
            # on1: minutes on site still to come in this part; km1: where part 2 began
            self._tick()
            if not phase2 and dominated((vis, last), t, km, late + pen * inv):
                return
            rem = rem1 if phase2 else rem1 | m2
            future_inv = 0
            for i in bits[rem]:
                future_inv += (vis & later[i]).bit_count()
            if phase2 or not c:
                left = home_km(last, rem)
                km_lb = km + left
                if km_lb - km1 > (k2 if phase2 else k1):
                    return
                t_home = t + (left / speed + on1) * 60
            else:
                left1 = sp[last][c]
                if last:
                    f = F[vis][last - 1]
                    if f == _INF:
                        return  # this beginning cannot even reach a charger
                    # The rest of part 1 is at least what the shortest one still had to go.
                    left1 = max(left1, km1_min - f)
                elif vis == 0:
                    left1 = max(left1, km1_min)
                if km + left1 > k1:
                    return
                km_lb = km + left1 + km2_min
                arrive_c = t + (left1 / speed + on1) * 60
                t_home = max(arrive_c, opens) + (ch_min + km2_min / speed + on_site2) * 60
                for i in bits[rem1]:
                    future_inv += (m2 & earlier[i]).bit_count()
            lb = late + pen * (inv + future_inv)
            if t_home > return_by:
                lb += (t_home - return_by) / 60
            spl = sp[last]
            for i, lat_i in timed:
                if rem >> i & 1:
                    arrive = t + spl[i + 1] / speed * 60
                    if arrive > lat_i:
                        lb += (arrive - lat_i) / 60
            if self._cut(lb, km_lb):
                return
            if not rem and (phase2 or not c):
                key = judge.key(seq)
                if key[0] and better(seq, key) and abs(key[3] - top[0]) <= _TOL \
                        and abs(key[4] - top[1]) <= _TOL:
                    # Only an itinerary with the best minutes on site may cut others by
                    # disruption (one that drove too far for them is merely judged).
                    self.best = (-key[5], -key[6])
                return
            if not phase2 and c and not rem1:
                leg = d[last][c]
                # at the charger: the arrival and part 1's km set the charging
                if dominated((vis, c), t + leg / speed * 60, km + leg, late + pen * inv):
                    return
                t_c = max(t + leg / speed * 60, opens) + ch_min * 60
                visit((*seq, c), c, vis, m2, km + leg, t_c, late, inv, on_site2, True,
                      km + leg)
                return
            dl = d[last]
            for i in announced:
                if not rem1 >> i & 1:
                    continue
                leg = dl[i + 1]
                ta = t + leg / speed * 60
                lat = latest[i]
                step_late = max(0.0, (ta - lat) / 60) if lat is not None else 0.0
                visit((*seq, i + 1), i + 1, vis | 1 << i, rem1 ^ 1 << i, km + leg,
                      ta + minutes[i] * 60, late + step_late,
                      inv + (vis & later[i]).bit_count(), on1 - minutes[i], phase2, km1)

        on_site1 = sum([minutes[i] for i in bits[m1]])
        if self.in_progress:
            # the visit under way comes first
            leg = d[0][1]
            ta = inst.now + leg / speed * 60
            lat = latest[0]
            step_late = max(0.0, (ta - lat) / 60) if lat is not None else 0.0
            visit((1,), 1, 1, m1 ^ 1, leg, ta + minutes[0] * 60, step_late, 0,
                  on_site1 - minutes[0], False)
        else:
            visit((), 0, 0, m1, 0.0, inst.now, 0.0, 0, on_site1, False)
