"""Office web benchmark: the fleet page over 200 live simulated buses on a month's archive.

    python benchmarks/office_web.py [--buses 200] [--live-s 20] [--pages 3] [--runs 3]
                                    [--days 30] [--archive postgresql|sqlite]

Starts its own mosquitto and PostgreSQL (tests/support; ``--archive sqlite``: an SQLite file,
for comparison) and fills the archive with issue 15's month: ``--buses`` × ``--days`` days of
events ending today (office_month_report.py's :func:`fill_month`: visits, legs, charging
sessions, daily reports; telemetry on the last day only), under the same bus ids the fleet
simulator uses (``lv-001``…), so the fleet page's per-bus archive queries (completeness, newest
record) scan a full day of a full archive. Then one ``busd office ingest`` worker, the fleet
simulator (simulators/fleet: the production outbox and uplink) with ``--buses`` buses driving
at 10x (state and telemetry once a real second per moving bus), and ``busd office web`` as a
process of its own. A live bus's seqs start at 1 again, under the month's: PostgreSQL's key is
``(bus, seq, ts)``, so they are archived, and today's completeness shows the seqs between them
and the month's as missing (one more gap per bus); SQLite's key is ``(bus, seq)``, so there
they are duplicates until past the month's. Then, ``--runs`` times on the same archive, in
headless Chromium:

- ``fleet_page_s``: a logged-in user opens the fleet page; the time from navigation start
  until every bus has its marker on the map and its row in the table (the page is then
  interactive: the script has run and the live stream is open);
- ``server_cpu_per_s``: with ``--pages`` fleet pages open and following the live stream, the
  web process's CPU seconds (user + system) per second of wall time over ``--live-s`` seconds;
  (``postgres_cpu_per_s``, ``ingest_cpu_per_s``: the same for the archive's server and the
  ingest worker);
- ``archive_poll_s``: the web's archive poll for the fleet page (every bus's records, seq gaps
  and newest record today: :meth:`office.web.fleet.FleetFeed.refresh_archive`);
- ``month_report_s``: the report of one municipality (``--per-municipality`` buses) over the
  filled days, built on the same archive while the fleet stays live.

The last line is one JSON object: ``{"buses", "fleet_page_s", "month_report_s",
"server_cpu_per_s", ...}``, the four figures the medians of the runs; ``<figure>_runs`` holds
every run and ``<figure>_summary`` their min/median/max; ``load_avg_start``/``load_avg_end``
the machine's load (it is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from office_month_report import TZ, fill_month, fleet  # noqa: E402  (the script's folder)

from busd.clock import SystemClock  # noqa: E402
from office.archive import open_archive  # noqa: E402
from office.config import OfficeConfig  # noqa: E402
from office.reports import Municipality, Period, build_report  # noqa: E402
from office.users import Role, Users  # noqa: E402
from office.web.fleet import FleetFeed  # noqa: E402
from simulators.fleet.config import (  # noqa: E402
    DayConfig,
    FleetConfig,
    MinutesRange,
    OutageConfig,
    RatesConfig,
)
from tests.support.display_browser import ARGS, chromium_path  # noqa: E402
from tests.support.fleet import ingest_process, stop_process  # noqa: E402
from tests.support.mosquitto import Mosquitto, free_port  # noqa: E402
from tests.support.postgres import PostgresServer, start_postgres, stop_postgres  # noqa: E402

USER = ("bench", "bench-password-1")
PREFIX = "lv"  # fill_month's bus ids: lv-001…


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def fleet_config(buses: int, port: int, data_dir: Path) -> FleetConfig:
    return FleetConfig(
        buses=buses, processes=2, broker_port=port, speed=10, duration_s=24 * 3600, seed=21,
        data_dir=data_dir, backlog_min=0, bus_prefix=PREFIX,
        day=DayConfig(stops=5, depot_min=MinutesRange(low=0, high=1)),
        outages=OutageConfig(count=0),
        rates=RatesConfig(telemetry_moving_s=10, telemetry_parked_s=60, state_moving_s=10,
                          state_parked_s=60, commit_interval_s=5, tick_s=5),
        drain_timeout_s=20, log_level="error")


def web_config(work: Path, *, archive: str, broker_port: int, port: int) -> Path:
    path = work / "office.toml"
    path.write_text(f"""
archive = "{archive}"
[web]
host = "127.0.0.1"
port = {port}
[map]
tile_url = "http://127.0.0.1:{free_port()}/{{z}}/{{x}}/{{y}}.png"
[mqtt]
host = "127.0.0.1"
port = {broker_port}
""")
    return path


def start_web(config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """``busd office web`` as its own process, so its CPU is its own."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "busd.cli", "office", "web", "--config", str(config),
             "--log-level", "warning"], cwd=REPO, stdout=log, stderr=subprocess.STDOUT)


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


