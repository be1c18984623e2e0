"""The version string is written once, in busd/__init__.py; everything else reads it."""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from busd import __version__
from busd.clock import ManualClock
from busd.state import VehicleState
from telemetry.models import Status
from telemetry.wiring import build_uplink
from tests.conftest import REPO
from tests.support.uplink_env import bus_config

SOURCES = ("busd", "drivers", "telemetry", "simulators", "scripts", "systemd", "config")


def test_pyproject_reads_the_version_from_the_package() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert importlib.metadata.version("busd") == __version__


def test_the_version_literal_exists_once() -> None:
    literal = re.compile(re.escape(f'"{__version__}"') + "|" + re.escape(f"'{__version__}'"))
    found = [str(path.relative_to(REPO))
             for top in SOURCES for path in sorted((REPO / top).rglob("*"))
             if path.is_file() and path.suffix in (".py", ".toml", ".cfg", ".service")
             and literal.search(path.read_text(encoding="utf-8", errors="replace"))]
    found += ["pyproject.toml"] * bool(literal.search((REPO / "pyproject.toml").read_text()))
    assert found == ["busd/__init__.py"]


def test_busd_version_prints_it() -> None:
    out = subprocess.run([sys.executable, "-m", "busd.cli", "--version"], cwd=REPO,
                         capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == f"busd {__version__}"


def test_the_status_message_carries_it(tmp_path: Path) -> None:
    clock = ManualClock()
    parts = build_uplink(bus_config(tmp_path, 1883), state=VehicleState(clock), clock=clock)
    status = Status.model_validate(json.loads(parts.uplink._status(True)))
    assert status.version == __version__
