"""The day's work: the monitoring log (legs, visits, summary) and the stop planner."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from busd.config.base import Strict


class MonitoringConfig(Strict):
    """The monitoring log: legs, visits, charging sessions, daily summary."""

    db: Path | None = Field(
        default=None,
        description="SQLite file of the monitoring store; default data_dir/monitoring.sqlite",
    )
    plan: Path | None = Field(
        default=None, description="the day's stop plan file (TOML or JSON), relative to this file"
    )
    min_visit_min: float = Field(
        default=3.0, gt=0, le=60,
        description="stopped at least this long to count as a visit (shorter is a traffic stop)",
    )
    exit_margin_m: float = Field(
        default=30.0, ge=0, le=500,
        description="hysteresis: a visit ends this far outside the stop's geofence",
    )
    unplanned_radius_m: float = Field(
        default=100.0, gt=10, le=2000, description="geofence drawn around an unplanned stop"
    )
    gps_min_step_m: float = Field(
        default=15.0, ge=0, le=200,
        description="GPS track cross-check: ignore moves shorter than this (parked jitter)",
    )
    energy_gap_s: float = Field(
        default=5.0, gt=0, le=300,
        description="battery current older than this is a gap in the energy figures, not held",
    )
    soc_sample_s: float = Field(default=60.0, gt=0, le=3600, description="SOC log interval")
    checkpoint_s: float = Field(
        default=60.0, gt=0, le=3600,
        description="open legs/visits are saved this often, so a crash loses at most this much",
    )
    summary_at: time = Field(
        default=time(21, 0), description="local time (plan time zone) of the daily summary"
    )
    timezone: str = Field(default="Europe/Riga", description="time zone of days and summary_at")
    retention_days: int = Field(
        default=400, ge=7, le=3660,
        description="monitoring records older than this are deleted by a daily job",
    )


class PlannerConfig(Strict):
    """The SOC-aware stop planner: energy model seeds, safety, stability.

    Energy seeds are linear in the cold and in the heat: driving ``drive_kwh_per_km`` plus
    ``drive_kwh_per_km_per_k`` for every kelvin below ``drive_ref_temp_c`` (heating) and
    ``drive_cooling_kwh_per_km_per_k`` for every kelvin above ``cooling_above_c`` (air
    conditioning); on site ``site_kw`` plus ``site_kw_per_k`` below ``site_ref_temp_c`` and
    ``site_cooling_kw_per_k`` above ``cooling_above_c``. The bus's own legs and visits
    correct them (see busd.planner.energy).
    """

    enabled: bool = Field(default=True, description="run the planner component")
    plan_file: Path | None = Field(
        default=None, description="the day's plan (TOML or JSON); the office may replace it"
    )
    capacity_kwh: float = Field(default=110.0, gt=0, le=1000, description="usable pack energy")
    reserve_pct: float = Field(
        default=15.0, ge=0, le=60, description="SOC that must be left on arrival at the depot"
    )
    margin_pct: float = Field(
        default=3.0, ge=0, le=30, description="safety margin above the reserve, before uncertainty"
    )
    margin_sigmas: float = Field(
        default=1.0, ge=0, le=5,
        description="extra margin: this many standard deviations of the model's error "
        "on the remaining energy",
    )
    drive_kwh_per_km: float = Field(default=0.26, gt=0, le=3, description="seed, warm road")
    drive_kwh_per_km_per_k: float = Field(
        default=0.0035, ge=0, le=0.1, description="seed, extra kWh/km per kelvin below ref"
    )
    drive_ref_temp_c: float = Field(default=15.0, ge=-20, le=40)
    site_kw: float = Field(default=1.0, ge=0, le=50, description="seed, on site, no heating")
    site_kw_per_k: float = Field(
        default=0.12, ge=0, le=5, description="seed, extra on-site kW per kelvin below ref"
    )
    site_ref_temp_c: float = Field(default=18.0, ge=-20, le=40)
    # The air conditioning: about 0.12 kW per kelvin above 24 °C on a minibus of this size
    # (simulators/can/model.py draws as much); driving at 50 km/h, 0.0024 kWh per km.
    cooling_above_c: float = Field(
        default=24.0, ge=-20, le=50,
        description="air conditioning above this outside temperature (no heating above "
        "either reference temperature)",
    )
    site_cooling_kw_per_k: float = Field(
        default=0.12, ge=0, le=5, description="seed, extra on-site kW per kelvin above "
        "cooling_above_c",
    )
    drive_cooling_kwh_per_km_per_k: float = Field(
        default=0.0024, ge=0, le=0.1, description="seed, extra kWh/km per kelvin above "
        "cooling_above_c",
    )
    road_factor: float = Field(
        default=1.3, ge=1.0, le=3.0, description="seed, road km per great-circle km"
    )
    learn_rate: float = Field(
        default=0.2, gt=0, le=1, description="weight of each new leg/visit in the learned factors"
    )
    prior_cv: float = Field(
        default=0.10, ge=0, le=1, description="relative error assumed before any learning"
    )
    # Days differ by the cold, the load and the roads; within a day, once its first leg and
    # visit have corrected the model, what is left is the weather's course and the traffic.
    # The simulated days measure 1.6 % there (day-to-day: 9-11 %); half the day-to-day prior
    # keeps a fresh bus from holding its morning's margin all afternoon.
    prior_cv_later: float = Field(
        default=0.05, ge=0, le=1,
        description="relative error assumed for the rest of a day once the day's own legs "
        "and visits have corrected the model, before such errors have been measured",
    )
    speed_kmh: float = Field(default=50.0, gt=5, le=120, description="average road speed")
    charge_max_pct: float = Field(default=90.0, gt=0, le=100, description="charge no higher")
    charge_taper_pct: float = Field(
        default=80.0, gt=0, le=100, description="SOC where charging power starts to fall"
    )
    charge_taper_floor: float = Field(
        default=0.2, gt=0, le=1, description="fraction of the power left at 100 %"
    )
    max_charge_kw: float = Field(default=50.0, gt=0, le=400, description="what the bus accepts")
    charge_overhead_min: float = Field(
        default=5.0, ge=0, le=60, description="plugging in, paying, leaving"
    )
    charge_buffer_pct: float = Field(
        default=5.0, ge=0, le=50, description="charge this much above the bare need"
    )
    visit_step_min: float = Field(
        default=5.0, gt=0, le=60, description="visit lengths are proposed in these steps"
    )
    reorder_penalty_min: float = Field(
        default=20.0, ge=0, le=600,
        description="cost of each pair of stops swapped against the announced order, "
        "in minutes of lateness",
    )
    exact_max_stops: int = Field(
        default=10, ge=0, le=12, description="exact search up to this many remaining stops"
    )
    hysteresis_pct: float = Field(
        default=2.0, ge=0, le=20,
        description="a pending proposal is replaced only when its projected depot SOC moves "
        "this much, and withdrawn only when the active plan is this much above the line",
    )
    # Twice the hysteresis: a restoration leaves at least hysteresis_pct to spare, so the
    # spare left unused waits in [hysteresis, restore) until it is handed back, often after
    # the noon projection said where the bus comes home. The margin below the line already
    # holds the model's measured error; this band is for stability only.
    restore_margin_pct: float = Field(
        default=4.0, ge=0, le=50,
        description="propose restoring shortened or skipped stops only with this much to spare",
    )
    min_interval_s: float = Field(
        default=30.0, ge=0, le=3600, description="re-project at most this often"
    )
    max_interval_s: float = Field(
        default=120.0, gt=0, le=3600, description="re-project at least this often"
    )
    language: Literal["lv", "lt", "en"] = Field(default="lv", description="driver's language")

    @model_validator(mode="after")
    def _check(self) -> PlannerConfig:
        if self.reserve_pct + self.margin_pct >= self.charge_max_pct:
            raise ValueError("reserve_pct + margin_pct must be below charge_max_pct")
        if self.max_interval_s < self.min_interval_s:
            raise ValueError("max_interval_s is below min_interval_s")
        if self.cooling_above_c < max(self.site_ref_temp_c, self.drive_ref_temp_c):
            # A bus does not heat and cool at once: the seeds would count both.
            raise ValueError("cooling_above_c is below site_ref_temp_c or drive_ref_temp_c")
        return self
