"""Random planning instances around Līvāni, for the benchmark, tests and demos."""

from __future__ import annotations

import math
import random

from busd.plan import haversine_m
from busd.planner.model import ChargeParams, ChargerNode, Instance, StopNode

LIVANI = (56.3543, 26.1758)
_DAY = 1_796_000_000.0  # an arbitrary morning, epoch s


def random_instance(
    rng: random.Random,
    n_stops: int,
    n_chargers: int,
    *,
    step_min: float = 5.0,
    minute_unit: float = 15.0,
    in_progress: bool = False,
    soc: float | None = None,
    temp: float | None = None,
    road_noise: float = 0.0,
) -> Instance:
    """``n_stops`` villages 8-31 km from the depot, announced as a loop in order of
    bearing (as the office would plan it), chargers anywhere in the area, a cold-ish day;
    arrival windows follow the announced schedule with some slack.

    Visit lengths are multiples of ``minute_unit``; ``road_noise`` makes each
    road up to that fraction longer than 1.3x the straight line (so the
    triangle inequality may fail, as it can with plan leg lengths).
    """
    lat0, lon0 = LIVANI

    def place(angle: float) -> tuple[float, float]:
        r_km = rng.uniform(8, 31)
        return (
            lat0 + r_km * math.cos(angle) / 111.2,
            lon0 + r_km * math.sin(angle) / (111.2 * math.cos(math.radians(lat0))),
        )

    # The office announces a sensible loop: villages in order of bearing from the depot.
    angles = sorted(rng.uniform(0, 2 * math.pi) for _ in range(n_stops))
    places = [place(a) for a in angles] + [
        place(rng.uniform(0, 2 * math.pi)) for _ in range(n_chargers)
    ]
    in_progress = in_progress and n_stops > 0
    here = LIVANI if not in_progress else places[0]
    nodes = [here, *places, LIVANI]
    dist = tuple(
        tuple(
            0.0 if i == j else haversine_m(*a, *b) / 1000 * 1.3 * (1 + rng.uniform(0, road_noise))
            for j, b in enumerate(nodes)
        )
        for i, a in enumerate(nodes)
    )
    t = temp if temp is not None else rng.uniform(-20, 10)
    now = _DAY
    stops = []
    clock = now
    for i in range(n_stops):
        planned = minute_unit * rng.randint(2, 8)
        minimum = minute_unit * rng.randint(0, int(planned / minute_unit))
        # The office announced a schedule that worked at 50 km/h, with some slack.
        clock += dist[i][i + 1] / 50 * 3600
        arrive = clock
        clock += planned * 60 + rng.choice([0, 0, 10, 30]) * 60
        latest = arrive + rng.choice([15, 30, 60]) * 60 if rng.random() < 0.5 else None
        stops.append(
            StopNode(
                id=f"s{i + 1}", index=i, planned_min=planned, min_min=minimum,
                priority=rng.randint(1, 10), must=rng.random() < 0.2, latest=latest,
                in_progress=in_progress and i == 0,
            )
        )
    chargers = tuple(
        ChargerNode(
            id=f"c{k + 1}", power_kw=rng.choice([22.0, 50.0, 50.0]),
            opens=now + rng.choice([-3, 0, 2]) * 3600, closes=now + rng.choice([6, 10, 16]) * 3600,
        )
        for k in range(n_chargers)
    )
    return Instance(
        now=now,
        soc_pct=soc if soc is not None else rng.uniform(30, 100),
        capacity_kwh=100.0,
        threshold_pct=18.0,
        drive_kwh_per_km=0.28 + 0.004 * max(0.0, 15 - t),
        site_kw=1.0 + 0.17 * max(0.0, 18 - t),
        speed_kmh=50.0,
        stops=tuple(stops),
        chargers=chargers,
        return_by=clock + dist[n_stops][-1] / 50 * 3600 + 1800,
        dist=dist,
        charge=ChargeParams(),
        step_min=step_min,
        reorder_penalty_min=20.0,
    )
