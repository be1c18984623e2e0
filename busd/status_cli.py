"""``busd status``: ask the running daemon how it is, on its local status socket.

Exit codes (for scripts and monitoring):

- 0: the daemon runs and every critical part is up (running or degraded);
- 1: the daemon runs but a critical part is down (starting, backing off after a
  failure, stopped);
- 2: the config is invalid (as ``busd run`` and ``check-config``);
- 3: the daemon is not running (no status socket, nothing answers, or no answer).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from busd.config import CONFIG_ENV, load_config
from busd.errors import ConfigError
from busd.status import DaemonStatus, NotRunning, PartStatus, read_status, socket_path

EXIT_OK = 0
EXIT_CRITICAL_DOWN = 1
EXIT_CONFIG = 2
EXIT_NOT_RUNNING = 3


def add_status_parser(sub: Any) -> None:
    status = sub.add_parser(
        "status", help="the running daemon's health (exit 1: a critical part is down, "
        "3: not running)",
    )
    status.add_argument("--config", help=f"the daemon's config file (default: ${CONFIG_ENV}); "
                        "its data_dir holds the status socket")
    status.add_argument("--socket", type=Path, help="the status socket itself (instead of "
                        "--config)")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.add_argument("--schema", action="store_true",
                        help="print the JSON Schema of --json's output and exit")
    status.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    if args.schema:
        print(json.dumps(DaemonStatus.model_json_schema(by_alias=True), indent=2))
        return EXIT_OK
    path: Path | None = args.socket
    if path is None:
        config_file = args.config or os.environ.get(CONFIG_ENV)
        try:
            path = socket_path(load_config(config_file).data_dir)
        except ConfigError as err:
            print(f"busd status: cannot read the configuration {config_file or ''}",
                  file=sys.stderr)
            for key, reason in err.problems:
                print(f"  {key}: {reason}", file=sys.stderr)
            return EXIT_CONFIG
    try:
        status = read_status(path)
    except NotRunning as err:
        print(f"busd status: {err}", file=sys.stderr)
        return EXIT_NOT_RUNNING
    print(status.dump_json() if args.json else render(status))
    return EXIT_OK if status.ok else EXIT_CRITICAL_DOWN


def _ago(iso: str | None, now_iso: str) -> str:
    if iso is None:
        return "never"
    seconds = (_parse(now_iso) - _parse(iso)).total_seconds()
    return f"{iso} ({_duration(seconds)} ago)"


def _parse(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC)


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _part_line(part: PartStatus) -> str:
    flag = "!" if part.critical and not part.up else " "
    crit = "critical" if part.critical else ""
    line = f"{flag} {part.name:<22} {part.phase:<9} {crit:<8} restarts {part.restarts}"
    if part.reason:
        line += f"  {part.reason}"
    if part.last_error and not part.up:
        line += f"  last error: {part.last_error}"
    return line


def render(status: DaemonStatus) -> str:
    """The human-readable form: a head line, the office link, then one line per part."""
    verdict = "OK" if status.ok else "CRITICAL PART DOWN: " + ", ".join(status.critical_down)
    lines = [
        f"busd {status.version}, bus {status.bus}, pid {status.pid}, "
        f"up since {_ago(status.boot, status.ts)}: {verdict}",
    ]
    office = status.office
    if office is not None:
        link = (f"connected since {_ago(office.connected_since, status.ts)}"
                if office.connected else "not connected")
        lines.append(f"office: {link}; last PUBACK {_ago(office.last_ack, status.ts)}; "
                     f"backlog {office.backlog} records")
    lines.append("")
    for part in status.parts:
        lines.append(_part_line(part))
        if part.counters:
            counters = ", ".join(f"{k}={v}" for k, v in sorted(part.counters.items()))
            lines.append(f"    {counters}")
    return "\n".join(lines)
