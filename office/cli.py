"""``busd office``: the live table (no sub-command), ``ingest``, ``gaps``, ``resend``, ``plan``,
``command``, ``web`` and ``user``.

``busd office`` alone runs the live subscriber and table (:mod:`office.live`); the sub-commands
hang off its parser.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
from datetime import date
from pathlib import Path
from typing import Any

import structlog
from aiomqtt import MqttError

from office.archive import DEFAULT_TZ, ArchiveError, Gap, open_archive
from office.archive.base import sqlite_path
from office.records import DEFAULT_PREFIX
from telemetry.mqtt import BrokerSettings

log = structlog.get_logger("office.cli")

EXIT_OK = 0
EXIT_UNANSWERED = 1
EXIT_ERROR = 2


def add_office_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``office`` and its sub-commands to the ``busd`` CLI; ``func(args)`` returns the exit
    status."""
    from office.live import office_main

    p: argparse.ArgumentParser = subparsers.add_parser(
        "office", help="the office's side: live fleet table, ingest, gaps",
        description="The live fleet table (and an archive), or a sub-command.")
    add_broker_arguments(p)
    p.add_argument("--client-id", default="busd-office",
                   help="fixed, so the broker keeps records while the office is away")
    p.add_argument("--archive", metavar="URL",
                   help="archive every record: sqlite:///file.db, postgresql://…, or a path")
    p.add_argument("--export-csv", type=Path, metavar="OUT",
                   help="write the archive as CSV and exit")
    p.add_argument("--no-live", action="store_true", help="no table, just archive")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.set_defaults(func=office_main)
    add_office_commands(p)
    return p


def add_broker_arguments(p: argparse.ArgumentParser) -> None:
    """The broker connection, as the bus's ``[mqtt]`` has it: host, port, username,
    password_file, tls.*, topic prefix."""
    p.add_argument("--host", default=os.environ.get("BUSD_OFFICE_HOST", "localhost"))
    p.add_argument("--port", type=int, default=None, help="default 1883, or 8883 with --tls")
    p.add_argument("--username", default=os.environ.get("BUSD_OFFICE_USERNAME"))
    p.add_argument("--password-file", type=Path,
                   help="file with the password (or set BUSD_OFFICE_PASSWORD)")
    p.add_argument("--tls", action="store_true", help="connect with TLS")
    p.add_argument("--ca-file", type=Path, help="CA that signed the broker's certificate")
    p.add_argument("--cert-file", type=Path, help="client certificate")
    p.add_argument("--key-file", type=Path, help="client private key")
    p.add_argument("--no-check-hostname", action="store_true")
    p.add_argument("--prefix", default=DEFAULT_PREFIX, help="topic prefix with {bus_id}")


def settings_from_args(args: argparse.Namespace) -> BrokerSettings:
    password = os.environ.get("BUSD_OFFICE_PASSWORD")
    if args.password_file is not None:
        password = args.password_file.read_text(encoding="utf-8").strip()
    return BrokerSettings(
        host=args.host, port=args.port or (8883 if args.tls else 1883),
        username=args.username, password=password, tls=args.tls, ca_file=args.ca_file,
        cert_file=args.cert_file, key_file=args.key_file,
        check_hostname=not args.no_check_hostname,
    )


def add_office_commands(office: argparse.ArgumentParser) -> None:
    """Add the sub-commands to the ``busd office`` parser."""
    from office.dispatch.cli import add_command_commands
    from office.web.cli import add_user_parser, add_web_parser

    sub = office.add_subparsers(dest="office_command",
                                metavar="{ingest,gaps,resend,plan,command,web,user}")
    ingest = sub.add_parser(
        "ingest", help="one of several workers writing the buses' records into the archive",
        description="Share the buses' record topics with the other workers of --group (MQTT 5 "
                    "shared subscription) and write them into the archive in batches; a "
                    "message is acknowledged only once its batch is committed.")
    add_broker_arguments(ingest)
    ingest.add_argument("--archive", required=True, metavar="URL",
                        help="sqlite:///file.db, postgresql://…, or a SQLite file's path")
    ingest.add_argument("--client-id", default=f"busd-ingest-{socket.gethostname()}",
                        help="fixed and different for every worker (two with one id throw each "
                             "other off): its session, and what it had not acknowledged, "
                             "survives a restart; a broker with use_username_as_clientid uses "
                             "the username instead (default busd-ingest-HOSTNAME)")
    ingest.add_argument("--group", default="office", help="the shared subscription's group")
    ingest.add_argument("--lanes", choices=("both", "live", "backlog", "all"), default="both",
                        help="both (default): live and backlog records on two MQTT sessions, "
                             "--client-id and --client-id-backlog, so a backlog never queues "
                             "in front of live records; live or backlog: that lane alone; all: "
                             "both on one session. A broker with use_username_as_clientid (the "
                             "shipped one) holds one connection a username: run a live and a "
                             "backlog worker with a username each, or use all")
    ingest.add_argument("--batch-max", type=int, default=1000, metavar="N",
                        help="records per archive transaction at most (default 1000)")
    ingest.add_argument("--batch-linger", type=float, default=0.2, metavar="S",
                        help="wait at most S seconds to fill a batch (default 0.2; the live "
                             "lane waits 0.05 s at most)")
    ingest.add_argument("--session-expiry", type=int, default=300, metavar="S",
                        help="the broker keeps this worker's session S seconds after it "
                             "disconnects (default 300)")
    ingest.add_argument("--receive-maximum", type=int, default=2000, metavar="N",
                        help="unacknowledged messages the broker may send (default 2000)")
    ingest.add_argument("--duration", type=float, help="stop after this many seconds")
    ingest.add_argument("--log-level", default="info",
                        choices=("debug", "info", "warning", "error"))
    ingest.set_defaults(func=ingest_main)
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
    resend = sub.add_parser(
        "resend", help="ask the buses again for the records the archive lacks",
        description="Send one cmd/resend per gap the archive shows (ranges of at most 100,000 "
                    "seqs) and print each bus's answer: how many records it sends again, and "
                    "which it no longer has. The records themselves reach the archive through "
                    "the ingest workers (or busd office), which drop duplicates. Exit status 1 "
                    "when a bus did not answer within --timeout.")
    add_broker_arguments(resend)
    resend.add_argument("--archive", required=True, metavar="URL",
                        help="sqlite:///file.db, postgresql://…, or a SQLite file's path")
    resend.add_argument("--bus", help="only this bus (default: every bus with gaps)")
    resend.add_argument("--day", type=date.fromisoformat,
                        help="only the gaps that began on this local day (YYYY-MM-DD)")
    resend.add_argument("--tz", default=DEFAULT_TZ,
                        help=f"the days' time zone (default {DEFAULT_TZ})")
    resend.add_argument("--timeout", type=float, default=30.0, metavar="S",
                        help="wait at most S seconds for the answers (default 30)")
    resend.add_argument("--connect-timeout", type=float, default=10.0, metavar="S",
                        help="give up on the database after S seconds (default 10)")
    resend.add_argument("--expiry", type=float, default=None, metavar="S",
                        help="the broker drops an ask a bus has not taken after S seconds "
                             "(MQTT 5 message expiry; default 86400, a day)")
    resend.add_argument("--json", action="store_true", help="one JSON object per line")
    resend.set_defaults(func=resend_main)
    add_plan_parser(sub)
    add_command_commands(sub)
    add_web_parser(sub)
    add_user_parser(sub)


