"""CAN ingest benchmark (run by hand; figures go in the issue notes).

1. Throughput: a synthetic recording of at least 200,000 frames (made by the
   simulator, candump format) is read with python-can's LogReader, then pushed
   through the production decode-and-update path (``CanReader._ingest``: the
   compiled decoder, plausibility rules and vehicle-state updates) on one core,
   and, in the same run, through a naive loop (``db.decode_message`` → dict).
2. Load: the simulator runs as its own process, serving 1,000 frames/s as an
   slcan adapter on a pty; ``busd run`` reads it through python-can's slcan
   interface for 60 s. Reports the daemon's CPU share of one core and its peak
   RSS (VmHWM).

Usage: python benchmarks/can_ingest.py [--frames 200000] [--load-seconds 60]
The last output line is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import can
import psutil
import structlog

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from busd.clock import SystemClock  # noqa: E402
from busd.config import CanSimulatorConfig, load_config  # noqa: E402
from busd.logs import RateLimitedLog  # noqa: E402
from busd.state import VehicleState  # noqa: E402
from drivers.can.decoder import FrameDecoder, load_dbc  # noqa: E402
from drivers.can.reader import CanReader  # noqa: E402
from simulators.can.record import record_log  # noqa: E402

DBC = REPO / "config" / "busd.dbc"
BATCH = 64  # frames per hand-over, about what the reader thread delivers at load


def make_recording(path: Path, frames: int) -> list[can.Message]:
    # DBC messages only (83 frames/s): every frame is decoded, the harder case.
    seconds = frames / 83.0 + 5
    record_log(path, CanSimulatorConfig(dbc=DBC, outside_temp_c=-12.0), duration_s=seconds)
    messages = list(can.LogReader(str(path)))
    return messages[:frames] if len(messages) >= frames else messages


def production_rate(messages: list[can.Message]) -> float:
    config = load_config(REPO / "config" / "sim.toml")
    assert config.can is not None
    clock = SystemClock()
    state = VehicleState(clock)
    decoder = FrameDecoder(load_dbc(DBC, strict=True), config.can.mapping)
    reader = CanReader(config=config.can, decoder=decoder, state=state, clock=clock)
    problems = RateLimitedLog(structlog.get_logger("bench"), 30.0)
    batches = [messages[i:i + BATCH] for i in range(0, len(messages), BATCH)]
    start = time.perf_counter()
    for batch in batches:
        reader._ingest(batch, problems)
    elapsed = time.perf_counter() - start
    assert decoder.stats.values > len(messages), "the mapping produced too few values"
    return len(messages) / elapsed


def naive_rate(messages: list[can.Message]) -> float:
    import cantools

    db = cantools.database.load_file(str(DBC))
    out: list[dict[str, object]] = []
    start = time.perf_counter()
    for msg in messages:
        with contextlib.suppress(KeyError, ValueError):
            out.append(dict(db.decode_message(msg.arbitration_id, msg.data)))
    elapsed = time.perf_counter() - start
    assert len(out) == len(messages), f"naive loop decoded only {len(out)} frames"
    return len(messages) / elapsed


def load_test(seconds: float, workdir: Path) -> tuple[float, float, int]:
    link = workdir / "can.pty"
    config = workdir / "busd.toml"
    mapping = (REPO / "config" / "sim.toml").read_text().split("# --- Mapping")[1]
    config.write_text(f"""
bus_id = "bench-01"
data_dir = "{workdir}"
[log]
format = "json"
[can]
interface = "slcan_stream"
channel = "{link}"
dbc = "{DBC}"
# --- Mapping{mapping}""")
    sim = subprocess.Popen(
        [sys.executable, "-m", "simulators.can", "--slcan-link", str(link), "--fps", "1000",
         "--log-level", "warning"], cwd=REPO,
    )
    log_path = workdir / "daemon.log"
    try:
        deadline = time.monotonic() + 20
        while not link.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("simulator did not create its pty")
            time.sleep(0.05)
        with open(log_path, "w") as log:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "busd.cli", "run", "--config", str(config), "--view", "off"],
                cwd=REPO, stderr=log, stdout=log,
            )
        proc = psutil.Process(daemon.pid)
        warmup = time.monotonic() + 5
        while time.monotonic() < warmup:
            time.sleep(0.1)
        cpu_start = proc.cpu_times()
        wall_start = time.monotonic()
        time.sleep(seconds)
        cpu_end = proc.cpu_times()
        wall = time.monotonic() - wall_start
        if daemon.poll() is not None:
            raise RuntimeError(f"the daemon exited early:\n{log_path.read_text()[-3000:]}")
        status = Path(f"/proc/{daemon.pid}/status").read_text()
        hwm_kb = next(int(line.split()[1]) for line in status.splitlines()
                      if line.startswith("VmHWM"))
        daemon.terminate()
        daemon.wait(10)
    finally:
        sim.terminate()
        sim.wait(10)
    cpu = (cpu_end.user - cpu_start.user) + (cpu_end.system - cpu_start.system)
    frames = 0
    for line in log_path.read_text().splitlines():
        if '"can_stats"' in line:
            frames = json.loads(line).get("frames", frames)
    return cpu / wall, hwm_kb / 1024, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--load-seconds", type=float, default=60.0)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        messages = make_recording(workdir / "recording.log", args.frames)
        print(f"recording: {len(messages)} frames", flush=True)
        fast = max(production_rate(messages) for _ in range(3))
        naive = max(naive_rate(messages) for _ in range(3))
        print(f"production decode+update: {fast:,.0f} frames/s", flush=True)
        print(f"naive decode_message loop: {naive:,.0f} frames/s", flush=True)
        os.sched_setaffinity(0, os.sched_getaffinity(0) | set(range(os.cpu_count() or 1)))
        cpu_share, rss_mb, frames = load_test(args.load_seconds, workdir)
        print(f"daemon at 1,000 frames/s over slcan for {args.load_seconds:.0f} s: "
              f"CPU {cpu_share:.1%} of one core, peak RSS {rss_mb:.1f} MB, "
              f"{frames} frames decoded", flush=True)
    print(json.dumps({
        "frames_per_s": round(fast), "naive_frames_per_s": round(naive),
        "cpu_share_at_1000fps": round(cpu_share, 4), "rss_mb": round(rss_mb, 1),
    }))


if __name__ == "__main__":
    main()
