"""Energy model: kWh per km on the road and kW on site, both depending on the cold.

The seeds (config) are linear in the kelvins below a reference temperature:
heating is the large share of a winter day. The bus's own completed legs and
visits correct each seed by a multiplicative factor, learned as an
exponentially weighted mean of observed/predicted ratios; the spread of those
ratios is the model's uncertainty, which widens the safety margin. The road
factor (road km per great-circle km) is learned the same way from legs whose
straight-line distance is known.

Pure and deterministic: the tracker calls :meth:`EnergyModel.learn_leg` and
:meth:`EnergyModel.learn_visit`; the state round-trips through
:meth:`to_dict`/:meth:`from_dict` so it survives restarts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from busd.config import PlannerConfig

# Ratios outside this range are a measurement fault (odometer jump, a charge
# during a "visit"), not a lesson about the bus.
_RATIO_MIN, _RATIO_MAX = 0.25, 4.0
_MIN_CV = 0.03


@dataclass
class _Factor:
    """An EW mean and variance of observed/predicted ratios."""

    mean: float = 1.0
    var: float = 0.0
    n: int = 0

    def learn(self, ratio: float, rate: float) -> bool:
        if not (_RATIO_MIN <= ratio <= _RATIO_MAX) or not math.isfinite(ratio):
            return False
        if self.n == 0:
            self.mean, self.var = ratio, 0.0
        else:
            diff = ratio - self.mean
            self.mean += rate * diff
            self.var = (1 - rate) * (self.var + rate * diff * diff)
        self.n += 1
        return True

    def cv(self, prior: float) -> float:
        """Relative uncertainty; the prior fades as samples arrive."""
        weight = 1.0 / (1.0 + self.n)
        measured = math.sqrt(self.var) / self.mean if self.mean > 0 else prior
        return max(_MIN_CV, weight * prior + (1 - weight) * measured)


class EnergyModel:
    def __init__(self, config: PlannerConfig) -> None:
        self._c = config
        self._drive = _Factor()
        self._site = _Factor()
        self._road = _Factor(mean=config.road_factor)

    # --- prediction -------------------------------------------------------------

    def seed_drive_kwh_per_km(self, outside_temp: float) -> float:
        c = self._c
        return c.drive_kwh_per_km + c.drive_kwh_per_km_per_k * max(
            0.0, c.drive_ref_temp_c - outside_temp
        )

    def seed_site_kw(self, outside_temp: float) -> float:
        c = self._c
        return c.site_kw + c.site_kw_per_k * max(0.0, c.site_ref_temp_c - outside_temp)

    def drive_kwh_per_km(self, outside_temp: float) -> float:
        return self.seed_drive_kwh_per_km(outside_temp) * self._drive.mean

    def site_kw(self, outside_temp: float) -> float:
        return self.seed_site_kw(outside_temp) * self._site.mean

    @property
    def road_factor(self) -> float:
        return self._road.mean

    def uncertainty(self) -> float:
        """Relative standard error of an energy prediction (drive and site alike)."""
        prior = self._c.prior_cv
        return max(self._drive.cv(prior), self._site.cv(prior))

    def margin_pct(self, remaining_kwh: float) -> float:
        """Safety margin in SOC % for a day with ``remaining_kwh`` still to use."""
        sigma_kwh = self.uncertainty() * max(0.0, remaining_kwh)
        return self._c.margin_pct + self._c.margin_sigmas * sigma_kwh / self._c.capacity_kwh * 100

    # --- learning (called by the tracker) -----------------------------------------

    def learn_leg(
        self, km: float, kwh: float, outside_temp: float, *, great_circle_km: float | None = None
    ) -> bool:
        """A completed leg; returns False when it was implausible and ignored."""
        accepted = False
        if km >= 1.0 and kwh > 0:
            predicted = self.seed_drive_kwh_per_km(outside_temp) * km
            accepted = self._drive.learn(kwh / predicted, self._c.learn_rate)
        if great_circle_km is not None and great_circle_km >= 1.0 and km > 0:
            ratio = km / great_circle_km
            if 1.0 <= ratio <= 3.0:
                self._road.learn(ratio, self._c.learn_rate)
        return accepted

    def learn_visit(self, minutes: float, kwh: float, outside_temp: float) -> bool:
        """A completed visit; returns False when it was implausible and ignored."""
        if minutes < 10 or kwh < 0:
            return False
        predicted = self.seed_site_kw(outside_temp) * minutes / 60
        if predicted <= 0.05:
            return False
        return self._site.learn(max(kwh, 1e-6) / predicted, self._c.learn_rate)

    # --- persistence ----------------------------------------------------------------

    def to_dict(self) -> dict[str, dict[str, float]]:
        return {
            name: {"mean": f.mean, "var": f.var, "n": f.n}
            for name, f in (("drive", self._drive), ("site", self._site), ("road", self._road))
        }

    @classmethod
    def from_dict(cls, config: PlannerConfig, data: dict[str, dict[str, float]]) -> EnergyModel:
        model = cls(config)
        for name in ("drive", "site", "road"):
            item = data.get(name)
            if item:
                setattr(
                    model, f"_{name}",
                    _Factor(float(item["mean"]), float(item["var"]), int(item["n"])),
                )
        return model
