"""``busd demo``: a whole winter day in Līvāni, accelerated, on this machine.

Runs a scenario (default ``scenarios/winter-livani.toml``) with
:class:`~simulators.scenario.runner.ScenarioRunner`: the daemon, its
simulators, gpsd, mosquitto and the office. Prints the driver's display URL,
shows the day's progress (a rich progress bar on a terminal; plain lines
without one, or with ``CI=true``), and ends with the day's report from the
daemon's monitoring store, its CSV files and the SOC plot.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from busd.errors import BusdError, ConfigError

if TYPE_CHECKING:  # imported by the command: `busd run` registers this parser too
    from simulators.scenario.model import LoadedScenario
    from simulators.scenario.progress import Progress
    from simulators.scenario.runner import DayResult

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SCENARIO = ROOT / "scenarios" / "winter-livani.toml"


def add_demo_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add ``demo`` to the ``busd`` CLI; ``func(args)`` returns an exit code."""
    p = subparsers.add_parser("demo", help="a whole simulated day, accelerated (the README's "
                              "main command)", description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO,
                   help="scenario file (default: scenarios/winter-livani.toml)")
    p.add_argument("--speed", type=float, default=None,
                   help="simulated seconds per real second (default: the scenario's)")
    p.add_argument("--workdir", type=Path, default=None,
                   help="where the run keeps its databases, logs and report "
                        "(default: var/demo/<scenario>-<time>)")
    p.add_argument("--display-port", type=int, default=None,
                   help="port of the driver's display (default: a free one)")
    p.add_argument("--no-display", action="store_true", help="do not serve the driver's display")
    p.add_argument("--web-port", type=int, default=None,
                   help="port of the office web (default: a free one)")
    p.add_argument("--no-web", action="store_true", help="do not serve the office web")
    p.add_argument("--plain", action="store_true",
                   help="plain progress lines even on a terminal")
    p.set_defaults(func=demo_main)
    return p


def _interactive(args: argparse.Namespace) -> bool:
    ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    return sys.stdout.isatty() and not ci and not args.plain


def _hhmm(loaded: LoadedScenario, ts: float) -> str:
    return loaded.local_time(ts).strftime("%H:%M")


def _line(loaded: LoadedScenario, p: Progress) -> str:
    where = {"off": f"at {p.place}, ignition off", "depot": f"at the depot ({p.place})",
             "drive": f"driving to {p.target}", "site": f"on site at {p.place}",
             "home": "back at the depot", "parked": "parked for the night"}.get(p.phase, p.phase)
    backlog = "-" if p.backlog is None else str(p.backlog)
    faults = f"  faults: {', '.join(p.faults_active)}" if p.faults_active else ""
    daemon = "" if p.daemon_running else "  DAEMON DOWN"
    return (f"{_hhmm(loaded, p.now)}  SOC {p.soc:5.1f} %  {p.speed_kmh:4.0f} km/h  {where:<28}"
            f"  plan v{p.plan_version or '-'} ({p.plan_changes} changes)  backlog {backlog}"
            f"  office {p.records} records{faults}{daemon}")


async def _run(args: argparse.Namespace, loaded: LoadedScenario, workdir: Path) -> DayResult:
    from simulators.scenario.runner import ScenarioRunner

    interactive = _interactive(args)
    state: dict[str, Any] = {"last_plain": 0.0}
    if interactive:
        from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bar

        bar = Bar(TextColumn("[bold]{task.fields[clock]}"), BarColumn(),
                  TextColumn("{task.fields[info]}"), TimeElapsedColumn())
        total = loaded.end_ts - loaded.start_ts
        task = bar.add_task("day", total=total, clock="--:--", info="starting…")
        bar.start()

        def progress(p: Progress) -> None:
            bar.update(task, completed=min(total, p.now - p.start), clock=_hhmm(loaded, p.now),
                       info=_line(loaded, p)[7:])
    else:
        def progress(p: Progress) -> None:
            # A line every half hour of the day, and whenever the plan changes.
            if (p.now - state["last_plain"] >= 1800.0
                    or p.plan_changes != state.get("changes", 0)):
                state["last_plain"] = p.now
                state["changes"] = p.plan_changes
                print(_line(loaded, p), flush=True)

    web_port = web_password = None
    if not args.no_web:
        from office.web.demo import DEMO_USER, demo_password
        from simulators.scenario.processes import free_port as free_web_port

        web_port, web_password = args.web_port or free_web_port(), demo_password()
        print(f"Office web:       http://127.0.0.1:{web_port}/  (log in as {DEMO_USER!r}, "
              f"password {web_password!r}; a dispatcher)", flush=True)
    runner = ScenarioRunner(loaded, workdir=workdir, speed=args.speed,
                            display=not args.no_display, display_port=args.display_port,
                            progress=progress, web_port=web_port, web_password=web_password)
    if not args.no_display:
        # The port is chosen before the run starts; print the URL at once.
        from simulators.scenario.processes import free_port

        runner.display_port = args.display_port or free_port()
        print(f"Driver's display: http://127.0.0.1:{runner.display_port}/  "
              "(open it in a browser while the day runs)", flush=True)
    try:
        return await runner.run()
    finally:
        if interactive:
            bar.stop()


