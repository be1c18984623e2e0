"""Office ingest benchmark: a fleet's backlog into the archive, with a worker and the broker dying.

    python benchmarks/office_ingest.py [--buses 200] [--backlog-min 60] [--no-sqlite]

Starts its own mosquitto and PostgreSQL (tests/support: free ports, temporary directories;
PostgreSQL as an unprivileged account when run as root). The buses are the fleet simulator's
(simulators/fleet: the production outbox and uplink), in two processes:

1. Backlogs: every bus's outbox is filled with ``--backlog-min`` minutes of its day (telemetry
   at 1 Hz moving and parked, plus the tracker's events), as if the office had been out of reach
   that long: about 3,500 records a bus an hour, 700,000 for 200 buses. Made once, copied for
   each run below.
2. PostgreSQL, two ``busd office ingest`` workers (MQTT 5 shared subscription). The buses
   connect at once (t0) and drain their backlogs while they go on producing live records in
   real time (speed 1, so a record's ``ts`` is the real time it was made). When a third of the
   backlog is archived, one worker is SIGKILLed and restarted as its shipped systemd unit
   would (``RestartSec``); at two thirds the broker is stopped and started again (its
   persistence keeps the sessions).
3. SQLite, one worker, the same backlog, no faults: for comparison.

Figures (the last line, one JSON object):

- ``records_per_s``: records archived between t0 and the moment the last backlog record was
  archived, divided by that time (``drain_s``).
- ``live_lag_p50_s``/``live_lag_p99_s``: for live records made during the drain, the archive's
  ``received`` (the worker's clock when it took the batch, just before the commit) minus the
  record's ``ts``. Records made while the broker was down (``broker_down_s``) are left out and
  reported apart (``broker_down_lag_p99_s``). The outbox commits telemetry every 0.5 s here, so
  up to half a second of the lag is the bus's own group commit.
- ``fleet_loop_lag_max_s``, ``fleet_start_saturated_s``, ``live_lag_by_phase``: the load
  generator's share. The 200 buses run in two processes on the machine that also runs the
  office, so while they all send their backlogs at once, their own event loops run late and
  a live record waits on its bus before it is even published; a real bus has its own CPU.
  The first is the worst lateness of a fleet process's loop during the drain, the second how
  long that start-up burst lasted, and the third the live lag's p99 and the records at 2 s or
  more, for records made during that burst, from 2 s before the worker was killed to 5 s
  after, and the rest. ``live_lag_p99_s`` itself leaves none of them out.
- On stderr, how the buses finished: when half, 95 % and all of them had their whole backlog
  archived, and the last few, with their first archived record and their last connection.
- ``gap_records_before_resend``: records missing between archived ones a few seconds after the
  drain (what the broker's restart lost); the run then asks the buses for them as
  ``busd office resend`` does (``resend_s``: until no gap is left).
- ``worker_peak_rss_mb``: the largest peak resident memory of any ingest worker (the killed
  one's before its kill): what its Receive Maximum lets the broker hand it at once.
- ``lost``/``duplicates``: after the fleet stopped (each bus drained its outbox and reported its
  last seq), the archive against seq 1..last_seq of every bus.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from simulators.fleet.config import FleetConfig, OutageConfig, RatesConfig  # noqa: E402
from simulators.fleet.loop_lag import LoopLag  # noqa: E402
from simulators.fleet.runner import FleetLive, FleetReport  # noqa: E402
from tests.support.fleet import (  # noqa: E402
    check,
    count,
    ingest_process,
    ingest_restart_s,
    stop_process,
    tally,
    tree_cpu_s,
)
from tests.support.mosquitto import Mosquitto  # noqa: E402
from tests.support.postgres import start_postgres, stop_postgres  # noqa: E402


def say(*parts: object) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *parts, file=sys.stderr, flush=True)


def fleet_config(args: argparse.Namespace, port: int, data_dir: Path, *, live: bool,
                 backlog_min: float) -> FleetConfig:
    return FleetConfig(
        buses=args.buses, processes=args.processes, broker_port=port, speed=1.0,
        duration_s=24 * 3600, seed=14, data_dir=data_dir, backlog_min=backlog_min, live=live,
        outages=OutageConfig(count=0),
        rates=RatesConfig(telemetry_moving_s=1, telemetry_parked_s=1, state_moving_s=1,
                          state_parked_s=30, commit_interval_s=0.5, tick_s=1),
        reconnect_initial_s=0.5, reconnect_max_s=5, drain_timeout_s=300, log_level="error")


async def missing(url: str, last: dict[str, int], backlog: dict[str, int]) -> list[str]:
    """What is missing, briefly: gaps per bus (backlog or live) and missing tails."""
    from office.archive import open_archive

    async with open_archive(url) as archive:
        gaps = await archive.gaps()
    found = await asyncio.to_thread(tally, url)
    tails = {bus: n - found[bus].last for bus, n in last.items()
             if bus in found and found[bus].last < n}
    in_backlog = sum(g.missing for g in gaps if g.last <= backlog.get(g.bus, 0))
    notes = [f"{len(gaps)} gaps, {sum(g.missing for g in gaps)} records "
             f"({in_backlog} of the backlog); {len(tails)} buses miss their last "
             f"{sum(tails.values())} records; buses absent: "
             f"{sorted(set(last) - set(found))[:5]}"]
    notes += [f"gap {g.bus} {g.first}..{g.last} ({g.missing}) after {g.after.isoformat()}"
              for g in gaps[:5]]
    return notes


async def workers_ready(broker: Mosquitto, url: str, workers: int) -> None:
    deadline = time.time() + 300
    while time.time() < deadline:
        log = broker.log_text()
        # Each worker's last filter of each lane: ".../+/cmd/result" and its backlog/ twin.
        if log.count("/+/backlog/cmd/result") >= workers and \
                log.count("/+/cmd/result") >= workers:
            with contextlib.suppress(Exception):  # no records table until they migrated
                await asyncio.to_thread(count, url)
                return
        await asyncio.sleep(0.5)
    raise SystemExit("the ingest workers did not subscribe within 300 s")


async def heal(url: str, port: int, run: Run) -> None:
    from office.archive import open_archive
    from office.archive.base import DEFAULT_TZ
    from office.records import DEFAULT_PREFIX
    from office.resend import resend_gaps
    from telemetry.mqtt import BrokerSettings

    async with open_archive(url) as archive:
        gaps = await archive.gaps()
        run.gap_records_before_resend = sum(g.missing for g in gaps)
        if not gaps:
            return
        say(f"{run.backend}: {len(gaps)} gaps, {run.gap_records_before_resend} records: "
            "busd office resend")
        started = time.time()
        await resend_gaps(settings=BrokerSettings(host="127.0.0.1", port=port), archive_url=url,
                          bus=None, day=None, tz=DEFAULT_TZ, prefix=DEFAULT_PREFIX,
                          timeout_s=30)
        end = time.time() + 60
        while time.time() < end and await archive.gaps():  # noqa: ASYNC110 - a database
            await asyncio.sleep(0.5)
        run.resend_s = round(time.time() - started, 1)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def lags(url: str, since: float) -> list[tuple[float, float]]:
    """(ts, received - ts) of every record stamped at or after ``since``."""
    if url.startswith("sqlite:"):
        import sqlite3

        from office.archive.base import sqlite_path

        iso = datetime.fromtimestamp(since, UTC).isoformat(timespec="microseconds")
        with sqlite3.connect(sqlite_path(url), timeout=60) as db:
            rows = db.execute("SELECT ts, received FROM records WHERE ts >= ?", (iso,)).fetchall()
        out = []
        for ts, received in rows:
            t = datetime.fromisoformat(ts).timestamp()
            out.append((t, datetime.fromisoformat(received).timestamp() - t))
        return out
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM ts)::float8, "
            "extract(epoch FROM received - ts)::float8 FROM records "
            "WHERE ts >= to_timestamp(%s)", (since,)).fetchall()
    return [(float(a), float(b)) for a, b in rows]


def say_lag_profile(backend: str, pairs: list[tuple[float, float]], t0: float,
                    loop_lags: list[LoopLag]) -> None:
    """Where the live lag's tail lies in the run: per 2 s of ``ts`` after t0, the records
    made then, their p50, their worst lag, how many took 2 s (the target) or more, and how
    late the fleet's own loops ran then (to stderr; the faults' times are said above)."""
    buckets: dict[int, list[float]] = {}
    for ts, lag in pairs:
        buckets.setdefault(int((ts - t0) // 2) * 2, []).append(lag)
    late: dict[int, float] = {}
    for sample in loop_lags:
        start = int((sample.t - t0) // 2) * 2
        late[start] = max(late.get(start, 0.0), sample.lag_s)
    for start in sorted(buckets):
        lags_here = buckets[start]
        say(f"{backend}: made at +{start:3d}..{start + 2:3d} s: {len(lags_here):5d} records, "
            f"lag p50 {percentile(lags_here, 0.5):6.3f} max {max(lags_here):6.3f} s, "
            f"{sum(lag >= 2.0 for lag in lags_here):4d} at 2 s or more; fleet loop late by "
            f"up to {late.get(start, 0.0):.2f} s")


def saturated_until(lags: list[LoopLag], t0: float, *, late_s: float = 0.2,
                    quiet_s: float = 1.0) -> float:
    """Seconds after t0 until the fleet's loops first ran on time for ``quiet_s``: the
    buses' own start-up burst (every backlog at once, on two cores), 0 when there was none."""
    end = t0
    for lag in lags:
        if lag.lag_s < late_s or lag.t < t0:
            continue
        if lag.t - lag.lag_s - end > quiet_s:  # it was blocked from t - lag_s to t
            break
        end = lag.t
    return round(end - t0, 1)


