"""The ``busd`` command: run, check-config (and, as they arrive, office, report, plan…)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence

import structlog

from busd import __version__
from busd.app import Prepared, build_daemon, make_clock, prepare
from busd.config import CONFIG_ENV, BusdConfig, load_config
from busd.errors import ConfigError
from busd.logs import configure_logging

EXIT_OK = 0
EXIT_CONFIG = 2


def _load_and_prepare(path: str | None) -> tuple[BusdConfig, Prepared]:
    config = load_config(path)
    return config, prepare(config)


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        _load_and_prepare(args.file)
    except ConfigError as err:
        print(f"{args.file}: invalid configuration", file=sys.stderr)
        for key, reason in err.problems:
            print(f"  {key}: {reason}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"{args.file}: OK")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    path = args.config or os.environ.get(CONFIG_ENV)
    try:
        config, prepared = _load_and_prepare(path)
    except ConfigError as err:
        print(f"busd: refusing to start, invalid configuration {path or ''}", file=sys.stderr)
        for key, reason in err.problems:
            print(f"  {key}: {reason}", file=sys.stderr)
        return EXIT_CONFIG
    view = args.view == "on" or (args.view == "auto" and sys.stdout.isatty())
    log_stream = sys.stderr
    if view:
        # The live view owns the terminal; the log goes to a file beside the databases.
        config.data_dir.mkdir(parents=True, exist_ok=True)
        log_stream = open(config.data_dir / "busd.log", "a", buffering=1, encoding="utf-8")  # noqa: SIM115
    configure_logging(config.log.level, "json" if view else config.log.format, stream=log_stream)
    structlog.contextvars.bind_contextvars(bus=config.bus_id)
    return asyncio.run(_run_daemon(config, prepared, view=view))


async def _run_daemon(config: BusdConfig, prepared: Prepared, *, view: bool) -> int:
    clock = make_clock(config)
    daemon = build_daemon(prepared, clock)
    if view:
        from busd.terminal import TerminalView

        # Added last, so it stops first and leaves the terminal clean.
        daemon.supervisor.add(
            TerminalView(
                state=daemon.state, health=lambda: daemon.supervisor.health, clock=clock,
                bus_id=config.bus_id,
            )
        )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, daemon.supervisor.request_stop)
    log = structlog.get_logger("busd")
    log.info("busd_starting", version=__version__, config_bus=config.bus_id)
    try:
        await daemon.supervisor.run()
    finally:
        await asyncio.to_thread(daemon.store.close)
    log.info("busd_stopped")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="busd", description="MultiMobile on-board daemon")
    parser.add_argument("--version", action="version", version=f"busd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("--config", help=f"config file (default: ${CONFIG_ENV})")
    run.add_argument(
        "--view", choices=("auto", "on", "off"), default="auto",
        help="live state on the terminal (auto: when stdout is a terminal)",
    )
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", help="validate a config file and what it points at")
    check.add_argument("file")
    check.set_defaults(func=cmd_check_config)

    from office.cli import add_office_parser

    add_office_parser(sub)

    from telemetry.report_cli import add_report_parser

    add_report_parser(sub)

    from busd.status_cli import add_status_parser

    add_status_parser(sub)

    from busd.planner.cli import add_plan_parser

    add_plan_parser(sub)

    from simulators.scenario.demo_cli import add_demo_parser

    add_demo_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
