"""The fleet simulator's settings: how many buses, where the broker is, how fast, what goes wrong.

Times inside the simulation (``duration_s``, the day's phases, the outages, the uplink's rates)
are simulated seconds, run ``speed`` times faster than real ones; ``drain_timeout_s`` is real
time, since it waits on the broker and the office.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

Minutes = Annotated[float, Field(ge=0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class MinutesRange(Strict):
    """A duration drawn uniformly from ``[low, high]`` minutes."""

    low: Minutes
    high: Minutes

    @model_validator(mode="after")
    def _order(self) -> MinutesRange:
        if self.low > self.high:
            raise ValueError("low is above high")
        return self


class DayConfig(Strict):
    """One bus's day: depot, a few villages, back to the depot, charging, the daily report."""

    stops: int = Field(default=5, ge=1, le=7, description="villages served (of the seven known)")
    depot_min: MinutesRange = MinutesRange(low=5, high=20)
    visit_min: MinutesRange = MinutesRange(low=60, high=120)
    charge_min: MinutesRange = MinutesRange(low=30, high=60)
    lift_every_min: MinutesRange = Field(
        default=MinutesRange(low=10, high=40), description="between lift cycles on site")
    alert_probability: float = Field(
        default=0.3, ge=0, le=1, description="chance of a lift-door alert at each visit")
    outside_temp_c: float = -12.0


class OutageConfig(Strict):
    """Each bus loses its link to the broker ``count`` times, at seeded random moments."""

    count: int = Field(default=1, ge=0, le=20)
    length_min: MinutesRange = MinutesRange(low=5, high=30)


class RatesConfig(Strict):
    """The bus's uplink settings that shape the record stream (busd.config.UplinkConfig)."""

    telemetry_moving_s: float = Field(default=1.0, gt=0)
    telemetry_parked_s: float = Field(default=10.0, gt=0)
    state_moving_s: float = Field(default=1.0, gt=0)
    state_parked_s: float = Field(default=30.0, gt=0)
    commit_interval_s: float = Field(
        default=1.0, gt=0, le=30, description="the outbox's telemetry group commit")
    tick_s: float = Field(default=1.0, gt=0, description="how often the day model moves on")


class FleetConfig(Strict):
    buses: int = Field(default=50, ge=1, le=10_000)
    processes: int = Field(default=2, ge=1, le=64)
    broker_host: str = "127.0.0.1"
    broker_port: int = Field(default=1883, ge=1, le=65535)
    speed: float = Field(default=600.0, gt=0, description="simulated seconds per real second")
    duration_s: float = Field(
        default=3600.0, gt=0, description="simulated time the buses produce records")
    seed: int = 1
    bus_prefix: str = Field(default="sim", pattern=r"^[a-z0-9][a-z0-9-]{0,20}$")
    data_dir: Path | None = Field(
        default=None, description="the buses' outboxes; a temporary directory when unset")
    backlog_min: float = Field(
        default=0.0, ge=0, description="minutes of records each bus holds before it connects")
    live: bool = Field(
        default=True, description="False: only make the backlogs (in data_dir) and stop, so "
        "that several runs can start from copies of the same outboxes")
    day: DayConfig = DayConfig()
    outages: OutageConfig = OutageConfig()
    rates: RatesConfig = RatesConfig()
    reconnect_initial_s: float = Field(default=0.5, gt=0,
                                       description="the uplink's back-off (its default)")
    reconnect_max_s: float = Field(default=60.0, gt=0)
    drain_timeout_s: float = Field(
        default=120.0, gt=0, description="real seconds to wait for the outboxes to empty")
    log_level: str = Field(default="warning", pattern=r"^(debug|info|warning|error)$")

    @model_validator(mode="after")
    def _check(self) -> FleetConfig:
        if self.processes > self.buses:
            raise ValueError("more processes than buses")
        return self

    def bus_id(self, index: int) -> str:
        return f"{self.bus_prefix}-{index + 1:03d}"

    def share(self, process: int) -> list[int]:
        """The bus indices process ``process`` runs (round robin)."""
        return list(range(process, self.buses, self.processes))
