"""The exact search: sets and split first, then the order within them.

The objective (:mod:`busd.planner.model`) is lexicographic, and its first terms
do not depend on the order of the stops, only on *which* stops are served
before and after the (at most one) charger and on how many km each part
drives:

- must-serve count and priority depend on the set alone;
- the minutes on site (priority-weighted, then announced-order-weighted) are
  the allocation of each part's energy (and, before a charger, the time until
  it closes) and grow with that budget, which shrinks with the part's km. So
  for a given split the best order for these terms is the shortest one.

Visit lengths are not searched. Only three lengths of a visit can be in a best
plan: its minimum (never less, or the visit is not kept), its planned length
(more earns nothing), and "just enough": the largest whole number of steps the
energy left over affords. Minutes on site come before lateness and km in the
objective, and are weighted by priority, so any energy a longer visit could
use goes to the most important stop first, up to its planned length, then to
the next (exchanging minutes from a more to a less important stop never
helps); that leaves at most one stop between its minimum and its planned
length in each part. This is what :func:`~busd.planner.model.allocate` hands
out, exactly, for a given set and budget.

Level 1 (sets): Held-Karp over subsets gives the shortest way through every
set of stops, from here (forward) and to the depot (backward), cut where even
minimum visits cannot fit the battery. A part is feasible when its minimum
visits fit its budget at that shortest length. The best must-serve and
priority over all splits comes from a subset-maximum transform (the best
feasible second part inside every complement); then the splits reaching it
are scored on minutes on site, and only those that tie with the best remain.

Level 2 (order, :mod:`busd.planner.exact_orders`): within each remaining split
the visit lengths are fixed, so the order only has to keep each part's km
within what still buys those minutes, and then be as little late and as
little reordered as possible, then short. A depth-first search in announced
order with lower bounds on km (the Held-Karp tables), on inversions still
forced, and on lateness; complete orders are judged by
:class:`~busd.planner.fastkey.Judge`. Splits go cheapest bound first, and the
search stops when even the bound cannot tie the best.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from busd.planner.exact_orders import Better, OrderSearch, Split
from busd.planner.fastkey import Judge
from busd.planner.model import Instance

if TYPE_CHECKING:  # search imports this module
    from busd.planner.search import SearchStats

_INF = math.inf
_BIG = 1 << 16  # must-serve count and priority as one int: must * _BIG + priority
_TOL = 1e-6


class NodeLimit(Exception):
    """The search used up its node budget; the best found so far stands."""


def shortest_paths(dist: tuple[tuple[float, ...], ...]) -> list[list[float]]:
    n = len(dist)
    sp = [list(row) for row in dist]
    for k in range(n):
        sk = sp[k]
        for i in range(n):
            si = sp[i]
            dik = si[k]
            for j in range(n):
                if dik + sk[j] < si[j]:
                    si[j] = dik + sk[j]
    return sp


def _bit_lists(n: int) -> list[list[int]]:
    """The stops (bits) of every set, precomputed: the searches walk them millions of times."""
    lists: list[list[int]] = [[]]
    for mask in range(1, 1 << n):
        low = mask & -mask
        lists.append([*lists[mask ^ low], low.bit_length() - 1])
    return lists


class Exact(OrderSearch):
    """One exact search over an instance (stops are bits: node ``v`` is bit ``v - 1``)."""

    def __init__(
        self, inst: Instance, judge: Judge, stats: SearchStats, node_limit: int
    ) -> None:
        self.inst, self.judge, self.stats, self.limit = inst, judge, stats, node_limit
        n = inst.n
        self.n, self.full = n, (1 << n) - 1
        self.depot = inst.depot
        self.chargers = list(range(n + 1, inst.depot))
        self.d = inst.dist
        self.sp = shortest_paths(inst.dist)
        self.speed = inst.speed_kmh / 60.0  # km per minute
        self.site_min = inst.site_kw / 60  # kWh per minute on site
        self.drive = inst.drive_kwh_per_km
        kwh_pct = inst.capacity_kwh / 100
        self.e_start = (inst.soc_pct - inst.threshold_pct) * kwh_pct
        self.e_full = (inst.charge.max_pct - inst.threshold2) * kwh_pct
        self.in_progress = judge.in_progress
        s = inst.stops
        self.latest = [st.latest for st in s]
        idx = [st.index for st in s]
        # stops announced after / before each one, for the inversions an order forces
        self.later = [sum(1 << j for j in range(n) if idx[j] > idx[i]) for i in range(n)]
        self.earlier = [sum(1 << j for j in range(n) if idx[j] < idx[i]) for i in range(n)]
        self.announced = sorted(range(n), key=lambda i: idx[i])
        self.bits = bits = _bit_lists(n)
        size = 1 << n
        # per set: minimum and planned minutes, must/priority value, minutes on site when
        # every visit gets its planned length
        self.minsum = minsum = [0.0] * size
        self.plsum = plsum = [0.0] * size
        self.value = value = [0] * size
        self.full4 = full4 = [0.0] * size
        self.full5 = full5 = [0.0] * size
        self.min4 = min4 = [0.0] * size
        self.min5 = min5 = [0.0] * size
        # the allocation's order (most important first, then announced earlier) with
        # each stop's room above its minimum
        self.rooms = [(i, s[i].planned_min - s[i].min_min, s[i].priority, n - s[i].index)
                      for i in sorted(range(n), key=lambda i: (-s[i].priority, s[i].index))
                      if s[i].planned_min - s[i].min_min > 0]
        for mask in range(1, size):
            i = bits[mask][-1]
            rest = mask ^ (1 << i)
            st = s[i]
            minsum[mask] = minsum[rest] + st.min_min
            plsum[mask] = plsum[rest] + st.planned_min
            value[mask] = value[rest] + st.must * _BIG + st.priority
            full4[mask] = full4[rest] + st.priority * st.planned_min
            full5[mask] = full5[rest] + (n - st.index) * st.planned_min
            min4[mask] = min4[rest] + st.priority * st.min_min
            min5[mask] = min5[rest] + (n - st.index) * st.min_min

    def _tick(self, k: int = 1) -> None:
        self.stats.nodes += k
        if self.stats.nodes > self.limit:
            raise NodeLimit

    # --- level 1 ---------------------------------------------------------------------

    def _forward(self) -> list[list[float]]:
        """F[mask][i]: shortest km from here through ``mask`` ending at stop ``i``; INF where
        even minimum visits and the shortest way to a charger or home exceed the battery."""
        n, d, sp, depot = self.n, self.d, self.sp, self.depot
        size = 1 << n
        F = [[_INF] * n for _ in range(size)]
        starts = [0] if self.in_progress else range(n)
        for i in starts:
            F[1 << i][i] = d[0][i + 1]
        exit_km = [min([sp[i + 1][depot], *(sp[i + 1][c] for c in self.chargers)])
                   for i in range(n)]
        budget = self.e_start + _TOL
        drive, site = self.drive, self.site_min
        minsum, bits, full = self.minsum, self.bits, self.full
        targets = [depot, *self.chargers]
        # exits[k][mask]: shortest km from here through mask to targets[k] (home, chargers)
        exits = [[_INF] * size for _ in targets]
        if not self.in_progress:
            for k, target in enumerate(targets):
                exits[k][0] = d[0][target]
        for mask in range(1, size):
            row = F[mask]
            base = site * minsum[mask]
            free = bits[full ^ mask]
            for i in bits[mask]:
                f = row[i]
                if f == _INF:
                    continue
                if drive * (f + exit_km[i]) + base > budget:
                    row[i] = _INF
                    continue
                di = d[i + 1]
                for k, target in enumerate(targets):
                    v = f + di[target]
                    if v < exits[k][mask]:
                        exits[k][mask] = v
                for j in free:
                    v = f + di[j + 1]
                    nxt = F[mask | 1 << j]
                    if v < nxt[j]:
                        nxt[j] = v
        self._tick(size)
        self.exits = exits
        return F

    def _backward(self) -> list[list[float]]:
        """B[mask][i]: shortest km from stop ``i`` through ``mask`` (with ``i``) to the depot,
        INF where it cannot end any safe itinerary: neither straight from here on the
        battery as it is, nor from the nearest charger on a full charge, is there energy
        for the way and the minimum visits (a state cut so has only supersets cut too)."""
        n, d, depot = self.n, self.d, self.depot
        size = 1 << n
        B = [[_INF] * n for _ in range(size)]
        banned = 1 if self.in_progress else 0  # a visit under way is never after anything
        for i in range(n):
            if not banned >> i & 1:
                B[1 << i][i] = d[i + 1][depot]
        sp = self.sp
        e_start, e_full = self.e_start + _TOL, self.e_full + _TOL
        from_here = [sp[0][i + 1] for i in range(n)]
        from_charger = [min((sp[c][i + 1] for c in self.chargers), default=_INF)
                        for i in range(n)]
        drive, site, minsum = self.drive, self.site_min, self.minsum
        bits, full = self.bits, self.full
        # entries[k][mask]: shortest km from charger k through mask home
        entries = [[_INF] * size for _ in self.chargers]
        for k, c in enumerate(self.chargers):
            entries[k][0] = d[c][depot]
        from_chargers = [d[c] for c in self.chargers]
        for mask in range(1, size):
            if mask & banned:
                continue
            row = B[mask]
            base = site * minsum[mask]
            free = bits[full ^ (mask | banned)]
            for i in bits[mask]:
                b = row[i]
                if b == _INF:
                    continue
                if (drive * (from_here[i] + b) + base > e_start
                        and drive * (from_charger[i] + b) + base > e_full):
                    row[i] = _INF
                    continue
                for k, dc in enumerate(from_chargers):
                    v = dc[i + 1] + b
                    if v < entries[k][mask]:
                        entries[k][mask] = v
                for j in free:
                    v = d[j + 1][i + 1] + b
                    nxt = B[mask | 1 << j]
                    if v < nxt[j]:
                        nxt[j] = v
        self._tick(size)
        self.entries = entries
        return B

    def _segment_value(self, mask: int, budget: float) -> tuple[float, float] | None:
        """Minutes on site of a part (priority-weighted, announced-weighted), or None: the
        allocation of :func:`~busd.planner.model.allocate`, summed as it goes."""
        spare = budget - self.minsum[mask]
        if spare < -1e-6:
            return None
        if spare >= self.plsum[mask] - self.minsum[mask] + 1e-6:  # all at planned length
            return self.full4[mask], self.full5[mask]
        t4, t5 = self.min4[mask], self.min5[mask]
        step = self.inst.step_min
        for i, room, p, w in self.rooms:
            if not mask >> i & 1:
                continue
            extra = room if spare >= room - 1e-9 else math.floor(spare / step + 1e-9) * step
            if extra > 0:
                t4 += p * extra
                t5 += w * extra
                spare -= extra
        return t4, t5

    def run(self, better: Better) -> None:
        """Calls ``better(seq, key)`` with itineraries that may be the best; it says whether
        the one given is the best so far."""
        inst, judge = self.inst, self.judge
        size = 1 << self.n
        F = self._forward()
        B = self._backward()
        thr, thr2 = inst.threshold_pct, inst.threshold2

        def budget(start_pct: float, km: float) -> float:  # before a charge, or with none
            return judge.budget(start_pct, km, thr)

        soc, full_pct = inst.soc_pct, inst.charge.max_pct
        minsum, value = self.minsum, self.value

        km_n = self.exits[0]
        feas_n = [m for m in range(size)
                  if km_n[m] < _INF and budget(soc, km_n[m]) - minsum[m] >= -1e-6]
        best_p = max((value[m] for m in feas_n), default=-1)
        per_charger = []
        for k, c in enumerate(self.chargers):
            ch = inst.charger(c)
            room = (ch.closes - inst.now) / 60
            km1 = self.exits[k + 1]
            b1 = [min(budget(soc, k), room - k / self.speed) if k < _INF else -_INF for k in km1]
            feas1 = [m for m in range(size) if b1[m] - minsum[m] >= -1e-6]
            km2 = self.entries[k]
            b2 = [judge.budget(full_pct, k, thr2) if k < _INF else -_INF for k in km2]
            best2 = [value[m] if b2[m] - minsum[m] >= -1e-6 else -1 for m in range(size)]
            by_value: dict[int, list[int]] = {}
            for m in range(size):
                if best2[m] >= 0:
                    by_value.setdefault(best2[m], []).append(m)
            # the best feasible part 2 inside every set (a subset-maximum transform)
            bit = 1
            while bit < size:
                for lo in range(0, size, 2 * bit):
                    hi = lo + bit
                    best2[hi : hi + bit] = map(max, best2[lo:hi], best2[hi : hi + bit])
                bit <<= 1
            self._tick(size)
            for m in feas1:
                rest = best2[self.full ^ m]
                if rest >= 0 and value[m] + rest > best_p:
                    best_p = value[m] + rest
            per_charger.append((c, km1, b1, feas1, km2, b2, best2, by_value))
        if best_p < 0:
            return  # no safe itinerary at all
        # Splits reaching the best must-serve and priority, with their minutes on site:
        # (part 1, charger or 0, part 2, km1, km2, budget1, budget2, minutes value)
        splits: list[Split] = []
        full4 = self.full4
        floor = -_INF  # best minutes on site (priority-weighted) found so far, less noise
        for m in feas_n:
            if value[m] == best_p:
                v = self._segment_value(m, budget(soc, km_n[m]))
                if v is not None and v[0] >= floor:
                    floor = max(floor, v[0] - _TOL)
                    splits.append((m, 0, 0, km_n[m], 0.0, budget(soc, km_n[m]), 0.0, v))
        for c, km1, b1, feas1, km2, b2, best2, by_value in per_charger:
            cache2: dict[int, tuple[float, float] | None] = {}
            for m1 in feas1:
                rest = best2[self.full ^ m1]
                if rest < 0 or value[m1] + rest != best_p:
                    continue
                v1 = self._segment_value(m1, b1[m1])
                if v1 is None:
                    continue
                for m2 in by_value.get(best_p - value[m1], ()):
                    if m2 & m1 or v1[0] + full4[m2] < floor:
                        continue  # overlaps, or cannot reach the best even at planned length
                    if m2 not in cache2:
                        cache2[m2] = self._segment_value(m2, b2[m2])
                    v2 = cache2[m2]
                    if v2 is not None and v1[0] + v2[0] >= floor:
                        floor = max(floor, v1[0] + v2[0] - _TOL)
                        splits.append((m1, c, m2, km1[m1], km2[m2], b1[m1], b2[m2],
                                       (v1[0] + v2[0], v1[1] + v2[1])))
            self._tick(len(feas1))
        top = max(s[7] for s in splits)
        # Ties within rounding noise stay: the judge's exact key decides among them.
        keep = [s for s in splits
                if s[7][0] >= top[0] - _TOL and (s[7][0] < top[0] or s[7][1] >= top[1] - _TOL)]
        self._orders(keep, F, B, better, top)
