"""The energy model a bus's day plan is checked against: the bus's own, where the archive has it.

The bus learns its model from its completed legs and visits (busd/planner/learning.py); the
daily report carries only the day's averages, not the model. The archive holds the same legs
and visits (its derived tables), so the office replays them, oldest first, through the bus's
own rules (:func:`learn_leg`, :func:`learn_visit`) onto the seeded model of the bus's config:
what the bus learned over the last ``days`` days. No usable leg or visit: the seeded model.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from busd.config import PlannerConfig
from busd.planner.energy import EnergyModel
from busd.planner.learning import learn_leg, learn_visit
from office.archive import Archive, Leg, Visit

LEARN_DAYS = 60


@dataclass(frozen=True, slots=True)
class BusEnergy:
    model: EnergyModel
    source: str  # "learned" or "seeded"
    lessons: int  # legs and visits the model learned from


async def bus_energy(archive: Archive | None, bus: str, cfg: PlannerConfig, before: date, *,
                     days: int = LEARN_DAYS) -> BusEnergy:
    """``bus``'s model from its legs and visits of the ``days`` days before ``before``."""
    model = EnergyModel(cfg)
    if archive is None:
        return BusEnergy(model, "seeded", 0)
    first, last = before - timedelta(days=days), before - timedelta(days=1)
    legs = await archive.legs(bus, first, last=last)
    visits = await archive.visits(bus, first, last=last)
    rows: list[Leg | Visit] = sorted([*legs, *visits], key=lambda row: row.start_ts)
    lessons = 0
    for row in rows:  # in time order, as the bus learned them
        net = row.out_kwh - row.regen_kwh
        if isinstance(row, Leg):
            ok = learn_leg(model, km=row.km, net_kwh=net, temp_c=row.temp_c, gap_s=row.gap_s,
                           status=row.status)
        else:
            ok = learn_visit(model, minutes=row.duration_min, net_kwh=net, temp_c=row.temp_c,
                             gap_s=row.gap_s, status=row.status, place_kind=row.place_kind)
        lessons += ok
    return BusEnergy(model, "learned" if lessons else "seeded", lessons)
