"""``busd demo``'s progress line: the plan version as the office sees the retained plan."""

from __future__ import annotations

import json
from pathlib import Path

from busd.plan import load_plan
from office.live import Office
from simulators.scenario.demo_cli import _line
from simulators.scenario.model import load_scenario
from simulators.scenario.progress import Progress, plan_version
from telemetry import mqtt
from telemetry.models import PlanMessage
from tests.test_planner_component import PLAN_FILE, feed, make, run_until

ROOT = Path(__file__).resolve().parents[1]


async def test_the_progress_line_shows_the_version_of_the_plan_the_office_has(
    tmp_path: Path,
) -> None:
    # The planner publishes its document; the uplink wraps it as the retained plan;
    # the office keeps what arrives. That is what the demo's line reads.
    planner, state, _clock, sink = make(tmp_path)
    depot = load_plan(PLAN_FILE).depot
    feed(state, 90, depot.lat, depot.lon)
    await run_until(planner, lambda _c: bool(sink.plans), what="the plan published")
    document = sink.plans[-1]
    payload = PlanMessage(bus="sim-01", ts="2026-12-14T05:30:00.000Z", **document).dump()
    office = Office(settings=mqtt.BrokerSettings(host="127.0.0.1", port=1), archive=None)
    await office.handle("multimobile/v1/sim-01/plan", json.dumps(payload).encode())
    seen = office.fleet["sim-01"].plan
    assert plan_version(seen) == 1

    loaded = load_scenario(ROOT / "scenarios" / "winter-livani.toml")
    progress = Progress(now=loaded.start_ts, start=loaded.start_ts, end=loaded.end_ts,
                        phase="depot", place="livani", target=None, soc=96.0, speed_kmh=0.0,
                        plan_version=plan_version(seen), plan_changes=0, backlog=0, records=3,
                        daemon_running=True, faults_active=[])
    assert "plan v1 (0 changes)" in _line(loaded, progress)


def test_no_plan_yet_is_a_dash() -> None:
    assert plan_version({}) is None
    assert plan_version({"plan": None}) is None
    assert plan_version({"plan": {"version": True}}) is None
