"""Uplink benchmark: backlog drain, bytes per operating day, outbox disk writes per hour.

    python benchmarks/uplink.py [--records 86400]

Starts its own mosquitto (tests/support/mosquitto.py) on a free port. The last
line of output is one JSON object with the figures:

(a) drain: a 24-hour backlog (one telemetry sample per second plus events) is
    committed to a fresh outbox, then the Uplink connects and the clock runs
    until every record is acknowledged (PUBACK) and deleted. For comparison,
    the same payloads are published with plain aiomqtt, QoS 1, one message each
    (with the same window of messages in flight).
(b) bytes to the broker in a simulated 10-hour day at default rates (3.5 h driving,
    6.5 h on site): the real sampler, state builder and batch packer, driven by a
    ManualClock; MQTT framing (fixed header, topic, packet id) added per message.
(c) outbox bytes written to disk per hour (``write_bytes`` of /proc/self/io) for an
    hour of driving at default rates (1 Hz samples, group commit every 5 s, group
    delete every 30 s,
    synchronous=FULL, every group published and deleted), run back to back:
    the same transactions as in real time, just without the waiting. An acknowledged
    record is moved to the kept ``sent`` table (``outbox.keep_sent_*``, for cmd/resend),
    not just deleted: that copy is most of the difference from before it was kept
    (10.9 → 14.5 MB/h in a quick run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import aiomqtt  # noqa: E402

from busd.clock import ManualClock, SystemClock  # noqa: E402
from busd.config import (  # noqa: E402
    BusdConfig,
    MotionConfig,
    MqttConfig,
    OutboxConfig,
    UplinkConfig,
)
from busd.logs import configure_logging  # noqa: E402
from busd.motion import moving_now  # noqa: E402
from busd.state import VehicleState  # noqa: E402
from busd.supervisor import ComponentContext, ComponentHealth  # noqa: E402
from telemetry.mqtt import BrokerSettings, make_client  # noqa: E402
from telemetry.outbox import Outbox  # noqa: E402
from telemetry.sampler import TelemetrySampler  # noqa: E402
from telemetry.uplink import build_messages  # noqa: E402
from telemetry.wiring import build_uplink  # noqa: E402
from tests.support.mosquitto import Mosquitto  # noqa: E402

START = 1_767_250_000.0


class BusModel:
    """Plausible signal values second by second: driving or standing on site."""

    def __init__(self, state: VehicleState) -> None:
        self.s = state
        self.soc = 96.0
        self.odo = 12_345.0
        self.lat, self.lon = 56.3543, 26.1758
        self.rng = random.Random(7)
        self.lift = 0

    def step(self, t: float, moving: bool) -> None:
        r, up = self.rng, self.s.update
        speed = 45 + 15 * math.sin(t / 60) + r.uniform(-2, 2) if moving else 0.0
        current = (60 + speed * 1.5 + r.uniform(-10, 10)) if moving else 25 + r.uniform(-1, 1)
        self.soc -= current * 600 / 3600 / 1000 / 2.2
        self.odo += speed / 3600
        if moving:
            self.lat += 0.00012 * r.uniform(0.8, 1.2)
            self.lon += 0.00008 * r.uniform(0.8, 1.2)
        volts = 600 - current * 0.08
        for name, value in (
            ("battery.soc", self.soc), ("battery.voltage", volts), ("battery.current", current),
            ("battery.temp_min", 12.0), ("battery.temp_max", 15.0),
            ("battery.cell_v_min", volts / 168 - 0.01), ("battery.cell_v_max", volts / 168),
            ("battery.soh", 97.0), ("vehicle.speed", speed), ("vehicle.odometer", self.odo),
            ("vehicle.ready", True), ("vehicle.outside_temp", -12.0),
            ("vehicle.hvac_power", 6.5 + r.uniform(-0.3, 0.3)), ("vehicle.aux_voltage", 13.8),
            ("vehicle.parking_brake", not moving), ("vehicle.door_open", False),
            ("charger.plugged", False), ("charger.state", "idle"),
            ("gps.fix", "3d"), ("gps.lat", self.lat + r.uniform(-2e-5, 2e-5)),
            ("gps.lon", self.lon + r.uniform(-2e-5, 2e-5)), ("gps.speed", speed),
            ("gps.heading", 45.0 + r.uniform(-5, 5) if moving else 45.0),
            ("gps.hdop", 0.9), ("gps.satellites", 9),
            ("lift.state", "stowed"), ("lift.interlock", False), ("lift.door_open", False),
            ("lift.cycles", self.lift),
        ):
            up(name, value, source="bench")


def mqtt_bytes(topic: str, payload: bytes, qos: int) -> int:
    body = 2 + len(topic.encode()) + (2 if qos else 0) + len(payload) + 1  # +1: v5 props len
    header = 1 + (1 if body < 128 else 2 if body < 16384 else 3 if body < 2097152 else 4)
    ack = 4 if qos else 0  # PUBACK from the broker (counted: it crosses the mobile link)
    return header + body + ack


def event_payload(i: int) -> dict[str, str | float]:
    return {"stop": f"stop-{i % 5}", "soc": 80.5, "note": "benchmark event"}


# --- (a) ----------------------------------------------------------------------------

async def bench_drain(broker: Mosquitto, work: Path, records: int) -> dict[str, Any]:
    config = BusdConfig(bus_id="bus-01", data_dir=work / "drain",
                        mqtt=MqttConfig(host="127.0.0.1", port=broker.port))
    clock = SystemClock()
    state = VehicleState(clock)
    parts = build_uplink(config, state=state, clock=clock)
    model = BusModel(state)
    sampler = TelemetrySampler(state=state, outbox=parts.outbox, clock=ManualClock(),
                               config=config.uplink)
    await parts.outbox.open()
    t0 = time.perf_counter()
    payloads: list[tuple[str, bytes]] = []
    events = 0
    for i in range(records):
        model.step(i, moving=(i // 1800) % 2 == 0)
        data = sampler.sample() or {"full": False, "values": {}}
        parts.outbox.add_telemetry(data, full=data["full"], ts=START + i)
        if i % 100 == 99:  # about 860 events in the day
            await parts.outbox.append("event", "visit_started", event_payload(i))
            events += 1
        elif i % 500 == 499:
            await parts.outbox.flush()
    await parts.outbox.flush()
    build_s = time.perf_counter() - t0
    total = parts.outbox.rows
    rows = await parts.outbox.peek(after_seq=0, limit=total)
    for row in rows:
        msg = build_messages([row], prefix="multimobile/v1/bus-01", bus="bus-01", now=START,
                             max_records=1, max_bytes=10**6)[0]
        payloads.append((msg.topic, msg.payload))

    health = ComponentHealth("uplink", False)
    t0 = time.perf_counter()
    task = asyncio.create_task(parts.uplink.run(ComponentContext(health, clock)))
    while parts.outbox.rows:  # noqa: ASYNC110 (polling is the measurement's resolution)
        await asyncio.sleep(0.005)
    drain_s = time.perf_counter() - t0
    messages = parts.uplink.counters["messages"]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await parts.outbox.close()

    # Raw aiomqtt: the same payloads, one message each, QoS 1, same in-flight window.
    n_raw = min(len(payloads), 20_000)
    settings = BrokerSettings(host="127.0.0.1", port=broker.port, timeout_s=60)
    window = asyncio.Semaphore(config.uplink.inflight)
    async with make_client(settings, identifier="raw", protocol=aiomqtt.ProtocolVersion.V5,
                           max_inflight=config.uplink.inflight) as client:
        async def one(topic: str, payload: bytes) -> None:
            try:
                await client.publish(topic, payload, qos=1)
            finally:
                window.release()

        t0 = time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            for topic, payload in payloads[:n_raw]:
                await window.acquire()
                tg.create_task(one(topic, payload))
        raw_s = time.perf_counter() - t0
    return {"records": total, "events": events, "build_s": round(build_s, 2),
            "drain_s": round(drain_s, 3), "drain_records_per_s": round(total / drain_s),
            "drain_messages": messages, "raw_qos1_msgs": n_raw,
            "raw_qos1_msgs_per_s": round(n_raw / raw_s)}


# --- (b) ----------------------------------------------------------------------------

async def bench_day_bytes(
    work: Path, hours: float = 10.0, driving_h: float = 3.5
) -> dict[str, Any]:
    cfg = UplinkConfig()
    clock = ManualClock(START)
    state = VehicleState(clock)
    model = BusModel(state)
    # Never opened: only the sampler's and the uplink's payload builders run here.
    idle = Outbox(path=work / "day" / "outbox.sqlite", clock=clock)
    sampler = TelemetrySampler(state=state, outbox=idle, clock=clock, config=cfg)
    from telemetry.outbox import Row
    from telemetry.uplink import Uplink  # for its state payload builder

    class _NoStore:
        async def get_meta(self, key: str) -> str | None: return None
        async def set_meta(self, key: str, value: str) -> None: return None
        async def keep_meta(self, key: str, value: str) -> None: return None

    from telemetry.commands import CommandDispatcher
    uplink = Uplink(bus_id="bus-01", mqtt_config=BusdConfig(bus_id="bus-01").mqtt, config=cfg,
                    state=state, outbox=idle,
                    commands=CommandDispatcher(bus_id="bus-01", clock=clock, store=_NoStore()),
                    clock=clock)
    prefix = "multimobile/v1/bus-01"
    total = {"state": 0, "telemetry": 0, "event": 0}
    pending: list[Row] = []
    seq = 0
    next_sample = next_state = next_commit = 0.0
    commit_s = OutboxConfig().commit_interval_s
    seconds = int(hours * 3600)
    # Six legs of 35 min (the scenario's five villages 10-31 km out, about 150 km at
    # 45 km/h), 65 min on site between them.
    drive_left = driving_h * 3600
    for t in range(seconds):
        phase = t % 6000
        moving = phase < 2100 and drive_left > 0
        if moving:
            drive_left -= 1
        model.step(t, moving)
        now = float(t)
        moves = moving_now(MotionConfig(), state)
        if now >= next_sample:
            data = sampler.sample()
            if data is not None:
                seq += 1
                pending.append(Row(seq, "telemetry", "sample", START + t,
                                   json.dumps(data, separators=(",", ":"))))
            next_sample = now + (cfg.telemetry_interval_moving_s if moves
                                 else cfg.telemetry_interval_parked_s)
        if t % 1800 == 0:  # an event every half hour (visits, legs, alerts)
            seq += 1
            pending.append(Row(seq, "event", "visit_started", START + t,
                               json.dumps(event_payload(t))))
        if now >= next_state:
            total["state"] += mqtt_bytes(f"{prefix}/state", uplink.state_payload(), 0) + 5
            next_state = now + (cfg.state_interval_moving_s if moves
                                else cfg.state_interval_parked_s)
        if now >= next_commit:
            for m in build_messages(pending, prefix=prefix, bus="bus-01", now=START + t,
                                    max_records=cfg.batch_max_records,
                                    max_bytes=cfg.batch_max_kb * 1024):
                key = "telemetry" if m.topic.endswith("/telemetry") else "event"
                total[key] += mqtt_bytes(m.topic, m.payload, 1)
            pending.clear()
            next_commit = now + commit_s
        await clock.advance(1.0)
    mb = sum(total.values()) / 1e6
    return {"day_uplink_mb": round(mb, 2), "day_records": seq,
            "day_breakdown_mb": {k: round(v / 1e6, 2) for k, v in total.items()}}


# --- (c) ----------------------------------------------------------------------------

def write_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError("no write_bytes in /proc/self/io")


async def bench_disk(work: Path) -> dict[str, Any]:
    cfg = OutboxConfig()
    clock = ManualClock(START)
    state = VehicleState(clock)
    model = BusModel(state)
    box = Outbox(path=work / "disk" / "outbox.sqlite", clock=clock, config=cfg)
    # only its sample() runs: the loop below adds to the outbox itself
    sampler = TelemetrySampler(state=state, outbox=box, clock=clock, config=UplinkConfig())
    await box.open()
    before = write_bytes()
    sent = 0
    for t in range(3600):
        model.step(t, moving=True)
        data = sampler.sample()
        if data is not None:
            box.add_telemetry(data, full=data["full"])
        if t % 1800 == 0:
            await box.append("event", "leg_completed", event_payload(t))
        if t % int(cfg.commit_interval_s) == 0:
            await box.flush()
            rows = await box.peek(after_seq=sent, limit=1000)
            if rows:
                sent = rows[-1].seq
                await box.ack([r.seq for r in rows])
        if t % int(cfg.delete_interval_s) == 0:
            await box.purge()
        await clock.advance(1.0)
    await box.close()
    written = write_bytes() - before
    return {"disk_write_mb_per_hour": round(written / 1e6, 2)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=86_400)
    args = parser.parse_args()
    configure_logging("warning", "console")
    with tempfile.TemporaryDirectory(dir=REPO / "benchmarks") as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "mosquitto")
        broker.start()
        try:
            drain = await bench_drain(broker, work, args.records)
        finally:
            broker.stop()
        print("drain:", json.dumps(drain))
        day = await bench_day_bytes(work)
        print("day:", json.dumps(day))
        disk = await bench_disk(work)
        print("disk:", json.dumps(disk))
    print(json.dumps({
        "records": drain["records"], "drain_s": drain["drain_s"],
        "drain_records_per_s": drain["drain_records_per_s"],
        "raw_qos1_msgs_per_s": drain["raw_qos1_msgs_per_s"],
        "day_uplink_mb": day["day_uplink_mb"],
        "disk_write_mb_per_hour": disk["disk_write_mb_per_hour"],
    }))


if __name__ == "__main__":
    asyncio.run(main())