@dataclass
class CpuGroup:
    """Processes whose CPU seconds (user + system) are counted together; a process that
    ends or starts in between (a PostgreSQL backend) counts what psutil still sees."""

    roots: list[psutil.Process]
    children: bool = False

    def seconds(self) -> float:
        total = 0.0
        for root in self.roots:
            procs = [root, *root.children(recursive=True)] if self.children else [root]
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    t = proc.cpu_times()
                    total += float(t.user + t.system)
        return total


def postmaster(server: PostgresServer) -> psutil.Process:
    """The server's main process, from its pid file (its backends are its children)."""
    pid = int((server.datadir / "postmaster.pid").read_text().split()[0])
    return psutil.Process(pid)


@dataclass
class Runs:
    """Every run's figures, by name."""

    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.values.setdefault(name, []).append(round(value, 3))

    def median(self, name: str) -> float:
        return round(statistics.median(self.values[name]), 3)

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, runs in self.values.items():
            out[f"{name}_runs"] = runs
            out[f"{name}_summary"] = {"min": min(runs), "median": self.median(name),
                                      "max": max(runs)}
        return out


async def page_load_s(page: Any, url: str, buses: int) -> float:
    """Navigation start until every bus has its marker and its table row (see the module's
    docstring)."""
    await page.goto("about:blank")
    await page.goto(url)
    await page.wait_for_function(
        f"() => window.fleetMarkers && window.fleetMarkers.size >= {buses} && "
        f"document.querySelectorAll('#fleet-table tbody tr').length >= {buses}",
        polling=50, timeout=60_000)
    seen_s = float(await page.evaluate("() => performance.now()")) / 1000
    ready, drawn, drawn_buses = await page.evaluate(
        "() => { const n = performance.getEntriesByType('navigation')[0];"
        " const d = performance.getEntriesByName('fleet-drawn')[0];"
        " return [n.domContentLoadedEventEnd, d.startTime, d.detail]; }")
    # The page is interactive once its DOM is ready and it has drawn the buses; when its
    # first draw (from the snapshot in the HTML) had them all, that moment is exact, else the
    # moment the polling saw the last one arrive over the stream.
    loaded = max(ready, drawn) / 1000 if drawn_buses >= buses else seen_s
    say(f"fleet page: DOM ready {ready / 1000:.3f} s, first draw {drawn / 1000:.3f} s "
        f"({drawn_buses} buses), all {buses} seen by polling at {seen_s:.3f} s")
    return float(loaded)


async def measure(args: argparse.Namespace, url: str, cpu: dict[str, CpuGroup],
                  report: Any, poll: Any) -> Runs:
    """``args.runs`` × (page load, CPU window with ``args.pages`` pages, the fleet page's
    archive poll, month report)."""
    from playwright.async_api import async_playwright

    runs = Runs()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), args=ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 900})
            page = await context.new_page()
            await page.goto(url + "login")
            await page.fill("input[name=name]", USER[0])
            await page.fill("input[name=password]", USER[1])
            await page.click("button[type=submit]")
            await page.wait_for_selector("#fleet-map")
            # Every bus known to the web before the page is timed.
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                if await page.evaluate("() => window.fleetMarkers.size") >= args.buses:
                    break
                await asyncio.sleep(0.5)
            else:
                raise RuntimeError("the buses did not all appear within 180 s")
            for run in range(args.runs):
                runs.add("fleet_page_s", await page_load_s(page, url, args.buses))
                extra = [await context.new_page() for _ in range(args.pages - 1)]
                for other in extra:
                    await other.goto(url)
                await page.wait_for_selector("#stream-state[data-state=live]")
                t0 = time.monotonic()
                c0 = {name: group.seconds() for name, group in cpu.items()}
                await asyncio.sleep(args.live_s)
                wall = time.monotonic() - t0
                for name, group in cpu.items():
                    runs.add(name, (group.seconds() - c0[name]) / wall)
                for other in extra:
                    await other.close()
                began = time.perf_counter()
                await poll()
                runs.add("archive_poll_s", time.perf_counter() - began)
                began = time.perf_counter()
                await report()
                runs.add("month_report_s", time.perf_counter() - began)
                say(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]}" for k, v in
                                                   runs.values.items()))
        finally:
            await browser.close()
    return runs


