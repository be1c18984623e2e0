"""The fleet in a few processes: the parent splits the buses, each child runs its share.

A child (``python -m simulators.fleet --process I --config FILE``) makes its buses' backlogs,
starts them on one :class:`busd.clock.ScaledClock`, and prints JSON lines on stdout: ``live``
when its buses are connecting (with the last seq of every backlog), ``done`` at the end (every
bus's :class:`BusResult`). It stops after ``duration_s`` simulated seconds, or at SIGTERM or
SIGINT; either way each bus drains its outbox before it stops.

The parent prints one ``live`` line once every child is live, and the :class:`FleetReport` as its
last line. SIGTERM or SIGINT to the parent is passed to the children, which stop cleanly. The
children get SIGTERM from the kernel if the parent dies (:func:`simulators.broker.die_with_parent`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal, TextIO

import structlog
from pydantic import BaseModel

from busd.clock import ScaledClock
from busd.logs import configure_logging
from simulators.broker import die_with_parent
from simulators.fleet.bus import BusResult, SimBus, live_start
from simulators.fleet.config import FleetConfig
from simulators.fleet.loop_lag import LoopLag, watch_loop

log = structlog.get_logger("simulators.fleet")


class ProcessLive(BaseModel):
    event: Literal["live"] = "live"
    process: int
    t: float  # real time.time() the buses started connecting
    backlog_until: float  # records stamped before this are the backlog
    backlog: dict[str, int]  # bus: last seq of its backlog


class ProcessDone(BaseModel):
    event: Literal["done"] = "done"
    process: int
    buses: list[BusResult]
    loop_lags: list[LoopLag] = []  # the process's late wake-ups while its buses ran


class FleetLive(BaseModel):
    event: Literal["live"] = "live"
    t_first: float
    t_last: float
    backlog_until: float
    backlog_records: int
    backlog: dict[str, int]


class FleetReport(BaseModel):
    """The parent's last line: what every bus produced, so the office's archive can be checked."""

    event: Literal["report"] = "report"
    buses: int
    records: int  # the sum of every bus's last seq
    undelivered: int  # records left in outboxes (0 when every bus drained)
    outages: int
    events: int
    failed_processes: int
    per_bus: list[BusResult]
    loop_lags: list[LoopLag] = []  # every process's late wake-ups (simulators/fleet/loop_lag)

    def last_seqs(self) -> dict[str, int]:
        return {b.bus: b.last_seq for b in self.per_bus}


def _print(line: BaseModel, out: TextIO) -> None:
    out.write(line.model_dump_json() + "\n")
    out.flush()


# --- a child ------------------------------------------------------------------------------


async def run_process(config: FleetConfig, process: int, out: TextIO = sys.stdout) -> None:
    assert config.data_dir is not None, "the parent chooses the data directory"
    now = time.time()
    start = live_start(config, now)
    buses = [SimBus(fleet=config, index=i, data_dir=config.data_dir, start=start)
             for i in config.share(process)]
    if config.backlog_min > 0:
        for bus in buses:
            await bus.prefill(start=start, until=now)
    if not config.live:
        _print(ProcessLive(process=process, t=time.time(), backlog_until=now,
                           backlog={b.id: b.backlog_seq for b in buses}), out)
        _print(ProcessDone(process=process, buses=[
            BusResult(bus=b.id, last_seq=b.backlog_seq, backlog_seq=b.backlog_seq,
                      undelivered=b.backlog_seq, outages=0, events=b.events) for b in buses]), out)
        return
    clock = ScaledClock(speed=config.speed)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, dump_tasks)
    _print(ProcessLive(process=process, t=time.time(), backlog_until=now,
                       backlog={b.id: b.backlog_seq for b in buses}), out)

    async def timer() -> None:
        await clock.sleep(config.duration_s)
        stop.set()

    ends = asyncio.create_task(timer(), name="fleet:duration")
    lags: list[LoopLag] = []
    watch = asyncio.create_task(watch_loop(lags), name="fleet:loop-lag")
    try:
        results = await asyncio.gather(*(b.run(clock=clock, stop=stop) for b in buses))
    finally:
        for task in (ends, watch):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    _print(ProcessDone(process=process, buses=list(results), loop_lags=lags), out)


def dump_tasks() -> None:
    """SIGUSR1: every task's stack to stderr, for a run that does not end."""
    for task in asyncio.all_tasks():
        print(f"--- {task.get_name()}", file=sys.stderr)
        task.print_stack(limit=12, file=sys.stderr)
    sys.stderr.flush()


def process_main(config_file: Path, process: int) -> int:
    config = FleetConfig.model_validate_json(config_file.read_text(encoding="utf-8"))
    configure_logging(config.log_level, "json")
    asyncio.run(run_process(config, process))
    return 0


# --- the parent ---------------------------------------------------------------------------


async def run_fleet(config: FleetConfig, *, out: TextIO = sys.stdout) -> FleetReport:
    """Run the fleet in ``config.processes`` children; prints ``live`` and the report."""
    with contextlib.ExitStack() as stack:
        data_dir = config.data_dir
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fleet-")))
        data_dir.mkdir(parents=True, exist_ok=True)
        config = config.model_copy(update={"data_dir": data_dir})
        config_file = data_dir / "fleet.json"
        config_file.write_text(config.model_dump_json(), encoding="utf-8")
        return await _supervise(config, config_file, out)
    raise AssertionError("unreachable")  # pragma: no cover


async def _supervise(config: FleetConfig, config_file: Path, out: TextIO) -> FleetReport:
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "simulators.fleet", "--process", str(i),
            "--config", str(config_file), stdout=asyncio.subprocess.PIPE,
            preexec_fn=die_with_parent(), start_new_session=True)
        for i in range(config.processes)
    ]
    loop = asyncio.get_running_loop()

    def forward() -> None:
        for child in children:
            if child.returncode is None:
                child.send_signal(signal.SIGTERM)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, forward)
    lives: list[ProcessLive] = []
    done: list[ProcessDone] = []

    def all_live() -> None:
        backlog = {k: v for p in lives for k, v in p.backlog.items()}
        _print(FleetLive(t_first=min(p.t for p in lives), t_last=max(p.t for p in lives),
                         backlog_until=min(p.backlog_until for p in lives),
                         backlog_records=sum(backlog.values()), backlog=backlog), out)

    async def read(child: asyncio.subprocess.Process) -> None:
        assert child.stdout is not None
        async for raw in child.stdout:
            line = json.loads(raw)
            if line.get("event") == "live":
                lives.append(ProcessLive.model_validate(line))
                if len(lives) == len(children):
                    all_live()
            elif line.get("event") == "done":
                done.append(ProcessDone.model_validate(line))
        await child.wait()

    try:
        await asyncio.gather(*(read(c) for c in children))
    finally:
        forward()
        for child in children:
            await child.wait()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    per_bus = sorted((b for p in done for b in p.buses), key=lambda b: b.bus)
    report = FleetReport(
        buses=len(per_bus), records=sum(b.last_seq for b in per_bus),
        undelivered=sum(b.undelivered for b in per_bus), outages=sum(b.outages for b in per_bus),
        events=sum(b.events for b in per_bus),
        failed_processes=sum(1 for c in children if c.returncode != 0), per_bus=per_bus,
        loop_lags=sorted((lag for p in done for lag in p.loop_lags), key=lambda lag: lag.t))
    if report.failed_processes or report.buses != config.buses:
        log.error("fleet_incomplete", buses=report.buses, expected=config.buses,
                  failed_processes=report.failed_processes)
    _print(report, out)
    return report
