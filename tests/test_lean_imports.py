"""`busd run` keeps libraries it never uses out of its memory (issue 12, point 9)."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import REPO


def loaded(setup: str, names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` a fresh interpreter has imported after running ``setup``."""
    code = f"import sys\n{setup}\nprint(sorted(n for n in {names!r} if n in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True,
                         capture_output=True, text=True, timeout=60).stdout
    return list(ast.literal_eval(out.strip()))


# What `python -m busd.cli run` imports before its first await: the CLI and all
# its sub-command parsers, the composition root, and the default drivers.
_DAEMON_IMPORTS = """
import busd.cli
busd.cli.build_parser()
import busd.app, drivers.can.reader, drivers.can.slcan_stream, drivers.gps, drivers.lift
import telemetry.monitoring_store
"""


def test_the_daemon_imports_neither_numpy_nor_rich() -> None:
    # numpy came with sqlite-utils (16 MB; it also brought click and pluggy), rich and
    # pygments with structlog and the report command, the scenario runner with the demo
    # command; pydantic-settings (6 MB with python-dotenv and its cloud sources) did only
    # the environment override; aiohttp (10 MB with its client) served only the display.
    assert loaded(_DAEMON_IMPORTS, ("numpy", "rich", "pygments", "simulators.scenario.runner",
                                    "pydantic_settings", "sqlite_utils", "aiohttp")) == []


def test_rich_and_numpy_still_import_for_those_who_use_them() -> None:
    code = ("import busd.cli, telemetry.monitoring_store, rich.console, numpy, structlog;"
            "print(structlog.get_logger() is not None)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True,
                         capture_output=True, text=True, timeout=60).stdout
    assert out.strip() == "True"
    # And the check above sees them when they are imported.
    assert loaded("import rich.console, numpy", ("numpy", "rich", "aiohttp")) == ["numpy", "rich"]


_OFFICE_IMPORTS = """
import sys
import busd.cli
busd.cli.build_parser(busd.cli.command_of(["office", "ingest", "--archive", "x"]))
print(sorted(name for name in ("busd.app", "drivers.can.reader", "drivers.gps",
                              "telemetry.report_cli", "busd.planner.cli",
                              "simulators.scenario.demo_cli", "office.cli")
             if name in sys.modules))
"""


def test_an_office_command_loads_the_office_and_not_the_bus() -> None:
    # A restarted ingest worker is back on its shared subscription sooner without the bus's
    # composition root and drivers (about 0.35 s here when idle, over a second when busy).
    out = subprocess.run([sys.executable, "-c", _OFFICE_IMPORTS], cwd=REPO, check=True,
                         capture_output=True, text=True, timeout=60).stdout
    assert out.strip() == "['office.cli']"


def test_help_and_a_mistyped_command_still_list_every_command() -> None:
    from busd.cli import build_parser, command_of

    assert command_of(["--log-level", "x"]) is None
    assert command_of(["ofice"]) is None
    assert command_of(["report", "--day", "2026-01-01"]) == "report"
    help_text = build_parser(None).format_help()
    assert "{run,check-config,office,report,status,plan,demo}" in help_text
    assert "{run,check-config,office}" in build_parser("office").format_help()


_INGEST_IMPORTS = """
import busd.cli
busd.cli.build_parser(busd.cli.command_of(["office", "ingest", "--archive", "x"]))
import office.ingest, office.archive.postgres, office.archive.sqlite
"""


def test_an_ingest_worker_loads_neither_the_bus_config_nor_the_schedule() -> None:
    # Every `busd office` command builds the plan commands' parsers; their modules (the
    # schedule, the planner, the bus's whole config) are imported when a plan command runs.
    # A worker restarted after a crash is back about a fifth of a second sooner when idle, and
    # its share of the live records waits at the broker for it meanwhile.
    assert loaded(_INGEST_IMPORTS, ("busd.config", "busd.planner.core", "office.schedule.day",
                                    "office.schedule.model")) == []


def test_the_cli_names_the_config_variable_the_loader_reads() -> None:
    from busd.cli import CONFIG_ENV
    from busd.config import CONFIG_ENV as LOADER_ENV

    assert CONFIG_ENV == LOADER_ENV
