"""The roads as they are now: a detour met on a road's last drive is expected again.

Road works last weeks: a road that ran 30 % longer than expected yesterday most likely
runs longer today too, and a projection that expects only the long-run mean of detours
(:attr:`EnergyModel.road_overrun`) misses the difference on every day of the works. A
diversion for a single day does not last, and neither does the luck of a clear road. How
much of a road's last deviation from its expected km the next drive keeps is learned
(:class:`Persistence`): the regression through the origin of the next drive's deviation on
the last one's, over the drives whose last one deviated. Until deviations have been seen
to come back, or not, the share kept is small, and the projection stays the long-run mean.

The deviations are against the long-run expectation (the caller's ``base_km``), so a bus
whose roads change at random every day learns a share near 0 and projects as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# A last drive this close to the expected km teaches nothing of persistence: it is the
# odometer's and the route's own spread, not a detour.
_DEVIATION_MIN = 0.03
# Until this many deviations have shown whether they last, the share kept is shrunk toward
# none (one detour that came back proves little).
_PERSIST_PRIOR_N = 3
_PERSIST_MIN_RATE = 0.05  # the share: the last twenty or so deviations
# A last drive older than this says nothing of the road today (road works end).
_LAST_MAX_DAYS = 14
# A drive this far from the expected km was another road, not the road's length: a wrong
# turn, or a place passed without a visit (two roads in one leg). It is not kept. Detours
# round road works make a road up to some 40 % longer; a closed bridge may nearly double it.
ANOTHER_ROUTE = 1.8
_KM_MIN, _KM_MAX = 0.5, ANOTHER_ROUTE


@dataclass
class Persistence:
    """The share of a road's deviation (km / expected − 1) that its next drive keeps: EW
    means of last × next and last², over drives whose last one deviated."""

    mxy: float = 0.0
    mxx: float = 0.0
    n: int = 0

    def learn(self, last: float, now: float) -> None:
        if abs(last) < _DEVIATION_MIN:
            return
        rate = max(_PERSIST_MIN_RATE, 1.0 / (self.n + 1))
        self.mxy += rate * (last * now - self.mxy)
        self.mxx += rate * (last * last - self.mxx)
        self.n += 1

    @property
    def share(self) -> float:
        if not self.n or self.mxx <= 0:
            return 0.0
        slope = min(1.0, max(0.0, self.mxy / self.mxx))
        return slope * self.n / (self.n + _PERSIST_PRIOR_N)


@dataclass(frozen=True)
class LastDrive:
    km: float
    day: int  # date.toordinal() of the drive; 0: not known


@dataclass
class RoadsNow:
    """Each road's last drive (by road key) and the share of its deviation that lasts."""

    last: dict[str, LastDrive] = field(default_factory=dict)
    persistence: Persistence = field(default_factory=Persistence)

    def expected(self, key: str, base_km: float, today: int) -> float:
        """The road's km today: ``base_km`` (the long-run expectation) moved toward its last
        drive by the share of a deviation that lasts."""
        last = self._fresh(key, today)
        if last is None or base_km <= 0:
            return base_km
        return base_km * (1.0 + self.persistence.share * (last.km / base_km - 1.0))

    def learn(self, key: str, km: float, base_km: float, today: int) -> None:
        """A drive of ``km`` on the road, ``base_km`` expected of it in the long run (before
        this drive taught the long run anything)."""
        if base_km <= 0 or not _KM_MIN <= km / base_km <= _KM_MAX:
            return
        last = self._fresh(key, today)
        if last is not None:
            self.persistence.learn(last.km / base_km - 1.0, km / base_km - 1.0)
        self.last[key] = LastDrive(km, today)

    def _fresh(self, key: str, today: int) -> LastDrive | None:
        last = self.last.get(key)
        if last is None or (today and last.day and today - last.day > _LAST_MAX_DAYS):
            return None
        return last

    # --- persistence (the energy model's saved state) ---------------------------------

    def to_dict(self) -> dict[str, dict[str, float]]:
        p = self.persistence
        return {
            "last_km": {k: d.km for k, d in self.last.items()},
            "last_km_day": {k: float(d.day) for k, d in self.last.items()},
            "persistence": {"mxy": p.mxy, "mxx": p.mxx, "n": float(p.n)},
        }

    @classmethod
    def from_dict(cls, data: dict[str, dict[str, float]]) -> RoadsNow:
        days = data.get("last_km_day", {})
        p = data.get("persistence", {})
        return cls(
            last={k: LastDrive(float(km), int(days.get(k, 0))) for k, km in
                  data.get("last_km", {}).items()},
            persistence=Persistence(float(p.get("mxy", 0.0)), float(p.get("mxx", 0.0)),
                                    int(p.get("n", 0))),
        )
