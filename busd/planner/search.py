"""Finding the best itinerary: exact branch and bound, and a heuristic beyond.

Both maximise :func:`busd.planner.model.evaluate`'s key, so "best" has one
definition. Visit lengths are not searched: for a given sequence the
allocation in :func:`~busd.planner.model.allocate` is already optimal.

Exact (up to ``exact_max_stops`` remaining stops): depth-first over
sequences (every subset in every order, with at most one charger inserted
anywhere), each prefix being also a complete candidate (then home). The
incumbent starts from the heuristic. A branch is cut when

- its segment cannot reach the depot (or, while no charger has been used, a
  charger) above the threshold even with every visit at its minimum and the
  shortest possible way home (shortest paths, so plan leg lengths that break
  the triangle inequality are still safe to bound with);
- a charger on it would be reached after closing, even with minimum visits;
- the must-serve count and priority it could still reach are below the
  incumbent's: a fractional knapsack of the unvisited stops' minimum visit
  energy against what is left in the battery (plus one full charge while a
  charger is still possible);
- it can at best tie the incumbent on those and must then serve every
  remaining stop, but the lateness and reorder cost it has already incurred
  (visits at their minimum, inversions it forces on the stops still to come)
  exceed the incumbent's.

Heuristic (more stops): announced order; while unsafe, try every charger at
every position, else drop the least important stop (never a must-serve one
while another can go); then re-insert dropped stops at their best position
and relocate single stops while the key improves. Polynomial: about n³
evaluations in the worst case.

Ties keep the first itinerary found, and the exploration order is fixed, so
the same instance always gives the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from busd.planner.model import Evaluation, Instance, evaluate

_EPS = 1e-9


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


@dataclass
class SearchStats:
    nodes: int = 0
    dominated: int = 0
    evaluations: int = 0
    exact: bool = True


def _better(a: Evaluation, b: Evaluation | None) -> bool:
    return b is None or a.key > b.key


class _NodeLimit(Exception):
    pass


def best_plan(
    inst: Instance,
    *,
    exact_max_stops: int = 10,
    node_limit: int = 60_000,
    stats: SearchStats | None = None,
) -> Evaluation:
    """The best itinerary under the model (safe whenever any safe one exists).

    The exact search stops after ``node_limit`` nodes and keeps the best found
    so far (never worse than the heuristic); ``stats.exact`` says whether it
    finished.
    """
    stats = stats if stats is not None else SearchStats()
    incumbent = heuristic(inst, stats)
    if inst.n <= exact_max_stops:
        bnb = _BranchAndBound(inst, incumbent, stats, node_limit)
        try:
            return bnb.run()
        except _NodeLimit:
            stats.exact = False
            return bnb.best
    stats.exact = False
    return incumbent


# --- heuristic -----------------------------------------------------------------------


def heuristic(inst: Instance, stats: SearchStats | None = None) -> Evaluation:
    stats = stats if stats is not None else SearchStats()

    def ev(seq: tuple[int, ...]) -> Evaluation:
        stats.evaluations += 1
        return evaluate(inst, seq)

    chargers = [inst.n + 1 + i for i in range(len(inst.chargers))]
    seq = tuple(range(1, inst.n + 1))
    best = ev(seq)
    dropped: list[int] = []
    while not best.safe:
        charged = _best_charge(inst, seq, chargers, ev)
        if charged is not None and charged.safe:
            best = charged
            break
        removable = [v for v in seq if not inst.stop(v).in_progress]
        if not removable:
            break
        # least important first: optional before must-serve, low priority, announced late
        victim = min(
            removable,
            key=lambda v: (inst.stop(v).must, inst.stop(v).priority, -inst.stop(v).index),
        )
        seq = tuple(v for v in seq if v != victim)
        dropped.append(victim)
        best = ev(seq)
    if not best.safe:
        return best
    # Improve: re-insert dropped stops, relocate single stops, add/move a charger.
    improved = True
    while improved:
        improved = False
        current = best.seq
        candidates: list[tuple[int, ...]] = []
        missing = [v for v in range(1, inst.n + 1) if v not in current]
        for v in missing:
            for pos in range(len(current) + 1):
                candidates.append((*current[:pos], v, *current[pos:]))
        for i, v in enumerate(current):
            rest = current[:i] + current[i + 1 :]
            candidates.append(rest)
            for pos in range(len(rest) + 1):
                if pos != i:
                    candidates.append((*rest[:pos], v, *rest[pos:]))
        if not any(inst.is_charger(v) for v in current):
            for c in chargers:
                for pos in range(len(current) + 1):
                    candidates.append((*current[:pos], c, *current[pos:]))
        for cand in candidates:
            if inst.stops and inst.stops[0].in_progress and (not cand or cand[0] != 1):
                continue
            e = ev(cand)
            if e.key > best.key:
                best, improved = e, True
    return best


def _best_charge(inst, seq, chargers, ev) -> Evaluation | None:  # type: ignore[no-untyped-def]
    best: Evaluation | None = None
    start = 1 if inst.stops and inst.stops[0].in_progress and seq and seq[0] == 1 else 0
    for c in chargers:
        for pos in range(start, len(seq) + 1):
            e = ev((*seq[:pos], c, *seq[pos:]))
            if _better(e, best):
                best = e
    return best


# --- exact -----------------------------------------------------------------------------


class _BranchAndBound:
    def __init__(
        self, inst: Instance, incumbent: Evaluation, stats: SearchStats, node_limit: int
    ) -> None:
        self.node_limit = node_limit
        self.labels: dict[tuple[int, int], list[tuple[float, int, float]]] = {}
        self.inst = inst
        self.best = incumbent
        self.stats = stats
        self.sp = shortest_paths(inst.dist)
        self.depot = inst.depot
        n = inst.n
        self.stop_nodes = list(range(1, n + 1))
        self.charger_nodes = list(range(n + 1, n + 1 + len(inst.chargers)))
        kwh_pct = inst.capacity_kwh / 100
        self.site_kwh_min = inst.site_kw / 60  # kWh per minute on site
        self.drive = inst.drive_kwh_per_km
        self.e_start = (inst.soc_pct - inst.threshold_pct) * kwh_pct
        self.e_full = (inst.charge.max_pct - inst.threshold_pct) * kwh_pct
        self.speed = inst.speed_kmh / 60
        s = inst.stops
        self.min_kwh = [0.0] + [st.min_min * self.site_kwh_min for st in s]
        self.must = [False] + [st.must for st in s]
        self.prio = [0] + [st.priority for st in s]
        self.min_min = [0.0] + [st.min_min for st in s]
        self.planned = [0.0] + [st.planned_min for st in s]
        self.serv_full = sum(st.priority * st.planned_min for st in s)
        self.tb_full = sum((n - st.index) * st.planned_min for st in s)
        # cheapest way into each node from anywhere but itself and the depot
        nodes = range(inst.depot + 1)
        self.min_in = [
            min((self.sp[k][j] for k in nodes if k not in (j, inst.depot)), default=0.0)
            for j in nodes
        ]
        self.min_in_depot = self.min_in[inst.depot]
        self.latest: list[float | None] = [None, *(st.latest for st in s)]
        # knapsack order: must-serve by cheapest, priority by density
        self.by_cost = sorted(self.stop_nodes, key=lambda v: (self.min_kwh[v], v))
        self.by_density = sorted(
            self.stop_nodes,
            key=lambda v: -(self.prio[v] / self.min_kwh[v]) if self.min_kwh[v] > _EPS else -1e18,
        )
        self.finish_lb_free = [0.0] * (self.depot + 1)
        for v in range(self.depot + 1):
            to_depot = self.sp[v][self.depot]
            to_charger = min((self.sp[v][c] for c in self.charger_nodes), default=to_depot)
            self.finish_lb_free[v] = min(to_depot, to_charger)
        self.by_alloc = sorted(self.stop_nodes, key=lambda v: (-self.prio[v], v))
        self.in_progress = bool(s) and s[0].in_progress
        self.all_mask = (1 << (n + 1)) - 2  # bits 1..n

    def run(self) -> Evaluation:
        if self.in_progress:
            self._visit_child((), 0, 0, None, 1)
        else:
            self._dfs((), 0, 0, None, 0.0, 0.0, 0.0, self.inst.now, 0.0, 0, 0, 0,
                      self.inst.now, 0.0)
        return self.best

    def _visit_child(self, prefix, mask, last, charger, v):  # type: ignore[no-untyped-def]
        # entry for a visit in progress: node 1 is first, nothing else before it
        inst = self.inst
        km = self.inst.dist[0][1]
        t = inst.now + km / self.speed * 60
        late = max(0.0, (t - self.latest[1]) / 60) if self.latest[1] is not None else 0.0
        used = self.drive * km + self.min_kwh[1]
        self._dfs((1,), 1 << 1, 1, None, km, km, used, t + self.min_min[1] * 60, late, 0,
                  int(self.must[1]), self.prio[1], t + self.planned[1] * 60, late)

    def _future_late(self, v: int, t_dep: float, free: int) -> float:
        """Least lateness still to come after leaving ``v`` at ``t_dep`` with every stop in
        ``free`` visited for its planned length (each window; the depot's return time)."""
        late = 0.0
        sp_v = self.sp[v]
        speed = self.speed
        total_min = 0.0
        in_km = 0.0
        u = free
        while u:
            low = u & -u
            j = low.bit_length() - 1
            u ^= low
            total_min += self.planned[j]
            in_km += self.min_in[j]
            lat = self.latest[j]
            if lat is not None:
                arrive = t_dep + sp_v[j] / speed * 60
                if arrive > lat:
                    late += (arrive - lat) / 60
        drive_km = max(sp_v[self.depot], in_km + (self.min_in_depot if free else 0.0))
        home = t_dep + (drive_km / speed + total_min) * 60
        if home > self.inst.return_by:
            late += (home - self.inst.return_by) / 60
        return late

    def _ub(self, mask: int, remaining_kwh: float) -> tuple[int, int]:
        """Most must-serve stops and priority the unvisited stops could still add."""
        free = self.all_mask & ~mask
        if not free:
            return 0, 0
        cap = remaining_kwh
        must_n = 0
        for v in self.by_cost:
            if free >> v & 1 and self.must[v] and self.min_kwh[v] <= cap + 1e-9:
                cap -= self.min_kwh[v]
                must_n += 1
        cap = remaining_kwh
        prio = 0.0
        for v in self.by_density:
            if free >> v & 1:
                c = self.min_kwh[v]
                if c <= cap + 1e-9:
                    cap -= c
                    prio += self.prio[v]
                else:
                    prio += self.prio[v] * cap / c
                    break
        return must_n, int(prio + 1e-6)

    def min_kwh_sum(self, mask: int) -> float:
        return sum(self.min_kwh[v] for v in self.stop_nodes if mask >> v & 1)

    def _serv_ub(self, mask: int, free: int, pool_kwh: float) -> tuple[float, float]:
        """Most minutes-on-site service reachable: stops in ``mask`` from their minimum,
        those in ``free`` optionally (from zero), sharing ``pool_kwh`` (an LP bound)."""
        inst = self.inst
        n = inst.n
        spare = pool_kwh / self.site_kwh_min if self.site_kwh_min > _EPS else float("inf")
        spare -= sum(self.min_min[v] for v in self.stop_nodes if mask >> v & 1)
        serv = tb = 0.0
        for v in self.by_alloc:
            if (mask | free) >> v & 1:
                st = inst.stop(v)
                base = st.min_min if mask >> v & 1 else 0.0
                extra = min(st.planned_min - base, max(0.0, spare))
                spare -= extra
                serv += st.priority * (base + extra)
                tb += (n - st.index) * (base + extra)
        return serv, tb

    def _dfs(  # type: ignore[no-untyped-def]
        self, prefix, mask, last, charger, km, seg_km, seg_used, t_min, late_lb, inv,
        must_n, prio, t_plan, late_plan,
    ) -> None:
        inst = self.inst
        self.stats.nodes += 1
        if self.stats.nodes > self.node_limit:
            raise _NodeLimit
        if charger is None or last == charger:
            # Dominance: same stops, same place, no charger or just arrived at one. A
            # prefix with no more km, inversions or lateness (its worst against this one's
            # best) does at least as well with every continuation, so this one can go.
            labels = self.labels.setdefault((mask, last), [])
            for l_km, l_inv, l_late_hi in labels:
                if l_km <= km + 1e-9 and l_inv <= inv and l_late_hi <= late_lb + 1e-9:
                    self.stats.dominated += 1
                    return
            labels.append((km, inv, late_plan))
        best = self.best
        bk = best.key
        # the prefix itself, then home
        if (must_n, prio) >= (bk[1], bk[2]) or not best.safe:
            self.stats.evaluations += 1
            e = evaluate(inst, prefix)
            if e.key > bk:
                self.best = best = e
                bk = e.key
        dist = inst.dist[last]
        sp_depot = self.sp
        depot = self.depot
        seg_budget = self.e_full if charger is not None else self.e_start
        for v in self.stop_nodes:
            if mask >> v & 1:
                continue
            best = self.best
            bk = best.key
            leg = dist[v]
            used = seg_used + self.drive * leg + self.min_kwh[v]
            finish = sp_depot[v][depot] if charger is not None else self.finish_lb_free[v]
            if used + self.drive * finish > seg_budget + 1e-9 and best.safe:
                continue
            nmask = mask | (1 << v)
            spare = seg_budget - used - self.drive * finish
            if charger is None and self.charger_nodes:
                spare += self.e_full
            n_must = must_n + self.must[v]
            n_prio = prio + self.prio[v]
            if best.safe:
                ub_must, ub_prio = self._ub(nmask, max(0.0, spare))
                ub = (n_must + ub_must, n_prio + ub_prio)
                if ub < (bk[1], bk[2]):
                    continue
            t = t_min + leg / self.speed * 60
            lat = self.latest[v]
            n_late = late_lb + (max(0.0, (t - lat) / 60) if lat is not None else 0.0)
            n_inv = inv + (mask >> (v + 1)).bit_count()
            t_p = t_plan + leg / self.speed * 60
            n_late_p = late_plan + (max(0.0, (t_p - lat) / 60) if lat is not None else 0.0)
            if best.safe and ub == (bk[1], bk[2]):
                free = self.all_mask & ~nmask
                # Matching the incumbent may need every remaining stop: count what that forces.
                need_all = ub_prio == sum(self.prio[u] for u in range(1, inst.n + 1)
                                          if free >> u & 1)
                forced = 0
                if need_all and free:
                    u = free
                    while u:
                        low = u & -u
                        j = low.bit_length() - 1
                        forced += (nmask >> (j + 1)).bit_count()
                        u ^= low
                if bk[3] >= self.serv_full - 1e-6 and bk[4] >= self.tb_full - 1e-6:
                    # The incumbent has every stop at its planned length, so must a rival:
                    # lateness so far at planned lengths, plus what the rest must add.
                    d_lb = n_late_p + self._future_late(v, t_p + self.planned[v] * 60, free)
                    d_lb += inst.reorder_penalty_min * (n_inv + forced)
                    if d_lb > -bk[5] + 1e-6:
                        continue
                else:
                    # Energy for minutes on site: both battery loads (if a charge is still
                    # possible) less the driving already done and the least still to do.
                    rest_km = self.sp[v][depot]
                    if need_all and free:
                        in_km = self.min_in_depot
                        u = free
                        while u:
                            low = u & -u
                            in_km += self.min_in[low.bit_length() - 1]
                            u ^= low
                        rest_km = max(rest_km, in_km)
                    pool = self.e_start - self.drive * (km + leg + rest_km)
                    if charger is not None or self.charger_nodes:
                        pool += self.e_full
                    if need_all:
                        sv, tb = self._serv_ub(nmask | free, 0, pool)
                    else:
                        sv, tb = self._serv_ub(nmask, free, pool)
                    if sv < bk[3] - 1e-6 or (sv <= bk[3] + 1e-6 and tb < bk[4] - 1e-6):
                        continue  # cannot even tie on minutes on site
                    # Lateness decides only if the minutes on site can at best tie.
                    d_lb = n_late + inst.reorder_penalty_min * (n_inv + forced)
                    if d_lb > -bk[5] + 1e-6 and sv <= bk[3] + 1e-6 and tb <= bk[4] + 1e-6:
                        continue
            self._dfs(
                (*prefix, v), nmask, v, charger, km + leg, seg_km + leg, used,
                t + self.min_min[v] * 60, n_late, n_inv, n_must, n_prio,
                t_p + self.planned[v] * 60, n_late_p,
            )
        if charger is None:
            for c in self.charger_nodes:
                best = self.best
                bk = best.key
                leg = dist[c]
                used = seg_used + self.drive * leg
                if used > self.e_start + 1e-9 and best.safe:
                    continue
                ch = inst.charger(c)
                t = t_min + leg / self.speed * 60
                if t > ch.closes + 1e-6 and best.safe:
                    continue
                if best.safe:
                    spare = self.e_full - self.drive * self.sp[c][depot]
                    ub_must, ub_prio = self._ub(mask, max(0.0, spare))
                    if (must_n + ub_must, prio + ub_prio) < (bk[1], bk[2]):
                        continue
                t = max(t, ch.opens)
                t_p = max(t_plan + leg / self.speed * 60, ch.opens)
                self._dfs(
                    (*prefix, c), mask, c, c, km + leg, 0.0, 0.0, t, late_lb, inv,
                    must_n, prio, t_p, late_plan,
                )