def phase_lags(pairs: list[tuple[float, float]], *, t0: float, start_s: float,
               killed_at: float | None) -> dict[str, dict[str, float | int | None]]:
    """The live lag by where in the run the record was made: during the fleet's start-up
    burst, from 2 s before the worker was killed (what it held unacknowledged) to 5 s after
    (its share, which the broker keeps for its session until it is back), or the rest."""
    phases: dict[str, list[float]] = {"fleet_start": [], "worker_kill": [], "rest": []}
    for ts, lag in pairs:
        if ts < t0 + start_s:
            phases["fleet_start"].append(lag)
        elif killed_at is not None and killed_at - 2 <= ts <= killed_at + 5:
            phases["worker_kill"].append(lag)
        else:
            phases["rest"].append(lag)
    return {name: {"records": len(values), "p99_s": percentile(values, 0.99),
                   "at_2s_or_more": sum(lag >= 2.0 for lag in values)}
            for name, values in phases.items()}


@dataclass
class Run:
    backend: str
    records: int = 0
    drain_s: float | None = None
    records_per_s: float | None = None
    lag_p50: float | None = None
    lag_p99: float | None = None
    lost: int | None = None
    duplicates: int | None = None
    broker_down_s: float = 0.0
    broker_down_lag_p99: float | None = None
    worker_killed_at_s: float | None = None
    broker_restarted_at_s: float | None = None
    gap_records_before_resend: int | None = None  # gaps after the drain, before the resend
    resend_s: float | None = None  # from the resend's asks to an archive without gaps
    cpu_s: dict[str, float] = field(default_factory=dict)  # by part, t0 to the drain's end
    worker_peak_rss_mb: float | None = None  # the largest of any ingest worker's peak RSS
    notes: list[str] = field(default_factory=list)
    fleet_loop_lag_max_s: float | None = None  # the load generator's own worst lateness
    fleet_start_saturated_s: float | None = None  # its start-up burst, from t0
    lag_by_phase: dict[str, dict[str, float | int | None]] = field(default_factory=dict)


