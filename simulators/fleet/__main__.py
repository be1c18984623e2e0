"""``python -m simulators.fleet``: the command line (see the package's docstring)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from pydantic import ValidationError

from busd.logs import configure_logging
from simulators.fleet.config import FleetConfig, OutageConfig, RatesConfig
from simulators.fleet.runner import process_main, run_fleet


def parse_broker(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host or "127.0.0.1", int(port)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m simulators.fleet", description=__doc__)
    p.add_argument("--config", type=Path,
                   help="a FleetConfig as JSON (the options below override it)")
    p.add_argument("--process", type=int, help=argparse.SUPPRESS)  # a child of the parent
    p.add_argument("--buses", type=int)
    p.add_argument("--processes", type=int)
    p.add_argument("--broker", type=parse_broker, metavar="HOST:PORT")
    p.add_argument("--speed", type=float, help="simulated seconds per real second")
    p.add_argument("--duration", type=float, metavar="S",
                   help="simulated seconds the buses produce records")
    p.add_argument("--seed", type=int)
    p.add_argument("--data-dir", type=Path, help="the outboxes (default: a temporary directory)")
    p.add_argument("--backlog-min", type=float, help="minutes of records made before connecting")
    p.add_argument("--backlog-only", action="store_true",
                   help="make the backlogs in --data-dir and stop (no broker needed)")
    p.add_argument("--outages", type=int, help="link outages per bus")
    p.add_argument("--telemetry", type=float, nargs=2, metavar=("MOVING_S", "PARKED_S"),
                   help="telemetry intervals (simulated seconds)")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    args = p.parse_args(argv)
    if args.process is not None:
        if args.config is None:
            p.error("--process needs --config")
        return process_main(args.config, args.process)
    try:
        base = FleetConfig.model_validate_json(args.config.read_text(encoding="utf-8")) \
            if args.config else FleetConfig()
        update: dict[str, object] = {k: v for k, v in {
            "buses": args.buses, "processes": args.processes, "speed": args.speed,
            "duration_s": args.duration, "seed": args.seed, "data_dir": args.data_dir,
            "backlog_min": args.backlog_min, "log_level": args.log_level,
        }.items() if v is not None}
        if args.broker:
            update["broker_host"], update["broker_port"] = args.broker
        if args.backlog_only:
            update["live"] = False
        if args.outages is not None:
            update["outages"] = OutageConfig.model_validate(
                base.outages.model_dump() | {"count": args.outages})
        if args.telemetry:
            update["rates"] = RatesConfig.model_validate(
                base.rates.model_dump() | {"telemetry_moving_s": args.telemetry[0],
                                           "telemetry_parked_s": args.telemetry[1]})
        config = FleetConfig.model_validate(base.model_dump() | update)
    except (ValidationError, OSError) as err:
        print(f"simulators.fleet: {err}", file=sys.stderr)
        return 2
    configure_logging(config.log_level, "json")
    report = asyncio.run(run_fleet(config))
    return 0 if report.failed_processes == 0 and report.buses == config.buses else 1


if __name__ == "__main__":
    sys.exit(main())
