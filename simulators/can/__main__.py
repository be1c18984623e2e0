"""Run the CAN simulator as its own process: ``python -m simulators.can``.

Examples::

    # an slcan adapter for a daemon in another process, 1,000 frames/s in all
    python -m simulators.can --slcan-link /tmp/busd-can --fps 1000
    # the simulator section of a busd config, 60 times faster than real time
    python -m simulators.can --config config/sim.toml --speed 60
    # replay a recording through the pty
    python -m simulators.can --slcan-link /tmp/busd-can --replay tests/fixtures/can_sim_drive.log
    # write a synthetic recording and exit
    python -m simulators.can --record tests/fixtures/can_sim_drive.log --duration 40 \
        --fps 120 --cruise 50 --drive-s 25 --stop-s 15

Explicit options override the config file's ``[simulators.can]`` values.
SIGTERM or SIGINT stops it cleanly (the pty link is removed).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from busd.clock import Clock, ScaledClock, SystemClock
from busd.config import CanSimulatorConfig, load_config
from busd.errors import BusdError
from busd.logs import configure_logging
from busd.supervisor import Backoff, Phase, Supervisor
from simulators.can.record import record_log
from simulators.can.simulator import CanSimulator

DEFAULT_DBC = Path(__file__).resolve().parents[2] / "config" / "busd.dbc"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m simulators.can", description=__doc__.split("\n")[0])
    p.add_argument("--config", type=Path, help="busd TOML config; uses its [simulators.can]")
    p.add_argument("--dbc", type=Path, help="DBC file (default: the project's config/busd.dbc)")
    p.add_argument("--interface", help="python-can interface to send on (e.g. virtual, socketcan)")
    p.add_argument("--channel", help="python-can channel to send on (e.g. vcan0)")
    p.add_argument("--slcan-link", type=Path, help="serve an slcan adapter on a pty linked here")
    p.add_argument("--replay", type=Path, help="replay this CAN log instead of the model")
    p.add_argument("--no-loop", action="store_true", help="replay once, then exit")
    p.add_argument("--speed", type=float, help="simulated seconds per real second")
    p.add_argument("--fps", type=float, help="total frames per second incl. background traffic")
    p.add_argument("--soc", type=float, help="initial SOC, %%")
    p.add_argument("--outside-temp", type=float, help="outside temperature, °C")
    p.add_argument("--cruise", type=float, help="duty cycle: cruising speed, km/h")
    p.add_argument("--drive-s", type=float, help="duty cycle: seconds of each drive")
    p.add_argument("--stop-s", type=float, help="duty cycle: seconds of each stop")
    p.add_argument("--record", type=Path, help="write a synthetic recording here and exit")
    p.add_argument("--duration", type=float, default=30.0, help="seconds to --record")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def build_config(args: argparse.Namespace) -> tuple[CanSimulatorConfig, float]:
    """The simulator's config and clock speed from the file (if any) and the options."""
    base: dict[str, Any] = {"dbc": DEFAULT_DBC}
    speed = 1.0
    if args.config is not None:
        cfg = load_config(args.config)
        if cfg.simulators.can is not None:
            base = cfg.simulators.can.model_dump()
        speed = cfg.simulators.speed
    overrides = {
        "dbc": args.dbc,
        "interface": args.interface,
        "channel": args.channel,
        "slcan_link": args.slcan_link,
        "replay": args.replay,
        "fps": args.fps,
        "initial_soc": args.soc,
        "outside_temp_c": args.outside_temp,
        "cruise_kmh": args.cruise,
        "drive_s": args.drive_s,
        "stop_s": args.stop_s,
    }
    base.update({k: v for k, v in overrides.items() if v is not None})
    if args.no_loop:
        base["replay_loop"] = False
    if args.speed is not None:
        speed = args.speed
    return CanSimulatorConfig(**base), speed


async def _serve(config: CanSimulatorConfig, speed: float) -> None:
    clock: Clock = SystemClock() if speed == 1.0 else ScaledClock(speed=speed)
    sim = CanSimulator(config, clock, time_scale=speed)
    supervisor = Supervisor([sim], clock=clock, backoff=Backoff(initial_s=1.0, max_s=10.0))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, supervisor.request_stop)
    runner = asyncio.create_task(supervisor.run(), name="sim.can.supervisor")
    if config.replay is not None and not config.replay_loop:
        # A single replay pass ends the process once it has finished.
        while not supervisor.stopping and supervisor.health[sim.name].phase is not Phase.FINISHED:
            await asyncio.wait({runner}, timeout=0.2)
        supervisor.request_stop()
    await runner


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        config, speed = build_config(args)
        if args.record is not None:
            n = record_log(args.record, config, duration_s=args.duration)
            print(f"wrote {n} frames to {args.record}")
            return 0
        asyncio.run(_serve(config, speed))
    except BusdError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ValueError as err:  # pydantic ValidationError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