def demo_main(args: argparse.Namespace) -> int:
    from simulators.scenario.model import load_scenario

    try:
        loaded = load_scenario(args.scenario)
    except ConfigError as err:
        print(f"busd demo: invalid scenario {args.scenario}", file=sys.stderr)
        for key, reason in err.problems:
            print(f"  {key}: {reason}", file=sys.stderr)
        return 2
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir = args.workdir or ROOT / "var" / "demo" / f"{loaded.scenario.name}-{stamp}"
    if args.workdir is None and not os.access(ROOT, os.W_OK):
        workdir = Path(tempfile.mkdtemp(prefix="busd-demo-"))
    from busd.logs import configure_logging

    workdir.mkdir(parents=True, exist_ok=True)
    log = (workdir / "runner.log").open("a", buffering=1, encoding="utf-8")
    configure_logging("info", "json", stream=log)
    speed = args.speed or loaded.scenario.speed
    hours = (loaded.end_ts - loaded.start_ts) / 3600.0
    print(f"busd demo: {loaded.scenario.name} — {loaded.scenario.description}")
    print(f"  {loaded.plan.date}, {len(loaded.plan.stops)} stops, up to {hours:.1f} h of the day "
          f"at x{speed:.0f} (about {hours * 3600 / speed / 60:.1f} minutes); work dir {workdir}",
          flush=True)
    try:
        result = asyncio.run(_run(args, loaded, workdir))
    except KeyboardInterrupt:
        print("\nbusd demo: interrupted", file=sys.stderr)
        return 130
    except BusdError as err:
        print(f"busd demo: {err}", file=sys.stderr)
        return 1
    finally:
        log.close()
    return _finish(loaded, result)


def _finish(loaded: LoadedScenario, result: DayResult) -> int:
    from telemetry.report_cli import cmd_report

    day = loaded.plan.date.isoformat()
    out = result.workdir / "report"
    out.mkdir(exist_ok=True)
    plot = out / f"soc_{day}.png"
    print()
    code = cmd_report(_report_args(
        day, "--db", str(result.monitoring_db), "--csv", str(out), "--plot", str(plot),
        "--reserve", str(loaded.scenario.reserve_pct)))
    truth = result.truth
    changes = result.events("plan_changed") + result.events("plan_accepted")
    final = truth.final_soc if truth.final_soc is not None else float("nan")
    print(f"Ground truth (simulator): {truth.km:.1f} km, {truth.out_kwh - truth.regen_kwh:.1f} kWh "
          f"net, SOC at the end {final:.1f} %"
          f"; the office archived {len(result.records)} records, {len(result.gaps)} gaps, "
          f"{result.duplicates} duplicates dropped; {len(changes)} plan events.")
    print(f"Report CSV: {out}/*_{day}.csv")
    print(f"SOC plot:   {plot}" if plot.exists() else "SOC plot:   (matplotlib not installed)")
    print(f"Office archive: {result.archive}   daemon log: {result.workdir / 'busd.log'}")
    if not result.finished:
        print("busd demo: the day did not finish in time (see the logs)", file=sys.stderr)
        return 1
    return 0 if code == 0 else code


def _report_args(*argv: str) -> argparse.Namespace:
    """``busd report``'s arguments as its own parser reads them: every option it has, with
    its default (a namespace built by hand here lacked one the report had gained)."""
    from telemetry.report_cli import add_report_parser

    parser = argparse.ArgumentParser(prog="busd")
    add_report_parser(parser.add_subparsers())
    return parser.parse_args(["report", *argv])