async def one_run(args: argparse.Namespace, *, backend: str, url: str, workers: int,
                  faults: bool, outboxes: Path, backlog: FleetLive, work: Path,
                  postgres_pid: int | None = None) -> Run:
    run = Run(backend)
    broker = Mosquitto(work / f"mosquitto-{backend}")
    broker.start()
    logs = work / f"ingest-{backend}"
    logs.mkdir()

    def worker(n: int) -> subprocess.Popen[bytes]:
        return ingest_process(broker.port, url, f"ingest-{n}", "--log-level", "warning",
                              *args.ingest_args, log=logs / f"{n}.log")

    procs = {n: worker(n) for n in range(1, workers + 1)}
    total_backlog = backlog.backlog_records
    fleet_proc: asyncio.subprocess.Process | None = None
    try:
        # The workers have migrated the archive and subscribed both lanes before the buses
        # connect (a loaded machine takes its time: a fixed sleep was not enough).
        await workers_ready(broker, url, workers)
        config = fleet_config(args, broker.port, outboxes, live=True, backlog_min=0)
        cfg_path = work / f"fleet-{backend}.json"
        cfg_path.write_text(config.model_dump_json())
        fleet_proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "simulators.fleet", "--config", str(cfg_path), cwd=REPO,
            stdout=asyncio.subprocess.PIPE)
        assert fleet_proc.stdout is not None
        live = FleetLive.model_validate_json(await fleet_proc.stdout.readline())
        t0 = live.t_first
        say(f"{backend}: {args.buses} buses connecting with {total_backlog} backlog records")
        backlog_iso = (backlog.backlog_until,)
        where = "ts < to_timestamp(%s)" if not url.startswith("sqlite:") else "ts < ?"
        if url.startswith("sqlite:"):
            backlog_iso = (datetime.fromtimestamp(backlog.backlog_until, UTC)
                           .isoformat(timespec="microseconds"),)  # type: ignore[assignment]
        killed = restarted = False
        killed_at = 0.0
        killed_cpu = 0.0
        pg_cpu0 = tree_cpu_s(postgres_pid) if postgres_pid else 0.0
        down: tuple[float, float] | None = None
        deadline = time.time() + args.timeout
        last_done, last_change = -1, time.time()
        t_done: float | None = None
        progress: list[tuple[float, int]] = []  # (s since t0, backlog records archived)
        peaks: list[float] = []  # ingest workers' peak RSS (MB), the killed one's too
        while True:
            done = await asyncio.to_thread(count, url, where, backlog_iso)
            now = time.time()
            progress.append((now - t0, done))
            if done >= total_backlog:
                break
            if done != last_done:
                last_done, last_change = done, now
            elif now - last_change > args.stall:
                # Records the broker dropped never come: the drain ended at the last progress.
                run.notes.append(f"{backend}: the backlog stalled at {done} of {total_backlog}"
                                 f" records for {args.stall:g} s")
                t_done = last_change
                break
            if now > deadline:
                run.notes.append(f"backlog not drained in {args.timeout} s: {done}")
                break
            # A third (two thirds) of the backlog, or 15 s, whichever comes first.
            if faults and not killed and (done >= total_backlog / 3 or now - t0 > 15):
                killed = True
                killed_at = now
                run.worker_killed_at_s = round(now - t0, 1)
                say(f"{backend}: SIGKILL worker 1 at {done} backlog records")
                killed_cpu = tree_cpu_s(procs[1].pid)
                peaks.append(peak_rss_mb(procs[1].pid))
                procs[1].send_signal(signal.SIGKILL)
                procs[1].wait()
                await asyncio.sleep(ingest_restart_s())  # as systemd would, by the unit
                procs[1] = worker(1)
                last_change = time.time()
            elif faults and killed and not restarted and (
                    done >= 2 * total_backlog / 3 or now - killed_at > 15):
                restarted = True
                run.broker_restarted_at_s = round(now - t0, 1)
                say(f"{backend}: restarting the broker at {done} backlog records")
                t_down = time.time()
                await asyncio.to_thread(broker.stop)
                await asyncio.to_thread(broker.start)
                down = (t_down, time.time())
                last_change = time.time()  # the workers' reconnection is not a stall
            await asyncio.sleep(0.25)
        t_done = t_done or time.time()
        run.drain_s = round(t_done - t0, 2)
        peaks += [peak_rss_mb(p.pid) for p in procs.values()]
        run.worker_peak_rss_mb = max(peaks)
        run.cpu_s = {
            "ingest_workers": round(killed_cpu + sum(tree_cpu_s(p.pid) for p in procs.values()),
                                    1),
            "fleet": round(tree_cpu_s(fleet_proc.pid), 1),
            "mosquitto": round(tree_cpu_s(broker.proc.pid) if broker.proc else 0.0, 1),
        }
        if postgres_pid:
            run.cpu_s["postgresql"] = round(tree_cpu_s(postgres_pid) - pg_cpu0, 1)
        archived = await asyncio.to_thread(count, url)  # a stalled drain: a few live more
        run.records_per_s = round(archived / (t_done - t0))
        say(f"{backend}: backlog drained in {run.drain_s} s, {archived} records archived "
            f"({run.records_per_s}/s)")
        for line in drain_timeline(progress):
            say(f"{backend}: {line}")
        spans = await asyncio.to_thread(bus_spans, url, backlog.backlog_until)
        for line in drain_tail(spans, last_connects(broker.log_text()), t0):
            say(f"{backend}: {line}")
        await asyncio.sleep(args.live_tail)  # live traffic alone for a while
        # What the broker lost (mosquitto 2.0.11 queues nothing for a session restored from
        # its store until that client is back) shows as gaps: the office asks the buses again
        # (`busd office resend`), as its timer would, while they still run.
        await heal(url, broker.port, run)
        fleet_proc.send_signal(signal.SIGTERM)
        out, _ = await fleet_proc.communicate()
        report = FleetReport.model_validate_json(out.decode().splitlines()[-1])
        run.records = report.records
        last = report.last_seqs()
        end = time.time() + 120
        while time.time() < end:
            result = await asyncio.to_thread(check, url, last)
            if result.archived >= report.records:
                break
            await asyncio.sleep(0.5)
        result = await asyncio.to_thread(check, url, last)
        run.lost, run.duplicates = result.lost + result.extra, result.duplicates
        if run.lost:
            run.notes += await missing(url, last, backlog.backlog)
            dropped = broker.log_text().count("dropped")
            run.notes.append(f"{backend}: the broker's log says 'dropped' {dropped} times")
        if report.undelivered:
            run.notes.append(f"{report.undelivered} records left in outboxes")
        # Live records made during the drain: lag to the archive.
        pairs = [(ts, lag) for ts, lag in await asyncio.to_thread(lags, url, t0)
                 if ts <= t_done]
        if down is not None:
            run.broker_down_s = round(down[1] - down[0], 2)
            inside = [lag for ts, lag in pairs if down[0] <= ts <= down[1]]
            run.broker_down_lag_p99 = percentile(inside, 0.99)
            pairs = [(ts, lag) for ts, lag in pairs if not down[0] <= ts <= down[1]]
        values = [lag for _, lag in pairs]
        run.lag_p50, run.lag_p99 = percentile(values, 0.5), percentile(values, 0.99)
        say_lag_profile(backend, pairs, t0, report.loop_lags)
        during = [lag for lag in report.loop_lags if t0 <= lag.t <= t_done]
        run.fleet_loop_lag_max_s = max((lag.lag_s for lag in during), default=0.0)
        run.fleet_start_saturated_s = saturated_until(report.loop_lags, t0)
        run.lag_by_phase = phase_lags(pairs, t0=t0, start_s=run.fleet_start_saturated_s,
                                      killed_at=killed_at if killed else None)
        if values:
            say(f"{backend}: {len(values)} live records, lag mean "
                f"{statistics.fmean(values):.2f} s, p50 {run.lag_p50}, p99 {run.lag_p99}")
        return run
    finally:
        if fleet_proc is not None and fleet_proc.returncode is None:
            fleet_proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(fleet_proc.wait(), 60)
            except TimeoutError:
                fleet_proc.kill()
                await fleet_proc.wait()
        for proc in procs.values():
            stop_process(proc)
        broker.stop()


