"""The objective of :func:`busd.planner.model.evaluate`, without building the evaluation.

The searches judge thousands of itineraries and keep one; building ``Point``
objects and minute dictionaries for each costs more than the judging. The
:class:`Judge` does the same arithmetic in the same order (so the keys are
equal to the last bit, which the tests check against ``evaluate``) on
precomputed flat lists, and returns only the key. The chosen itinerary is
then evaluated once with ``evaluate`` for its points.
"""

from __future__ import annotations

import math

from busd.planner.model import Instance, charge_hours

_EPS = 1e-9


class Judge:
    def __init__(self, inst: Instance) -> None:
        self.inst = inst
        n = inst.n
        self.n = n
        self.depot = inst.depot
        self.dist = inst.dist
        self.speed = inst.speed_kmh / 60.0
        self.cap = inst.capacity_kwh
        self.drive = inst.drive_kwh_per_km
        self.site_kw = inst.site_kw
        self.thr = inst.threshold_pct
        self.thr2 = inst.threshold2
        self.pen = inst.reorder_penalty_min
        s = inst.stops
        # index by node (0 unused); chargers and the depot are past n
        self.min_min = [0.0] + [st.min_min for st in s]
        self.planned = [0.0] + [st.planned_min for st in s]
        self.prio = [0] + [st.priority for st in s]
        self.must = [0] + [int(st.must) for st in s]
        self.index = [0] + [st.index for st in s]
        self.latest: list[float | None] = [None, *(st.latest for st in s)]
        self.in_progress = bool(s) and s[0].in_progress
        # the allocation's order: most important first, then announced earlier
        order = sorted(range(1, n + 1), key=lambda v: (-self.prio[v], self.index[v]))
        self.rank = [0] * (n + 1)
        for r, v in enumerate(order):
            self.rank[v] = r

    def budget(self, start_pct: float, km: float, line_pct: float) -> float:
        """Minutes on site the energy allows (``model._budget_min``)."""
        spare_kwh = (start_pct - line_pct) / 100 * self.cap
        spare_kwh -= self.drive * km
        if self.site_kw <= _EPS:
            return math.inf if spare_kwh >= -_EPS else -math.inf
        return spare_kwh / self.site_kw * 60

    def allocate(self, nodes: list[int], budget_min: float) -> dict[int, float] | None:
        """``model.allocate`` (same order of operations)."""
        min_min = self.min_min
        minutes = {v: min_min[v] for v in nodes}
        spare = budget_min - sum(minutes.values())
        if spare < -1e-6:
            return None
        step = self.inst.step_min
        planned = self.planned
        for v in sorted(nodes, key=self.rank.__getitem__):
            room = planned[v] - min_min[v]
            if room <= 0:
                continue
            extra = room if spare >= room - 1e-9 else math.floor(spare / step + 1e-9) * step
            if extra > 0:
                minutes[v] += extra
                spare -= extra
        return minutes

    def key(self, seq: tuple[int, ...]) -> tuple[float, ...]:
        """``evaluate(inst, seq).key``."""
        inst = self.inst
        n = self.n
        depot = self.depot
        d = self.dist
        cut = len(seq)
        n_chargers = 0
        for i, v in enumerate(seq):
            if n < v < depot:
                if not n_chargers:
                    cut = i
                n_chargers += 1
        legs = []
        prev = 0
        for v in seq:
            legs.append(d[prev][v])
            prev = v
        legs.append(d[prev][depot])
        km = sum(legs)
        km1 = sum(legs[: cut + 1])
        speed = self.speed
        seg1 = list(seq[:cut])
        seg2 = list(seq[cut + 1 :])
        safe = n_chargers <= 1
        budget1 = self.budget(inst.soc_pct, km1, self.thr)
        budget2 = 0.0
        if n_chargers:
            ch = inst.charger(seq[cut])
            latest_start = (ch.closes - inst.now) / 60 - km1 / speed
            budget1 = min(budget1, latest_start)
            budget2 = self.budget(inst.charge.max_pct, km - km1, self.thr2)
        m1 = self.allocate(seg1, budget1)
        m2 = self.allocate(seg2, budget2) if n_chargers else {}
        min_min = self.min_min
        if m1 is None or m2 is None:
            safe = False
            m1 = m1 or {v: min_min[v] for v in seg1}
            m2 = m2 or {v: min_min[v] for v in seg2}
        minutes = {**m1, **m2}
        if self.in_progress and (not seq or seq[0] != 1):
            safe = False

        cap = self.cap
        drive = self.drive
        site_kw = self.site_kw
        thr = self.thr
        t = inst.now
        soc = inst.soc_pct
        late = 0.0
        drive2 = drive * (km - km1)
        site2 = site_kw * sum(minutes[v] for v in seg2) / 60
        latest = self.latest
        for leg, v in zip(legs, [*seq, depot], strict=False):
            t += leg / speed * 60
            soc -= drive * leg / cap * 100
            if v == depot:
                late += max(0.0, (t - inst.return_by) / 60)
                break
            if v > n:
                ch = inst.charger(v)
                if soc < thr - 1e-6:
                    safe = False
                cp = inst.charge
                target = self.thr2 + (drive2 + site2) / cap * 100 + cp.buffer_pct
                target = min(cp.max_pct, target)
                wait = max(0.0, ch.opens - t)
                hours = charge_hours(inst, ch.power_kw, soc, target)
                overhead = cp.overhead_min if ch.overhead_min is None else ch.overhead_min
                charging_min = wait / 60 + (hours * 60 + overhead if hours else 0.0)
                t += charging_min * 60
                soc = max(soc, target)
                continue
            lat = latest[v]
            late += max(0.0, (t - lat) / 60) if lat is not None else 0.0
            m = minutes[v]
            soc -= site_kw * m / 60 / cap * 100
            t += m * 60
        if soc < (self.thr2 if n_chargers else thr) - 1e-6:
            safe = False
        stops = seg1 + seg2
        index = self.index
        inversions = 0
        for i, a in enumerate(stops):
            ia = index[a]
            for b in stops[i + 1 :]:
                if ia > index[b]:
                    inversions += 1
        prio = self.prio
        return (
            1.0 if safe else 0.0,
            float(sum(1 for v in stops if self.must[v])),
            float(sum(prio[v] for v in stops)),
            round(sum(prio[v] * minutes[v] for v in stops), 6),
            round(sum((n - index[v]) * minutes[v] for v in stops), 6),
            -round(late + self.pen * inversions, 4),
            -round(km, 4),
        )