def add_plan_parser(sub: Any) -> None:
    """``busd office plan``: the schedule's commands (office/schedule/cli.py) and sending a
    day's plan (office/dispatch/cli.py)."""
    from office.dispatch.cli import add_send_commands
    from office.schedule.cli import add_plan_commands

    plan = sub.add_parser("plan", help="day plans for the buses: generate, proposals, "
                          "confirm, coverage, send",
                          description="Day plans from a municipality's service schedule, "
                                      "and sending them to the buses.")
    plan_sub = plan.add_subparsers(dest="plan_command", metavar="COMMAND", required=True)
    add_plan_commands(plan_sub)
    add_send_commands(plan_sub)


def ingest_main(args: argparse.Namespace) -> int:
    from busd.logs import configure_logging
    from office.ingest import IngestOptions, run_ingest

    # JSON lines when not on a terminal: the journal, one event per line.
    configure_logging(args.log_level, "auto")
    try:
        options = IngestOptions(
            client_id=args.client_id, group=args.group, batch_max_records=args.batch_max,
            batch_linger_s=args.batch_linger, session_expiry_s=args.session_expiry,
            receive_maximum=max(args.receive_maximum, args.batch_max),
            lane="live" if args.lanes == "both" else args.lanes)
    except ValueError as err:
        print(f"busd office ingest: {err}", flush=True)
        return EXIT_ERROR
    try:
        return asyncio.run(run_ingest(settings=settings_from_args(args),
                                      archive_url=archive_url(args.archive), options=options,
                                      prefix=args.prefix, duration_s=args.duration,
                                      both_lanes=args.lanes == "both"))
    except ArchiveError as err:
        log.error("office_ingest_failed", reason=str(err))
        print(f"busd office ingest: {err}", flush=True)
        return EXIT_ERROR


def archive_url(value: str) -> str:
    """A URL as given, or a plain path taken as a SQLite file."""
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).resolve()}"


def missing_archive(url: str) -> str | None:
    """The SQLite file ``url`` names when it does not exist, else None: a command that only
    reads must not leave an empty archive behind where there was none (a mistyped path)."""
    if url.startswith("sqlite:") and not Path(sqlite_path(url)).exists():
        return sqlite_path(url)
    return None


def gaps_main(args: argparse.Namespace) -> int:
    url = archive_url(args.archive)
    if (missing := missing_archive(url)) is not None:
        print(f"busd office gaps: no archive at {missing}", flush=True)
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


def resend_main(args: argparse.Namespace) -> int:
    from office.resend import format_answers, resend_gaps

    url = archive_url(args.archive)
    if (missing := missing_archive(url)) is not None:
        print(f"busd office resend: no archive at {missing}", flush=True)
        return EXIT_ERROR
    try:
        answers = asyncio.run(resend_gaps(
            settings=settings_from_args(args), archive_url=url, bus=args.bus, day=args.day,
            tz=args.tz, prefix=args.prefix, timeout_s=args.timeout,
            connect_timeout_s=args.connect_timeout, expiry_s=args.expiry))
    except (ArchiveError, MqttError, OSError, ValueError) as err:
        log.error("office_resend_failed", reason=str(err))
        print(f"busd office resend: {err}", flush=True)
        return EXIT_ERROR
    print(format_answers(answers, as_json=args.json, timeout_s=args.timeout), flush=True)
    return EXIT_OK if all(a.result is not None for a in answers) else EXIT_UNANSWERED
