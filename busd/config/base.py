"""``Strict``, the base of every section (unknown keys are errors; frozen); logging; supervisor;
motion (what counts as moving and stopped)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    # Numbers must be finite: TOML has ``inf`` and ``nan``, and no threshold means either.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class MotionConfig(Strict):
    """The one definition of moving and stopped (busd/motion.py; every part uses it)."""

    stopped_kmh: float = Field(
        default=3.0, gt=0, le=15,
        description="at or below this speed (wheel speed; GPS speed without it) the bus is "
                    "stopped, above it the bus moves",
    )


class LogConfig(Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class SupervisorConfig(Strict):
    backoff_initial_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=60.0, gt=0)
    stop_timeout_s: float = Field(default=4.5, gt=0, le=30)
