"""Re-planning time: 6, 10 and 15 remaining stops, 3 chargers, 200 random instances each.

Instances come from busd.planner.synth (villages within ~35 km of Līvāni,
random SOC 30-100 %, -20..10 °C, half the stops with arrival windows, a fifth
must-serve, chargers of 22/50 kW with opening hours). The time measured is
one full ``best_plan`` call: the exact search up to ``exact_max_stops`` (10)
remaining stops (Held-Karp over sets of stops and the split around a charger,
then the order within the best splits; cut at ``node_limit`` nodes, and the
count of searches that finished is printed), the heuristic alone beyond.
Nodes are subset states of the Held-Karp passes plus orders tried, so they
compare across machines where milliseconds do not (a loaded machine is slow).

Usage: python benchmarks/planner.py [--instances 200] [--seed 1]
The last output line is one JSON object: median and worst ms, nodes, and exact
searches finished, per size.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from busd.planner.search import SearchStats, best_plan
from busd.planner.synth import random_instance

SIZES = (6, 10, 15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    result: dict[str, float] = {}
    search: dict[str, float] = {}
    for n in SIZES:
        rng = random.Random(args.seed * 1000 + n)
        times: list[float] = []
        nodes: list[int] = []
        unsafe = 0
        exact = 0
        for _ in range(args.instances):
            inst = random_instance(rng, n, 3, in_progress=rng.random() < 0.3)
            stats = SearchStats()
            t0 = time.perf_counter()
            best = best_plan(inst, stats=stats)
            times.append((time.perf_counter() - t0) * 1000)
            nodes.append(stats.nodes)
            unsafe += not best.safe
            exact += stats.exact
        p50, worst = statistics.median(times), max(times)
        print(
            f"{n:2d} stops: p50 {p50:7.2f} ms  max {worst:7.2f} ms  "
            f"(nodes p50 {statistics.median(nodes):.0f} max {max(nodes)}; "
            f"no safe plan in {unsafe}/{args.instances}; exact search finished in "
            f"{exact}/{args.instances})"
        )
        result[f"p50_ms_{n}"] = round(p50, 2)
        result[f"max_ms_{n}"] = round(worst, 2)
        search[f"nodes_p50_{n}"] = statistics.median(nodes)
        search[f"nodes_max_{n}"] = max(nodes)
        search[f"exact_{n}"] = exact
    print("search: " + json.dumps(search))
    print(json.dumps(result))  # the agreed last line: times only


if __name__ == "__main__":
    main()
