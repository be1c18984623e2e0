"""Finding the best itinerary: exact search up to ``exact_max_stops``, a heuristic beyond.

Both maximise :func:`busd.planner.model.evaluate`'s key (computed the same way
by :class:`~busd.planner.fastkey.Judge`), so "best" has one definition.

Exact (:mod:`busd.planner.exact`): sets and the split around a charger first
(Held-Karp over subsets), then the order within the best splits. If it runs
out of nodes, the heuristic's answer and the best found so far compete.

Heuristic (more stops): announced order; while unsafe, try every charger at
every position, else drop the least important stop (never a must-serve one
while another can go); then re-insert dropped stops at their best position
and relocate single stops while the key improves. Polynomial: about n³
evaluations in the worst case.

Ties keep the first itinerary found, and the exploration order is fixed, so
the same instance always gives the same answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from busd.planner.exact import Exact, NodeLimit
from busd.planner.fastkey import Judge
from busd.planner.model import Evaluation, Instance, evaluate


@dataclass
class SearchStats:
    nodes: int = 0
    dominated: int = 0
    evaluations: int = 0
    exact: bool = True


def best_plan(
    inst: Instance,
    *,
    exact_max_stops: int = 10,
    node_limit: int = 200_000,
    stats: SearchStats | None = None,
) -> Evaluation:
    """The best itinerary under the model (safe whenever any safe one exists).

    The exact search stops after ``node_limit`` nodes (subset states plus
    orders tried) and keeps the best found so far, never worse than the
    heuristic; ``stats.exact`` says whether it finished.
    """
    stats = stats if stats is not None else SearchStats()
    judge = Judge(inst)
    if inst.n > exact_max_stops:
        stats.exact = False
        return heuristic(inst, stats, judge)
    found: list[tuple[tuple[int, ...], tuple[float, ...]]] = []

    def better(seq: tuple[int, ...], key: tuple[float, ...]) -> bool:
        stats.evaluations += 1
        if not found or key > found[0][1]:
            found[:] = [(seq, key)]
            return True
        return False

    try:
        Exact(inst, judge, stats, node_limit).run(better)
    except NodeLimit:
        stats.exact = False
        fallback = heuristic(inst, stats, judge)
        if not found or fallback.key > found[0][1]:
            return fallback
    if not found:
        return heuristic(inst, stats, judge)  # nothing is safe: the least bad itinerary
    return evaluate(inst, found[0][0])


# --- heuristic -----------------------------------------------------------------------


def heuristic(
    inst: Instance, stats: SearchStats | None = None, judge: Judge | None = None
) -> Evaluation:
    stats = stats if stats is not None else SearchStats()
    judge = judge if judge is not None else Judge(inst)

    def ev(seq: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[float, ...]]:
        stats.evaluations += 1
        return seq, judge.key(seq)

    chargers = [inst.n + 1 + i for i in range(len(inst.chargers))]
    in_progress = bool(inst.stops) and inst.stops[0].in_progress
    seq = tuple(range(1, inst.n + 1))
    best = ev(seq)
    while not best[1][0]:
        charged = _best_charge(seq, chargers, ev, in_progress)
        if charged is not None and charged[1][0]:
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
        best = ev(seq)
    if not best[1][0]:
        return evaluate(inst, best[0])
    # Improve: re-insert dropped stops, relocate single stops, add/move a charger.
    improved = True
    while improved:
        improved = False
        current = best[0]
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
            if in_progress and (not cand or cand[0] != 1):
                continue
            e = ev(cand)
            if e[1] > best[1]:
                best, improved = e, True
    return evaluate(inst, best[0])


def _best_charge(
    seq: tuple[int, ...],
    chargers: list[int],
    ev: Callable[[tuple[int, ...]], tuple[tuple[int, ...], tuple[float, ...]]],
    in_progress: bool,
) -> tuple[tuple[int, ...], tuple[float, ...]] | None:
    best = None
    start = 1 if in_progress and seq and seq[0] == 1 else 0
    for c in chargers:
        for pos in range(start, len(seq) + 1):
            e = ev((*seq[:pos], c, *seq[pos:]))
            if best is None or e[1] > best[1]:
                best = e
    return best