def bus_spans(url: str, backlog_until: float) -> dict[str, tuple[float, float]]:
    """Per bus, when the archive took its first and its last backlog record (epoch s)."""
    if url.startswith("sqlite:"):
        import sqlite3

        from office.archive.base import sqlite_path

        iso = datetime.fromtimestamp(backlog_until, UTC).isoformat(timespec="microseconds")
        with sqlite3.connect(sqlite_path(url), timeout=60) as db:
            rows = db.execute("SELECT bus, min(received), max(received) FROM records "
                              "WHERE ts < ? GROUP BY bus", (iso,)).fetchall()
        return {bus: (datetime.fromisoformat(a).timestamp(), datetime.fromisoformat(b).timestamp())
                for bus, a, b in rows}
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT bus, extract(epoch FROM min(received))::float8, "
            "extract(epoch FROM max(received))::float8 FROM records "
            "WHERE ts < to_timestamp(%s) GROUP BY bus", (backlog_until,)).fetchall()
    return {bus: (float(a), float(b)) for bus, a, b in rows}


def last_connects(broker_log: str) -> dict[str, float]:
    """Per client id, its last connection in the broker's log (epoch s)."""
    out: dict[str, float] = {}
    for line in broker_log.splitlines():
        head, _, rest = line.partition(": New client connected from ")
        if rest and head.isdigit():
            out[rest.split(" as ", 1)[-1].split(" ", 1)[0]] = float(head)
    return out


