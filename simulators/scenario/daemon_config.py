"""The daemon's side of a scenario: its generated config, plan file and TOML.

Everything here is in *simulated* seconds and scaled to the run's speed, so an
accelerated day keeps the daemon's periods light in real time and its
freshness limits above what the accelerated pipes (gpsd, slcan) delay.
"""

from __future__ import annotations

import json
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from busd.config import BusdConfig
from busd.signals import SIGNALS
from simulators.scenario.model import LoadedScenario

ROOT = Path(__file__).resolve().parents[2]
DBC = ROOT / "config" / "busd.dbc"
SIM_CONFIG = ROOT / "config" / "sim.toml"


def plan_file(loaded: LoadedScenario, workdir: Path) -> Path:
    """The plan the daemon gets: the scenario's, without chargers that do not work today."""
    data = tomllib.loads(loaded.scenario.plan.read_text(encoding="utf-8"))
    if not loaded.scenario.chargers.reachable:
        data["chargers"] = []
    path = workdir / "plan.json"
    path.write_text(json.dumps(data, default=str, ensure_ascii=False, indent=1),
                    encoding="utf-8")
    return path


def summary_at(loaded: LoadedScenario) -> str:
    """Half an hour after the plan's return time (a bus still out then is waited for)."""
    plan = loaded.plan
    at = datetime.combine(plan.date, plan.depot.return_by) + timedelta(minutes=30)
    return at.time().isoformat()


def daemon_config(loaded: LoadedScenario, *, speed: float, workdir: Path, bus_id: str,
                  display: bool, display_port: int | None, mqtt_port: int, gpsd_port: int,
                  can_link: Path, lift_link: Path, plan: Path,
                  anchor_real: float) -> dict[str, Any]:
    """The daemon's config for a scenario at ``speed``, validated before the child sees it."""
    scenario = loaded.scenario
    sim_mapping = tomllib.loads(SIM_CONFIG.read_text(encoding="utf-8"))["can"]["mapping"]
    # The rate plausibility rules compare values by arrival time; at hundreds of
    # simulated seconds per real second, frames that arrive in one read look
    # simultaneous, so the rules would drop real steps. Ranges still apply.
    for entry in sim_mapping:
        entry.pop("max_rate", None)
        entry.pop("max_step", None)  # bounds the rate rule's steps: goes with it
    # Periods in simulated seconds, sized so an accelerated day stays light in real time.
    slow = max(1.0, speed / 10.0)  # ~10 real Hz
    gps_epoch = gps_epoch_s(speed)
    fresh = {name: max(spec.freshness_s, 60.0)
             for name, spec in SIGNALS.items()}
    for name in fresh:
        if name.startswith("gps."):
            fresh[name] = max(fresh[name], 3 * gps_epoch + 2 * slow)
        elif name.startswith("lift."):
            fresh[name] = max(fresh[name], 4 * lift_poll_s(speed) + 2 * slow)
    data: dict[str, Any] = {
        "bus_id": bus_id,
        "data_dir": str(workdir / "bus"),
        "log": {"level": "info", "format": "json"},
        "freshness_s": fresh,
        # No read gathering in the slcan bus: on the accelerated clock its 50 ms would be
        # half a simulated minute of frames sharing one time, and the energy integral
        # (V x I on every update) would lose what happened in between.
        "can": {"interface": "slcan_stream", "channel": str(can_link), "bitrate": 500000,
                "dbc": str(DBC), "dbc_strict": True, "silence_timeout_s": 120.0,
                "mapping": sim_mapping, "options": {"gather_s": 0.0}},
        "gps": {"source": "gpsd", "host": "127.0.0.1", "port": gpsd_port,
                "stale_after_s": 4 * gps_epoch + 2 * slow,
                "time_offset_alarm_s": max(5.0, 2 * slow)},
        "lift": {"port": str(lift_link), "unit_id": 1, "poll_interval_s": lift_poll_s(speed),
                 "timeout_s": 0.5},
        # The SOC-aware planner on the same plan (without today's unusable chargers).
        "planner": {"plan_file": str(plan), "reserve_pct": scenario.reserve_pct,
                    "capacity_kwh": scenario.capacity_kwh},
        "monitoring": {"plan": str(plan), "summary_at": summary_at(loaded),
                       "energy_gap_s": 60.0, "soc_sample_s": 60.0, "checkpoint_s": 60.0},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "reconnect_initial_s": 0.5 * speed,
                 "reconnect_max_s": 2.0 * speed},
        "outbox": {"commit_interval_s": min(30.0, 5.0 * max(1.0, speed / 60)),
                   "synchronous": "NORMAL", "delete_interval_s": max(30.0, slow)},
        "uplink": {"state_interval_moving_s": max(1.0, slow),
                   "state_interval_parked_s": max(30.0, slow),
                   "telemetry_interval_moving_s": max(1.0, speed / 20.0),
                   "telemetry_interval_parked_s": max(10.0, speed / 5.0),
                   "telemetry_keyframe_s": max(60.0, 600.0)},
        "display": {"enabled": display, "port": display_port or 0,
                    "push_interval_s": 0.5},
        "simulators": {"speed": speed, "clock_anchor": {
            "sim_epoch": loaded.start_ts, "real_epoch": anchor_real}},
    }
    BusdConfig(**data)  # fail here, naming the key, not in the child
    return data


def gps_epoch_s(speed: float) -> float:
    """Simulated seconds between GPS fixes: ~25 a real second."""
    return float(max(1, round(speed / 25.0)))


def lift_poll_s(speed: float) -> float:
    """Simulated seconds between the daemon's polls of the lift unit."""
    return min(5.0, max(0.25, speed / 60.0))


def to_toml(data: dict[str, Any]) -> str:
    """A small TOML writer for the generated config (tables, arrays of tables, scalars)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str | Path):
            return json.dumps(str(v), ensure_ascii=False)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + " }"
        raise TypeError(type(v))

    lines: list[str] = []

    def table(prefix: str, d: dict[str, Any]) -> None:
        scalars = {k: v for k, v in d.items()
                   if not isinstance(v, dict) and not (isinstance(v, list) and v
                                                       and isinstance(v[0], dict))}
        if prefix:
            lines.append(f"\n[{prefix}]")
        lines.extend(f"{json.dumps(k)} = {value(v)}" for k, v in scalars.items())
        for k, v in d.items():
            key = f"{prefix}.{json.dumps(k)}" if prefix else json.dumps(k)
            if isinstance(v, dict) and k not in ("freshness_s",):
                table(key, v)
            elif isinstance(v, dict):
                lines.append(f"\n[{key}]")
                lines.extend(f"{json.dumps(n)} = {value(x)}" for n, x in v.items())
            elif isinstance(v, list) and v and isinstance(v[0], dict):
                for item in v:
                    lines.append(f"\n[[{key}]]")
                    lines.extend(f"{json.dumps(n)} = {value(x)}" for n, x in item.items())

    table("", data)
    return "\n".join(lines) + "\n"
