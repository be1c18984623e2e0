"""The ``busd`` command: run, check-config (and, as they arrive, office, report, plan…)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import structlog

from busd import __version__
from busd.errors import ConfigError
from busd.logs import configure_logging

if TYPE_CHECKING:
    from busd.app import Prepared
    from busd.config import BusdConfig

# The bus's config is loaded only by the commands that read it (busd.config.loading.CONFIG_ENV,
# checked by tests/test_lean_imports.py): a restarted office worker starts without it.
CONFIG_ENV = "BUSD_CONFIG"

EXIT_OK = 0
EXIT_CONFIG = 2


# The sub-commands kept in modules of their own, by name. A command line that names one loads
# only its module: a ``busd office ingest`` worker restarted after a crash is back on its
# shared subscription about a second sooner on a busy machine without the bus's composition
# root, and ``busd run`` does not load the office. ``busd --help`` loads them all.
_COMMANDS: dict[str, tuple[str, str]] = {
    "office": ("office.cli", "add_office_parser"),
    "report": ("telemetry.report_cli", "add_report_parser"),
    "status": ("busd.status_cli", "add_status_parser"),
    "plan": ("busd.planner.cli", "add_plan_parser"),
    "demo": ("simulators.scenario.demo_cli", "add_demo_parser"),
}
_BUILT_IN = ("run", "check-config")


def _load_and_prepare(path: str | None) -> tuple[BusdConfig, Prepared]:
    from busd.app import prepare
    from busd.config import load_config

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
    from busd.app import build_daemon, make_clock

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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole CLI, or (``command``) the built-in commands and that one only."""
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

    for name, (module, register) in _COMMANDS.items():
        if command is None or command == name:
            getattr(importlib.import_module(module), register)(sub)
    return parser


def command_of(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names, when it is one we know; None for ``--help`` or a typo (the
    whole parser then lists every command)."""
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    return first if first in _COMMANDS or first in _BUILT_IN else None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(command_of(argv)).parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