def drain_tail(spans: dict[str, tuple[float, float]], connects: dict[str, float], t0: float,
               *, shown: int = 6) -> list[str]:
    """How the buses finished: when 50/95/100 % of them had their whole backlog archived, and
    the last few, with their first archived record and their last connection (a bus that
    started late, or came back late after the broker's restart, finishes late)."""
    if not spans:
        return []
    ends = sorted(last - t0 for _, last in spans.values())
    lines = [f"buses done: half by {ends[len(ends) // 2]:.1f} s, 95 % by "
             f"{ends[int(len(ends) * 0.95) - 1]:.1f} s, all by {ends[-1]:.1f} s"]
    for bus, (first, last) in sorted(spans.items(), key=lambda kv: kv[1][1])[-shown:]:
        connected = connects.get(f"busd-{bus}")
        seen = f"{connected - t0:5.1f}" if connected is not None else "    ?"
        lines.append(f"late bus {bus}: first {first - t0:5.1f} s, last {last - t0:5.1f} s, "
                     f"last connected {seen} s")
    return lines


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory so far (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def drain_timeline(progress: list[tuple[float, int]], step_s: float = 2.0) -> list[str]:
    """The backlog's drain rate in ``step_s`` windows: where the time went (a slow start, the
    worker's kill, the broker's restart, a tail of the last buses)."""
    lines = []
    mark_t, mark_done = 0.0, 0
    for t, done in progress:
        if t - mark_t >= step_s:
            lines.append(f"drained +{mark_t:5.1f}..{t:5.1f} s: {done - mark_done:6d} backlog "
                         f"records, {(done - mark_done) / (t - mark_t):6.0f}/s")
            mark_t, mark_done = t, done
    return lines


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="office-ingest-"))
    load_start = os.getloadavg()
    pg_folder = Path(tempfile.mkdtemp(prefix="busd-pg-"))
    server = start_postgres(pg_folder)
    try:
        say(f"making {args.buses} backlogs of {args.backlog_min} min")
        started = time.time()
        made = work / "outboxes"
        config = fleet_config(args, 1883, made, live=False, backlog_min=args.backlog_min)
        path = work / "backlog.json"
        path.write_text(config.model_dump_json())
        out = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "simulators.fleet", "--config", str(path)],
            cwd=REPO, capture_output=True, text=True, check=True)
        backlog = FleetLive.model_validate_json(out.stdout.splitlines()[0])
        say(f"{backlog.backlog_records} backlog records in {time.time() - started:.0f} s")
        copy = work / "outboxes-pg"
        shutil.copytree(made, copy)
        pg_pid = int((server.datadir / "postmaster.pid").read_text().split()[0])
        pg: Run | None = None
        if not args.no_postgresql:
                pg = await one_run(args, backend="postgresql", url=server.create_database("bench"),
                               workers=2, faults=True, outboxes=copy, backlog=backlog,
                               work=work, postgres_pid=pg_pid)
        sq: Run | None = None
        if not args.no_sqlite:
            copy = work / "outboxes-sqlite"
            shutil.copytree(made, copy)
            sq = await one_run(args, backend="sqlite", url=f"sqlite:///{work}/archive.db",
                               workers=1, faults=False, outboxes=copy, backlog=backlog,
                               work=work)
    finally:
        stop_postgres(server)
        shutil.rmtree(pg_folder, ignore_errors=True)
        if args.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if pg is None:
        pg = Run("postgresql")
    return {
        "buses": args.buses, "records": pg.records, "backlog_records": backlog.backlog_records,
        "records_per_s": pg.records_per_s, "drain_s": pg.drain_s,
        "live_lag_p50_s": pg.lag_p50, "live_lag_p99_s": pg.lag_p99,
        "lost": pg.lost, "duplicates": pg.duplicates,
        "broker_down_s": pg.broker_down_s, "broker_down_lag_p99_s": pg.broker_down_lag_p99,
        "worker_killed_at_s": pg.worker_killed_at_s,
        "broker_restarted_at_s": pg.broker_restarted_at_s,
        "gap_records_before_resend": pg.gap_records_before_resend, "resend_s": pg.resend_s,
        "fleet_loop_lag_max_s": pg.fleet_loop_lag_max_s,
        "fleet_start_saturated_s": pg.fleet_start_saturated_s,
        "live_lag_by_phase": pg.lag_by_phase,
        "sqlite_records_per_s": sq.records_per_s if sq else None,
        "sqlite_drain_s": sq.drain_s if sq else None,
        "sqlite_live_lag_p50_s": sq.lag_p50 if sq else None,
        "sqlite_live_lag_p99_s": sq.lag_p99 if sq else None,
        "sqlite_lost": sq.lost if sq else None,
        "sqlite_duplicates": sq.duplicates if sq else None,
        "cpu_s": pg.cpu_s, "sqlite_cpu_s": sq.cpu_s if sq else None,
        "worker_peak_rss_mb": pg.worker_peak_rss_mb,
        "sqlite_worker_peak_rss_mb": sq.worker_peak_rss_mb if sq else None,
        "notes": pg.notes + (sq.notes if sq else []),
        "cpus": os.cpu_count(), "load_avg_start": [round(x, 2) for x in load_start],
        "load_avg_end": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--buses", type=int, default=200)
    p.add_argument("--backlog-min", type=float, default=60.0)
    p.add_argument("--processes", type=int, default=2, help="fleet simulator processes")
    p.add_argument("--live-tail", type=float, default=5.0,
                   help="seconds of live traffic after the drain, before the fleet stops")
    # A worker's transaction holds at most --batch-max records (1000), but a loaded machine
    # and a worker's reconnection can hold the count still for a while.
    p.add_argument("--stall", type=float, default=90.0,
                   help="a backlog that has not grown for S s is taken as drained (lost)")
    p.add_argument("--timeout", type=float, default=900.0, help="give up on a drain after S s")
    p.add_argument("--no-sqlite", action="store_true", help="skip the SQLite comparison")
    p.add_argument("--no-postgresql", action="store_true", help="only the SQLite run")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--ingest-args", nargs=argparse.REMAINDER, default=[],
                   help="passed to every `busd office ingest` (last on the line)")
    args = p.parse_args()
    from busd.logs import configure_logging

    configure_logging("warning")  # to stderr: the resend's asks are not the result
    result = asyncio.run(main_async(args))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
