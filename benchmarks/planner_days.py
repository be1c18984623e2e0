"""The planner judged by the residents it serves: many simulated days against an oracle.

Simulates ``--days`` varied days (outside temperature ``--temp-min``..``--temp-max`` °C,
consumption and heating within ±``--noise``, road detours, the public charger working or
not) for two buses, one with the seeded energy model and one that has learned for 30 days,
in-process on a manual clock (simulators/days). Each bus-day is compared with the oracle:
the planner's exact search run with that day's true consumption (simulators/days/oracle.py).

Usage: python benchmarks/planner_days.py [--days 100] [--seed 1] [--temp-min -25]
       [--temp-max 25] [--noise 0.15] [--detour-share 0.2] [--detour-max 0.4]
       [--detour-days 14] [--verbose]
The last output line is one JSON object: days, minutes_ratio (minutes served / the
oracle's), days_below_reserve (bus-days ending more than 1 point below the reserve),
worst_end_margin_pct, skipped_vs_oracle, noon_error_p50_pct / p95, proposals_per_day,
and the oracle check (oracle_violations must be 0). --verbose also breaks each day's
noon projection error down into its causes (simulators/days/noon.py).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog

from simulators.days.evaluation import run
from simulators.days.noon import summary
from simulators.days.world import Spread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--temp-min", type=float, default=-25.0)
    parser.add_argument("--temp-max", type=float, default=25.0)
    parser.add_argument("--noise", type=float, default=0.15,
                        help="consumption and heating vary within ± this share")
    parser.add_argument("--detour-share", type=float, default=0.2,
                        help="share of the roads with a detour on a given day")
    parser.add_argument("--detour-max", type=float, default=0.4,
                        help="a detour makes its road 10 %% to this share longer")
    parser.add_argument("--detour-days", type=float, default=14.0,
                        help="a road's detour (or its absence) lasts this many days on "
                             "average; 1: each day drawn afresh")
    parser.add_argument("--verbose", action="store_true",
                        help="one line per bus-day, and the noon error's causes")
    args = parser.parse_args()
    if args.days < 1:
        parser.error("need --days >= 1")
    try:
        spread = Spread(temp_min=args.temp_min, temp_max=args.temp_max, noise=args.noise,
                        detour_share=args.detour_share, detour_max=args.detour_max,
                        detour_days=args.detour_days)
    except ValueError as err:
        parser.error(str(err))
    # The day's events (proposals, arrivals) are the daemon's logs: not wanted here.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    t0 = time.perf_counter()
    figures, days = run(args.days, seed=args.seed, spread=spread)
    elapsed = time.perf_counter() - t0
    if args.verbose:
        for d in days:
            o = d.outcome
            print(f"{d.bus:7s} {d.spec.label()}: {o.minutes:5.0f} of the oracle's "
                  f"{d.oracle.minutes:5.0f} min, home at {o.end_soc:5.1f} %, noon said "
                  f"{o.noon_projection if o.noon_projection is not None else float('nan'):5.1f}"
                  f", {o.proposals} proposal(s)" + (f"; {d.noon.label()}" if d.noon else ""))
        for line in summary([d.noon for d in days if d.noon is not None]):
            print(line)
    print(f"{len(days)} bus-days in {elapsed:.1f} s")
    print(figures.model_dump_json())


if __name__ == "__main__":
    main()