def month_period(days: int, today: date) -> Period:
    """The filled days, ``days`` ending ``today``, as the report's month."""
    return Period(kind="month", first=today - timedelta(days=days - 1), last=today)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    load_start = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="busd-bench-web-"))
    broker = Mosquitto(work / "mosquitto")
    broker.start()
    server: PostgresServer | None = None
    procs: list[subprocess.Popen[bytes]] = []
    fleet_proc: asyncio.subprocess.Process | None = None
    try:
        if args.archive == "postgresql":
            # Its own temporary folder: start_postgres hands it to the server's account.
            server = start_postgres(Path(tempfile.mkdtemp(prefix="busd-bench-web-pg-")))
            archive_url = server.create_database("web")
        else:
            archive_url = f"sqlite:///{work / 'office.db'}"
        today = datetime.now(UTC).astimezone(ZoneInfo(TZ)).date()
        period = month_period(args.days, today)
        town = Municipality(name="bench", tz=TZ, buses=tuple(fleet(args.buses)
                                                             [:args.per_municipality]))
        async with open_archive(archive_url, tz=TZ) as archive:
            await Users(archive).add(*USER, Role.VIEWER)
            say(f"filling {args.buses} buses × {args.days} days ({args.archive})")
            began = time.perf_counter()
            records = await fill_month(archive, buses=args.buses, first=period.first,
                                       days=args.days)
            fill_s = time.perf_counter() - began
            say(f"{records} records in {fill_s:.0f} s")
            procs.append(ingest_process(broker.port, archive_url, "bench-ingest",
                                        log=work / "ingest.log"))
            port = free_port()
            config = web_config(work, archive=archive_url, broker_port=broker.port, port=port)
            web_proc = start_web(config, work / "web.log")
            procs.append(web_proc)
            wait_port(port)
            cfg_path = work / "fleet.json"
            cfg_path.write_text(fleet_config(args.buses, broker.port, work / "fleet")
                                .model_dump_json())
            fleet_proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "simulators.fleet", "--config", str(cfg_path), cwd=REPO,
                stdout=asyncio.subprocess.DEVNULL)
            say(f"{args.buses} buses starting; web on http://127.0.0.1:{port}/")
            cpu = {"server_cpu_per_s": CpuGroup([psutil.Process(web_proc.pid)]),
                   "ingest_cpu_per_s": CpuGroup([psutil.Process(procs[0].pid)])}
            if server is not None:
                cpu["postgres_cpu_per_s"] = CpuGroup([postmaster(server)], children=True)

            async def report() -> None:
                await build_report(archive, town, period)

            # The web's own archive poll (every archive_poll_s: every bus's records, seq gaps
            # and newest record today), timed here on the same archive.
            feed = FleetFeed(config=OfficeConfig(archive=archive_url), archive=archive,
                             clock=SystemClock(), office=None)

            runs = await measure(args, f"http://127.0.0.1:{port}/", cpu, report,
                                 feed.refresh_archive)
        return {"buses": args.buses, "fleet_page_s": runs.median("fleet_page_s"),
                "month_report_s": runs.median("month_report_s"),
                "server_cpu_per_s": runs.median("server_cpu_per_s"),
                **runs.report(), "archive": args.archive, "days": args.days,
                "records": records, "fill_s": round(fill_s, 1),
                "municipality_buses": min(args.per_municipality, args.buses), "runs": args.runs,
                "pages": args.pages, "live_s": args.live_s,
                "load_avg_start": [round(x, 2) for x in load_start],
                "load_avg_end": [round(x, 2) for x in os.getloadavg()]}
    finally:
        if fleet_proc is not None and fleet_proc.returncode is None:
            fleet_proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(fleet_proc.wait(), 60)
            except TimeoutError:
                fleet_proc.kill()
                await fleet_proc.wait()
        for proc in procs:
            stop_process(proc)
        broker.stop()
        if server is not None:
            stop_postgres(server)
            if not args.keep:
                shutil.rmtree(server.datadir.parent, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--buses", type=int, default=200)
    p.add_argument("--days", type=int, default=30, help="days of archive, ending today")
    p.add_argument("--per-municipality", type=int, default=20,
                   help="buses in the municipality whose report is timed")
    p.add_argument("--archive", choices=("postgresql", "sqlite"), default="postgresql")
    p.add_argument("--runs", type=int, default=3, help="measurements on the one filled archive")
    p.add_argument("--pages", type=int, default=3, help="fleet pages open while measuring CPU")
    p.add_argument("--live-s", type=float, default=20.0, help="seconds of live updates measured")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    args = p.parse_args()
    print(json.dumps(asyncio.run(main_async(args))), flush=True)


if __name__ == "__main__":
    main()
