"""Office web benchmark: the fleet page over 200 live simulated buses.

    python benchmarks/office_web.py [--buses 200] [--live-s 20] [--pages 3]

Starts its own mosquitto (tests/support), an SQLite archive fed by one ``busd office ingest``
worker, the fleet simulator (simulators/fleet: the production outbox and uplink) with
``--buses`` buses driving at 10x (state and telemetry once a real second per moving bus), and
``busd office web`` as a process of its own. Then, in headless Chromium:

- ``fleet_page_s``: a logged-in user opens the fleet page; the time from navigation start
  until every bus has its marker on the map and its row in the table (the page is then
  interactive: the script has run and the live stream is open);
- ``server_cpu_per_s``: with ``--pages`` fleet pages open and following the live stream, the
  web process's CPU seconds (user + system) per second of wall time over ``--live-s`` seconds;
- ``month_report_s``: the monthly report of one municipality, from the reports' own hook
  (``office.reports.benchmark.month_report_s(archive_url)``) when this tree has it; null
  otherwise (the figure belongs to the reports, measured on their PostgreSQL month).

The last line is one JSON object: ``{"buses", "fleet_page_s", "month_report_s",
"server_cpu_per_s", ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from office.archive import open_archive  # noqa: E402
from office.users import Role, Users  # noqa: E402
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

USER = ("bench", "bench-password-1")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def fleet_config(buses: int, port: int, data_dir: Path) -> FleetConfig:
    return FleetConfig(
        buses=buses, processes=2, broker_port=port, speed=10, duration_s=24 * 3600, seed=21,
        data_dir=data_dir, backlog_min=0,
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


def cpu_s(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def month_report_s(archive_url: str) -> float | None:
    """The reports' figure, when this tree has their benchmark hook."""
    try:
        hook = importlib.import_module("office.reports.benchmark")
    except ImportError:
        return None
    value = hook.month_report_s(archive_url)
    return None if value is None else float(value)


async def browser_figures(url: str, buses: int, pages: int, live_s: float,
                          web: psutil.Process) -> tuple[float, float]:
    from playwright.async_api import async_playwright

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
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if await page.evaluate("() => window.fleetMarkers.size") >= buses:
                    break
                await asyncio.sleep(0.5)
            else:
                raise RuntimeError("the buses did not all appear within 120 s")
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
            # The page is interactive once its DOM is ready and it has drawn the buses; when
            # its first draw (from the snapshot in the HTML) had them all, that moment is
            # exact, else the moment the polling saw the last one arrive over the stream.
            fleet_page_s = (max(ready, drawn) / 1000 if drawn_buses >= buses else seen_s)
            say(f"fleet page: DOM ready {ready / 1000:.3f} s, first draw {drawn / 1000:.3f} s "
                f"({drawn_buses} buses), all {buses} seen by polling at {seen_s:.3f} s")
            for _ in range(pages - 1):
                extra = await context.new_page()
                await extra.goto(url)
            await page.wait_for_selector("#stream-state[data-state=live]")
            t0, c0 = time.monotonic(), cpu_s(web)
            await asyncio.sleep(live_s)
            per_s = (cpu_s(web) - c0) / (time.monotonic() - t0)
            return fleet_page_s, per_s
        finally:
            await browser.close()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="busd-bench-web-"))
    broker = Mosquitto(work / "mosquitto")
    broker.start()
    archive_url = f"sqlite:///{work / 'office.db'}"
    procs: list[subprocess.Popen[bytes]] = []
    fleet: asyncio.subprocess.Process | None = None
    try:
        async with open_archive(archive_url) as archive:
            await Users(archive).add(*USER, Role.VIEWER)
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
        fleet = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "simulators.fleet", "--config", str(cfg_path), cwd=REPO,
            stdout=asyncio.subprocess.DEVNULL)
        say(f"{args.buses} buses starting; web on http://127.0.0.1:{port}/")
        page_s, cpu_per_s = await browser_figures(f"http://127.0.0.1:{port}/", args.buses,
                                                  args.pages, args.live_s,
                                                  psutil.Process(web_proc.pid))
        return {"buses": args.buses, "fleet_page_s": round(page_s, 3),
                "month_report_s": month_report_s(archive_url),
                "server_cpu_per_s": round(cpu_per_s, 3), "pages": args.pages,
                "live_s": args.live_s}
    finally:
        if fleet is not None and fleet.returncode is None:
            fleet.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(fleet.wait(), 60)
            except TimeoutError:
                fleet.kill()
                await fleet.wait()
        for proc in procs:
            stop_process(proc)
        broker.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--buses", type=int, default=200)
    p.add_argument("--pages", type=int, default=3, help="fleet pages open while measuring CPU")
    p.add_argument("--live-s", type=float, default=20.0, help="seconds of live updates measured")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    args = p.parse_args()
    print(json.dumps(asyncio.run(main_async(args))), flush=True)


if __name__ == "__main__":
    main()
