"""``busd office`` sub-commands that live in ``office/``: ``gaps`` for now.

``busd office`` itself (the live subscriber and table) is still telemetry/office.py's parser;
its sub-commands hang off that parser, so ``busd office`` with no sub-command runs as before.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import date
from pathlib import Path
from typing import Any

import structlog

from office.archive import DEFAULT_TZ, ArchiveError, Gap, open_archive
from office.archive.base import sqlite_path

log = structlog.get_logger("office.cli")

EXIT_OK = 0
EXIT_ERROR = 2


def add_office_commands(office: argparse.ArgumentParser) -> None:
    """Add the sub-commands to the ``busd office`` parser."""
    sub = office.add_subparsers(dest="office_command", metavar="{gaps}")
    gaps = sub.add_parser("gaps", help="records lost, per bus and local day, from the archive",
                          description="List the seq ranges missing from the archive, per bus "
                                      "and local day (the day the loss began).")
    gaps.add_argument("--archive", required=True, metavar="URL",
                      help="sqlite:///file.db, postgresql://…, or a SQLite file's path")
    gaps.add_argument("--bus", help="only this bus")
    gaps.add_argument("--day", type=date.fromisoformat, help="only this local day (YYYY-MM-DD)")
    gaps.add_argument("--tz", default=DEFAULT_TZ,
                      help=f"the days' time zone (default {DEFAULT_TZ})")
    gaps.add_argument("--connect-timeout", type=float, default=10.0, metavar="S",
                      help="give up on the database after S seconds (default 10)")
    gaps.add_argument("--json", action="store_true", help="one JSON object per line")
    gaps.set_defaults(func=gaps_main)


def archive_url(value: str) -> str:
    """A URL as given, or a plain path taken as a SQLite file."""
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).resolve()}"


def gaps_main(args: argparse.Namespace) -> int:
    url = archive_url(args.archive)
    # Reading must not leave an empty archive behind where there was none (a mistyped path).
    if url.startswith("sqlite:") and not Path(sqlite_path(url)).exists():
        print(f"busd office gaps: no archive at {sqlite_path(url)}", flush=True)
        return EXIT_ERROR
    try:
        found = asyncio.run(_gaps(url, bus=args.bus, day=args.day, tz=args.tz,
                                  connect_timeout_s=args.connect_timeout))
    except ArchiveError as err:
        log.error("office_gaps_failed", reason=str(err))
        print(f"busd office gaps: {err}", flush=True)
        return EXIT_ERROR
    print(format_gaps(found, as_json=args.json), flush=True)
    return EXIT_OK


async def _gaps(url: str, *, bus: str | None, day: date | None, tz: str,
                connect_timeout_s: float) -> list[Gap]:
    async with open_archive(url, tz=tz, connect_timeout_s=connect_timeout_s) as archive:
        return await archive.gaps(bus=bus, day=day)


def format_gaps(gaps: list[Gap], *, as_json: bool = False) -> str:
    if as_json:
        return "\n".join(json.dumps(_gap_json(g), separators=(",", ":")) for g in gaps)
    if not gaps:
        return "no gaps"
    lines = [f"{'bus':<10} {'day':<10} {'first':>10} {'last':>10} {'missing':>8}  "
             "between (UTC)"]
    for g in gaps:
        lines.append(f"{g.bus:<10} {g.day.isoformat():<10} {g.first:>10} {g.last:>10} "
                     f"{g.missing:>8}  {_hms(g)}")
    per_day: dict[tuple[str, date], int] = {}
    for g in gaps:
        per_day[(g.bus, g.day)] = per_day.get((g.bus, g.day), 0) + g.missing
    lines.append("")
    lines += [f"{bus}  {day.isoformat()}: {n} record{'s' if n != 1 else ''} missing"
              for (bus, day), n in per_day.items()]
    return "\n".join(lines)


def _hms(g: Gap) -> str:
    fmt = "%Y-%m-%dT%H:%M:%S"
    return f"{g.after.strftime(fmt)} … {g.before.strftime(fmt)}"


def _gap_json(g: Gap) -> dict[str, Any]:
    return {"bus": g.bus, "day": g.day.isoformat(), "first": g.first, "last": g.last,
            "missing": g.missing, "after": g.after.isoformat(), "before": g.before.isoformat()}
