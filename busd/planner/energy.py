"""Energy model: kWh per km on the road and kW on site, depending on the cold and the heat.

The seeds (config) are linear in the kelvins below a reference temperature (heating, the
large share of a winter day) and in the kelvins above ``cooling_above_c`` (the air
conditioning of a hot afternoon, which no morning below that line shows: without it in the
seed, a day's lessons from a mild morning said nothing of the hot afternoon's cooling).
The bus's own completed legs and visits correct each seed by a multiplicative factor
(the cooling on the road too takes the on-site factor: :meth:`EnergyModel._drive_cooling`),
learned as an
exponentially weighted mean of observed/predicted ratios; the spread of those
ratios is the model's uncertainty before a day's first lessons, and the model's measured
error of its own day-corrected predictions after them (:meth:`EnergyModel.uncertainty`),
which widens the safety margin. The road
factor (road km per great-circle km) is learned the same way from legs whose
straight-line distance is known.

Roads also run longer than the plan says: a detour round roadworks or a closed bridge
makes a leg longer on the day, and no one tells the bus beforehand. The road factor
(legs the plan gives no length for) and the road overrun (the km driven against the
plan's ``leg_km``) are long-run means of what the bus drove, detours included, so the
depot SOC the projection shows is the expected one, not the day without a detour. Both
learn slowly (``_ROAD_MIN_RATE``): a day's detour is luck, the share of detours is not.
Road works that last are not luck: :meth:`EnergyModel.expected_km` moves a road toward its
last drive by the share of such deviations the bus has seen last
(:mod:`busd.planner.roads_now`).

Roads differ in what a km costs, too: a slow gravel road spends less on air resistance
per km than a fast asphalt one (and more on heating, in the cold). Each road the bus
drives (a pair of places) has its own factor, its legs against the bus's average; the
day's and the long run's drive factors learn from legs with their road's factor taken
out, and :meth:`EnergyModel.road_energy` gives it back for the roads still ahead. Without
it a morning on fast roads would tell the model that the afternoon's slow ones cost as
much. How much less a slow road costs depends on the cold (its longer hours heat the bus),
so a road's factor is a line in the heating's share of the average km
(:class:`_RoadCost`): a factor learned over winter and summer alike fits neither.

Today's lessons also count on their own: a day differs from the long run (load, wind,
a heater that works harder in this cold than the seed's kW per kelvin says), and by noon
its own legs and visits say by how much. From :meth:`EnergyModel.start_day`, a prediction
is the long-run factor as the day began times today's mean ratio against it, that mean
shrunk toward 1 by ``_TODAY_PRIOR_N`` lessons' worth of trust in the long run.

Pure and deterministic: the tracker calls :meth:`EnergyModel.learn_leg` and
:meth:`EnergyModel.learn_visit`; the state round-trips through
:meth:`to_dict`/:meth:`from_dict` so it survives restarts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from busd.config import PlannerConfig
from busd.planner.roads_now import ANOTHER_ROUTE, RoadsNow

# Ratios outside this range are a measurement fault (odometer jump, a charge
# during a "visit"), not a lesson about the bus.
_RATIO_MIN, _RATIO_MAX = 0.25, 4.0
_MIN_CV = 0.03
_TODAY_PRIOR_N = 0.3  # the long run weighs like this many of today's lessons
# A leg shorter than half the road's expected km, or longer than ANOTHER_ROUTE times it, is
# another road, not a detour to expect: a wrong turn, or a place passed on the way without a
# visit (a charging stop called off on arrival made one leg of two roads, twice the km).
_OVERRUN_MIN, _OVERRUN_MAX = 0.5, ANOTHER_ROUTE
# The road factors: the seed weighs like this many legs, and the mean remembers some
# 1 / rate legs (a few weeks' worth): one leg's detour moves the projection little.
_ROAD_PRIOR_N = 5
_ROAD_MIN_RATE = 0.03
_ROAD_ENERGY_MIN_RATE = 0.1  # a road's cost per km: its last ten or so legs
_ROAD_KM_PRIOR_N = 1  # a road's km: the straight line times the road factor weighs one leg
# The pack's SOC against the energy at its terminals: a long-run mean of legs and visits
# that moved the SOC enough to read (the SOC comes in steps; a kWh or two is a few of them).
_PACK_MIN_KWH = 2.0
_PACK_MIN, _PACK_MAX = 0.8, 1.25
_PACK_MIN_RATE = 0.05


Climate = Literal["heating", "cooling", "neither"]


def road_key(a: str, b: str) -> str:
    """A road between two places, either way."""
    return "|".join(sorted((a, b)))


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

    def average(self, ratio: float, min_rate: float) -> bool:
        """A long-run mean: every lesson counts alike until there are ``1 / min_rate``."""
        return self.learn(ratio, max(min_rate, 1.0 / (self.n + 1)))

    def cv(self, prior: float) -> float:
        """Relative uncertainty; the prior fades as samples arrive."""
        weight = 1.0 / (1.0 + self.n)
        measured = math.sqrt(self.var) / self.mean if self.mean > 0 else prior
        return max(_MIN_CV, weight * prior + (1 - weight) * measured)


_H_RIDGE = 0.01  # a road's line: its slope counts half once the heating share varies 0.1


@dataclass
class _RoadCost:
    """A road's kWh per km against the bus's average, as a line in ``h``, the heating's
    share of the average km (0 in the warm): EW means and co-moments of (h, ratio)."""

    mh: float = 0.0
    mr: float = 1.0
    vhh: float = 0.0
    chr: float = 0.0
    n: int = 0

    def learn(self, h: float, ratio: float, min_rate: float) -> None:
        rate = max(min_rate, 1.0 / (self.n + 1))
        dh, dr = h - self.mh, ratio - self.mr
        self.mh += rate * dh
        self.mr += rate * dr
        self.vhh = (1 - rate) * (self.vhh + rate * dh * dh)
        self.chr = (1 - rate) * (self.chr + rate * dh * dr)
        self.n += 1

    def at(self, h: float | None) -> float:
        if h is None:
            return self.mr
        value = self.mr + self.chr / (self.vhh + _H_RIDGE) * (h - self.mh)
        return min(_RATIO_MAX, max(_RATIO_MIN, value))


@dataclass
class _Error:
    """The model's own prediction errors (observed / predicted − 1), as an EW mean square."""

    ms: float = 0.0
    n: int = 0

    def learn(self, error: float, rate: float) -> None:
        r = max(rate, 1.0 / (self.n + 1))
        self.ms += r * (error * error - self.ms)
        self.n += 1

    def cv(self, prior: float) -> float:
        """Relative error of a prediction; the prior fades as errors are measured."""
        weight = 1.0 / (1.0 + self.n)
        return max(_MIN_CV, weight * prior + (1 - weight) * math.sqrt(self.ms))


