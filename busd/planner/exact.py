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

Visit lengths are not searched: for a given split and km the allocation is
already optimal. That is why only three lengths of a visit can matter: its
minimum (always kept), its planned length (nothing more is wanted), and the
"just enough" length that the energy left over reaches, in whole steps; they
are what :func:`~busd.planner.model.allocate` hands out.

Level 1 (sets): Held-Karp over subsets gives the shortest way through every
set of stops, from here (forward) and to the depot (backward), cut where even
minimum visits cannot fit the battery. A part is feasible when its minimum
visits fit its budget at that shortest length. The best must-serve and
priority over all splits comes from a subset-maximum transform (the best
feasible second part inside every complement); then the splits reaching it
are scored on minutes on site, and only those that tie with the best remain.

Level 2 (order): within each remaining split the visit lengths are fixed (an
order that drives further gets a smaller budget, and a smaller budget that
still gives the same minutes on site gives the same allocation), so the order
only has to keep each part's km within the length that still buys those
minutes, and then be as little late and as little reordered as possible,
then short. A depth-first search in announced order with lower bounds on km
(the Held-Karp tables), on inversions still forced, and on lateness, judged
complete with :class:`~busd.planner.fastkey.Judge`. Splits go cheapest bound
first, and stop when even the bound cannot tie the best.
"""

from __future__ import annotations

import math

from busd.planner.fastkey import Judge
from busd.planner.model import Instance, charge_hours

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


class Exact:
    """One exact search over an instance (stops are bits: node ``v`` is bit ``v - 1``)."""

    def __init__(self, inst: Instance, judge: Judge, stats, node_limit: int) -> None:  # type: ignore[no-untyped-def]
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
        self.e_full = (inst.charge.max_pct - inst.threshold_pct) * kwh_pct
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
        INF where minimum visits exceed the larger of the two battery loads."""
        n, d, depot = self.n, self.d, self.depot
        size = 1 << n
        B = [[_INF] * n for _ in range(size)]
        banned = 1 if self.in_progress else 0  # a visit under way is never after anything
        for i in range(n):
            if not banned >> i & 1:
                B[1 << i][i] = d[i + 1][depot]
        budget = max(self.e_full, self.e_start) + _TOL
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
                if drive * b + base > budget:
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

    def run(self, better) -> None:  # type: ignore[no-untyped-def]
        """Calls ``better(seq, key)`` with itineraries that may be the best; it says whether
        the one given is the best so far."""
        inst, judge = self.inst, self.judge
        size = 1 << self.n
        F = self._forward()
        B = self._backward()
        budget = judge.budget
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
            b2 = [budget(full_pct, k) if k < _INF else -_INF for k in km2]
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
        splits = []
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

    # --- level 2 ---------------------------------------------------------------------

    def _limit_km(self, start_pct: float, minutes: float, closes: float | None) -> float:
        """The most km a part may drive and still afford ``minutes`` on site (a little
        generous: the judge has the last word)."""
        inst = self.inst
        need = minutes - 1e-6
        spare = (start_pct - inst.threshold_pct) / 100 * inst.capacity_kwh
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
        tables = []
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

    def _orders(self, splits, F, B, better, top) -> None:  # type: ignore[no-untyped-def]
        """The splits cheapest bound first; each searched unless its bound cannot tie."""
        inst = self.inst
        pen = inst.reorder_penalty_min
        earlier, bits, speed, minsum = self.earlier, self.bits, self.speed, self.minsum
        late = self._window_late()
        charger_row = {c: k + 1 for k, c in enumerate(self.chargers)}
        ranked = []
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
        self.best: tuple[float, float] | None = None  # (rounded disruption, rounded km)
        for lb, km_lb, split in ranked:
            if self._cut(lb, km_lb):
                break  # sorted: no later split can do better
            self._tick()
            prepared = self._prepare(split, lb)
            if prepared is not None and not self._cut(prepared[0], km_lb):
                self._search(*prepared[1:], F, B, better, self.later, top)

    def _prepare(self, split, lb):  # type: ignore[no-untyped-def]
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
            k1 = self._limit_km(inst.soc_pct, on1, None)
            t_home = inst.now + (km1 / speed + on1) * 60
            sharp = self._window_late_one(m1) + max(0.0, (t_home - inst.return_by) / 60)
            return (max(lb, sharp), m1, c, m2, km1, k1, _INF, minutes)
        ch = inst.charger(c)
        k1 = self._limit_km(inst.soc_pct, on1, ch.closes)
        k2 = self._limit_km(inst.charge.max_pct, on2, None)
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

    def _charge_lb(self, c, m1, m2, km1, km2, minutes) -> float:  # type: ignore[no-untyped-def]
        """Fewest minutes at the charger: the shortest parts charge least."""
        inst = self.inst
        cap = inst.capacity_kwh
        used1 = self.drive * km1 + self.site_min * sum([minutes[i] for i in self.bits[m1]])
        soc_at = inst.soc_pct - used1 / cap * 100
        need2 = self.drive * km2 + self.site_min * sum([minutes[i] for i in self.bits[m2]])
        cp = inst.charge
        target = min(cp.max_pct, inst.threshold_pct + need2 / cap * 100 + cp.buffer_pct)
        ch = inst.charger(c)
        hours = charge_hours(inst, ch.power_kw, soc_at, target)
        overhead = cp.overhead_min if ch.overhead_min is None else ch.overhead_min
        return hours * 60 + overhead if hours > 1e-9 else 0.0

    def _cut(self, disruption_lb: float, km_lb: float) -> bool:
        if self.best is None:
            return False
        r = round(disruption_lb, 4)
        return r > self.best[0] or (r == self.best[0] and round(km_lb, 4) > self.best[1])

    def _search(self, m1, c, m2, km1_min, k1, k2, minutes, F, B, better, later, top) -> None:  # type: ignore[no-untyped-def]
        """Orders of one split, announced order first (t and lateness are exact before the
        charger, lower bounds after it; the judge scores every complete one)."""
        inst, judge = self.inst, self.judge
        d, depot, speed, sp, bits = self.d, self.depot, self.speed, self.sp, self.bits
        pen = inst.reorder_penalty_min
        return_by = inst.return_by
        latest, announced, earlier = self.latest, self.announced, self.earlier
        timed = [i for i in range(self.n) if latest[i] is not None]

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

        def visit(seq, last, vis, rem1, km, t, late, inv, on1, phase2, km1=0.0) -> None:  # type: ignore[no-untyped-def]
            # on1: minutes on site still to come in this part; km1: where part 2 began
            self._tick()
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
            for i in timed:
                if rem >> i & 1:
                    arrive = t + spl[i + 1] / speed * 60
                    if arrive > latest[i]:
                        lb += (arrive - latest[i]) / 60
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