_ERRORS = ("drive_first", "drive_later", "site_first", "site_later")


@dataclass
class _Today:
    """The day's own lessons, as ratios against the long-run factors it began with."""

    ordinal: int = 0  # date.toordinal() of the day; 0: no day started
    drive_prior: float = 1.0
    site_prior: float = 1.0
    drive: _Factor = field(default_factory=_Factor)
    site: _Factor = field(default_factory=_Factor)

    @staticmethod
    def shrunk(f: _Factor) -> float:
        return 1.0 + (f.mean - 1.0) * f.n / (f.n + _TODAY_PRIOR_N)


class EnergyModel:
    def __init__(self, config: PlannerConfig) -> None:
        self._c = config
        self._drive = _Factor()
        self._site = _Factor()
        self._road = _Factor(mean=config.road_factor, n=_ROAD_PRIOR_N)
        self._overrun = _Factor(mean=1.0, n=_ROAD_PRIOR_N)  # the seed: the plan is right
        self._roads: dict[str, _RoadCost] = {}  # road_key -> its kWh per km / the average's
        # road_key -> the km its legs ran (detours too) per straight-line km
        self._road_km: dict[str, _Factor] = {}
        self._roads_now = RoadsNow()  # each road's last drive: a detour that lasts
        # The SOC a kWh out at the pack's terminals costs (capacity × ΔSOC / kWh), driving and
        # standing: the pack's own losses (its I²R heat, more at a driving current), and a
        # capacity that is not quite the nominal one.
        self._pack = {"drive": _Factor(), "site": _Factor()}
        self._today = _Today()
        # How far the model's predictions were from what the bus then used: before the day
        # has taught it anything ("first": the day against the long run) and after
        # ("later": the rest of the day against what its morning said).
        self._errors = {name: _Error() for name in _ERRORS}

    def start_day(self, day: date) -> None:
        """A new operating day: today's lessons start afresh (the same day again, after a
        restart, keeps them)."""
        if day.toordinal() != self._today.ordinal:
            self._today = _Today(day.toordinal(), self._drive.mean, self._site.mean)

    # --- prediction -------------------------------------------------------------

    def seed_drive_kwh_per_km(self, outside_temp: float) -> float:
        return (self._seed_drive_rest(outside_temp)
                + self._c.drive_cooling_kwh_per_km_per_k * self._cooling_k(outside_temp))

    def seed_site_kw(self, outside_temp: float) -> float:
        c = self._c
        return (c.site_kw + c.site_kw_per_k * max(0.0, c.site_ref_temp_c - outside_temp)
                + c.site_cooling_kw_per_k * self._cooling_k(outside_temp))

    def _cooling_k(self, outside_temp: float) -> float:
        return max(0.0, outside_temp - self._c.cooling_above_c)

    def climate(self, outside_temp: float) -> Climate:
        """What the bus spends on its climate at ``outside_temp``, as the seeds have it."""
        c = self._c
        if outside_temp > c.cooling_above_c:
            return "cooling"
        if outside_temp < max(c.site_ref_temp_c, c.drive_ref_temp_c):
            return "heating"
        return "neither"

    def drive_kwh_per_km(self, outside_temp: float) -> float:
        return (self._seed_drive_rest(outside_temp) * self._factor("drive")
                + self._drive_cooling(outside_temp))

    def _seed_drive_rest(self, outside_temp: float) -> float:
        """The seed's kWh per km of the road and the heating: all but the cooling."""
        c = self._c
        return c.drive_kwh_per_km + c.drive_kwh_per_km_per_k * max(
            0.0, c.drive_ref_temp_c - outside_temp)

    def _drive_cooling(self, outside_temp: float) -> float:
        """The air conditioning's kWh per km: the seed's, times what the bus's visits taught
        of its on-site kW. It is the same air conditioning, and on site it is most of what
        a hot visit draws; on the road it is a few per cent of a km, under the drive factor
        it would grow with everything that makes the bus's km dearer than the seed's (its
        mass, its tyres), which a mild morning teaches and a hot afternoon's cooling does
        not share."""
        return (self._c.drive_cooling_kwh_per_km_per_k * self._cooling_k(outside_temp)
                * self._factor("site"))

    def site_kw(self, outside_temp: float) -> float:
        return self.seed_site_kw(outside_temp) * self._factor("site")

    def _factor(self, name: str) -> float:
        today = self._today
        if not today.ordinal:
            return float(getattr(self, f"_{name}").mean)
        prior = today.drive_prior if name == "drive" else today.site_prior
        return prior * today.shrunk(today.drive if name == "drive" else today.site)

    @property
    def road_factor(self) -> float:
        return self._road.mean

    @property
    def road_overrun(self) -> float:
        """Expected km driven per km of the plan (detours included), from the bus's legs."""
        return self._overrun.mean

    def road_km(self, a: str, b: str, straight_km: float) -> float | None:
        """The km of the road from ``a`` to ``b`` (``straight_km`` apart), as the bus has
        driven it: the long-run mean of its legs, detours included, with the straight line
        times the road factor weighing one leg. None: the bus has not driven it."""
        f = self._road_km.get(road_key(a, b))
        if f is None or not f.n:
            return None
        factor = (f.mean * f.n + self._road.mean * _ROAD_KM_PRIOR_N) / (f.n + _ROAD_KM_PRIOR_N)
        return straight_km * factor

    def expected_km(self, a: str, b: str, *, plan_km: float | None, straight_km: float
                    ) -> float:
        """The km the road from ``a`` to ``b`` will run today: the long-run expectation
        (:meth:`_long_run_km`), moved toward its last drive by the share of a deviation that
        the bus has seen last (:class:`~busd.planner.roads_now.RoadsNow`)."""
        return self._roads_now.expected(road_key(a, b), self._long_run_km(
            a, b, plan_km=plan_km, straight_km=straight_km), self._today.ordinal)

    def _long_run_km(self, a: str, b: str, *, plan_km: float | None, straight_km: float
                     ) -> float:
        """The plan's km times the overrun when the plan gives the leg's length; else the km
        the bus has driven that road; else the straight line times the road factor and the
        overrun. Detours are in all three as their long-run mean."""
        if plan_km is not None:
            return plan_km * self._overrun.mean
        driven = self.road_km(a, b, straight_km)
        return straight_km * self._road.mean * self._overrun.mean if driven is None else driven

    def road_energy(self, a: str, b: str, outside_temp: float | None = None) -> float:
        """What a km of the road from ``a`` to ``b`` costs against the bus's average km (at
        ``outside_temp``; None: over the temperatures it was driven in)."""
        f = self._roads.get(road_key(a, b))
        if f is None:
            return 1.0
        return f.at(None if outside_temp is None else self._heating_share(outside_temp))

    def _heating_share(self, outside_temp: float) -> float:
        """The heating's share of the seed's kWh per km at ``outside_temp``."""
        return 1.0 - self._c.drive_kwh_per_km / self._seed_drive_rest(outside_temp)

    def pack_factor(self, name: str) -> float:
        """SOC energy per kWh out at the terminals, ``name`` "drive" or "site": the model's
        kWh are the terminals' (the tracker integrates V·I there); the SOC, which the
        projection is about, falls by these times more."""
        f = self._pack[name]
        return f.mean if f.n else 1.0

    def _learn_pack(self, name: str, kwh: float, soc_used: float | None) -> None:
        if soc_used is None or kwh < _PACK_MIN_KWH:
            return
        ratio = soc_used / 100 * self._c.capacity_kwh / kwh
        if _PACK_MIN <= ratio <= _PACK_MAX:
            self._pack[name].average(ratio, _PACK_MIN_RATE)

    def _taught_today(self, name: str) -> bool:
        """Whether the day has taught the model about ``name`` (drive, site) already: its
        predictions are then the day-corrected ones, with errors of their own."""
        today = self._today.drive if name == "drive" else self._today.site
        return bool(self._today.ordinal and today.n)

    def _error(self, name: str) -> _Error:
        """The errors of the predictions the model makes now, for ``name`` (drive, site)."""
        return self._errors[f"{name}_{'later' if self._taught_today(name) else 'first'}"]

    def uncertainty(self) -> float:
        """Relative error of an energy prediction as the model makes it now (drive and site
        alike): its measured error, once the day's own lessons are in, against the day's
        later legs and visits; before them, against the first of a day.

        The spread of the bus's legs around the long run is mostly how days differ (the cold,
        the load), and by mid-morning the day's own lessons have told the model that: a
        margin for the rest of the day sized by that spread keeps, through the afternoon,
        energy the bus will not need, and hands it back late (a plan that changes after the
        noon projection said where the bus comes home).
        """
        return max(self._cv("drive", self._drive), self._cv("site", self._site))

    def _cv(self, name: str, factor: _Factor) -> float:
        if self._taught_today(name):
            return self._error(name).cv(self._c.prior_cv_later)
        return factor.cv(self._c.prior_cv)

    def margin_pct(self, remaining_kwh: float) -> float:
        """Safety margin in SOC % for a day with ``remaining_kwh`` still to use."""
        sigma_kwh = self.uncertainty() * max(0.0, remaining_kwh)
        return self._c.margin_pct + self._c.margin_sigmas * sigma_kwh / self._c.capacity_kwh * 100

    # --- learning (called by the tracker) -----------------------------------------

    def learn_leg(
        self, km: float, kwh: float, outside_temp: float, *, great_circle_km: float | None = None,
        road: tuple[str, str] | None = None, soc_used: float | None = None,
    ) -> bool:
        """A completed leg (on ``road``, when it ran between two known places, using
        ``soc_used`` points of SOC when that is known); returns False when it was implausible
        and ignored."""
        accepted = False
        if km >= 1.0 and kwh > 0:
            # The cooling is the site factor's to learn (:meth:`_drive_cooling`); the rest of
            # the leg teaches the drive factor.
            ratio = (kwh / km - self._drive_cooling(outside_temp)) / self._seed_drive_rest(
                outside_temp)
            this_road = self.road_energy(*road, outside_temp) if road is not None else 1.0
            average = self._drive.mean
            predicted, error = self._factor("drive"), self._error("drive")
            known = self._drive.n > 0  # the seed's own error is the prior's, not a measured one
            accepted = self._drive.learn(ratio / this_road, self._c.learn_rate)
            if accepted and known:
                error.learn(ratio / this_road / predicted - 1.0, self._c.learn_rate)
            if accepted and self._today.ordinal:
                t = self._today
                t.drive.learn(ratio / this_road / t.drive_prior, 1.0 / (t.drive.n + 1))
            # A road's cost is against the bus's average: none before its first leg (the
            # seed's error is not the road's).
            if accepted and road is not None and known:
                h = self._heating_share(outside_temp)
                # The prior: one leg at the average's cost, in this leg's cold.
                f = self._roads.setdefault(road_key(*road), _RoadCost(mh=h, n=1))
                f.learn(h, ratio / average, _ROAD_ENERGY_MIN_RATE)
            if accepted:
                self._learn_pack("drive", kwh, soc_used)
        if great_circle_km is not None and great_circle_km >= 1.0 and km > 0:
            ratio = km / great_circle_km
            if 1.0 <= ratio <= 3.0 and ratio <= self._road_ratio(road) * ANOTHER_ROUTE:
                self._road.average(ratio, _ROAD_MIN_RATE)
                if road is not None:  # each road its own length: one factor fits none exactly
                    self._road_km.setdefault(road_key(*road), _Factor()).average(
                        ratio, _ROAD_MIN_RATE)
        return accepted

    def _road_ratio(self, road: tuple[str, str] | None) -> float:
        """The km per straight-line km the bus expects of ``road``: its own, once driven."""
        f = self._road_km.get(road_key(*road)) if road is not None else None
        return f.mean if f is not None and f.n else self._road.mean

    def learn_road(self, a: str, b: str, km: float, *, plan_km: float | None,
                   straight_km: float) -> None:
        """A drive of ``km`` on the road from ``a`` to ``b``: its last drive, and how much of
        the last one's deviation it kept. Called before the leg teaches the long run."""
        self._roads_now.learn(road_key(a, b), km, self._long_run_km(
            a, b, plan_km=plan_km, straight_km=straight_km), self._today.ordinal)

    def learn_overrun(self, km: float, plan_km: float) -> bool:
        """A completed leg of ``km`` against the plan's ``plan_km`` for it."""
        if plan_km < 1.0 or km <= 0:
            return False
        ratio = km / plan_km
        if not _OVERRUN_MIN <= ratio <= _OVERRUN_MAX:
            return False
        return self._overrun.average(ratio, _ROAD_MIN_RATE)

    def learn_visit(self, minutes: float, kwh: float, outside_temp: float, *,
                    soc_used: float | None = None) -> bool:
        """A completed visit (that used ``soc_used`` points of SOC, when known); returns False
        when it was implausible and ignored."""
        if minutes < 10 or kwh < 0:
            return False
        predicted = self.seed_site_kw(outside_temp) * minutes / 60
        if predicted <= 0.05:
            return False
        ratio = max(kwh, 1e-6) / predicted
        factor, error, known = self._factor("site"), self._error("site"), self._site.n > 0
        accepted = self._site.learn(ratio, self._c.learn_rate)
        if accepted and known:
            error.learn(ratio / factor - 1.0, self._c.learn_rate)
        if accepted:
            self._learn_pack("site", kwh, soc_used)
        if accepted and self._today.ordinal:
            t = self._today
            t.site.learn(ratio / t.site_prior, 1.0 / (t.site.n + 1))
        return accepted

    # --- persistence ----------------------------------------------------------------

    def to_dict(self) -> dict[str, dict[str, float]]:
        t = self._today
        out = {
            name: {"mean": f.mean, "var": f.var, "n": f.n}
            for name, f in (("drive", self._drive), ("site", self._site), ("road", self._road),
                            ("overrun", self._overrun))
        }
        if self._roads:
            out["roads"] = {k: f.mr for k, f in self._roads.items()}
            out["roads_n"] = {k: float(f.n) for k, f in self._roads.items()}
            out["roads_h"] = {k: f.mh for k, f in self._roads.items()}
            out["roads_hh"] = {k: f.vhh for k, f in self._roads.items()}
            out["roads_hr"] = {k: f.chr for k, f in self._roads.items()}
        if self._road_km:
            out["road_km"] = {k: f.mean for k, f in self._road_km.items()}
            out["road_km_n"] = {k: float(f.n) for k, f in self._road_km.items()}
        if self._roads_now.last:
            out.update(self._roads_now.to_dict())
        out["pack"] = {k: v for name, f in self._pack.items()
                       for k, v in ((name, f.mean), (f"{name}_n", float(f.n)))}
        out["errors"] = {k: v for name, e in self._errors.items()
                         for k, v in ((name, e.ms), (f"{name}_n", float(e.n)))}
        if t.ordinal and (t.drive.n or t.site.n):  # saved with the lessons that make it
            out["today"] = {
                "ordinal": t.ordinal, "drive_prior": t.drive_prior, "site_prior": t.site_prior,
                "drive_mean": t.drive.mean, "drive_var": t.drive.var, "drive_n": t.drive.n,
                "site_mean": t.site.mean, "site_var": t.site.var, "site_n": t.site.n,
            }
        return out

    @classmethod
    def from_dict(cls, config: PlannerConfig, data: dict[str, dict[str, float]]) -> EnergyModel:
        model = cls(config)
        for name in ("drive", "site", "road", "overrun"):
            item = data.get(name)
            if item:
                setattr(
                    model, f"_{name}",
                    _Factor(float(item["mean"]), float(item["var"]), int(item["n"])),
                )
        counts, hs = data.get("roads_n", {}), data.get("roads_h", {})
        hh, hr = data.get("roads_hh", {}), data.get("roads_hr", {})
        model._roads = {k: _RoadCost(float(hs.get(k, 0.0)), float(m), float(hh.get(k, 0.0)),
                                     float(hr.get(k, 0.0)), int(counts.get(k, 1)))
                        for k, m in data.get("roads", {}).items()}
        km_n = data.get("road_km_n", {})
        model._road_km = {k: _Factor(float(m), 0.0, int(km_n.get(k, 1)))
                          for k, m in data.get("road_km", {}).items()}
        model._roads_now = RoadsNow.from_dict(data)
        pack = data.get("pack", {})
        for name in model._pack:
            if name in pack:
                model._pack[name] = _Factor(float(pack[name]), 0.0, int(pack.get(f"{name}_n", 0)))
        errors = data.get("errors", {})
        for name in _ERRORS:
            if name in errors:
                model._errors[name] = _Error(float(errors[name]),
                                             int(errors.get(f"{name}_n", 0)))
        today = data.get("today")
        if today:
            model._today = _Today(
                int(today["ordinal"]), float(today["drive_prior"]), float(today["site_prior"]),
                _Factor(float(today["drive_mean"]), float(today["drive_var"]),
                        int(today["drive_n"])),
                _Factor(float(today["site_mean"]), float(today["site_var"]), int(today["site_n"])),
            )
        return model
