"""Scenario files and the simulated driver, without processes (fast)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from busd.errors import ConfigError
from simulators.can.model import VehicleModel
from simulators.scenario.daemon_config import to_toml
from simulators.scenario.driver import DayDriver
from simulators.scenario.model import LoadedScenario, load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.toml"))


class StepClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.t


def offline_day(loaded: LoadedScenario, dt: float = 2.0) -> DayDriver:
    """The scenario's day on the vehicle model alone, following the static plan."""
    clock = StepClock(loaded.start_ts)
    model = VehicleModel(capacity_kwh=loaded.scenario.capacity_kwh,
                         initial_soc=loaded.scenario.initial_soc,
                         outside_temp_c=loaded.temp_at(clock.t))
    driver = DayDriver(loaded, clock, model)  # type: ignore[arg-type]
    driver.ignition_on()
    while not driver.finished and clock.t < loaded.end_ts:
        model.step(dt, driver(0.0))
        clock.t += dt
    driver.record_totals()
    return driver


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_shipped_scenarios_load(path: Path) -> None:
    loaded = load_scenario(path)
    assert loaded.scenario.name == path.stem
    assert loaded.start_ts < loaded.plan.at(loaded.plan.depot.leave_at) < loaded.end_ts


def test_errors_name_their_keys(tmp_path: Path) -> None:
    base = {"name": "x", "plan": str(ROOT / "config/plans/livani-winter.toml"),
            "initial_soc": 90, "weather": {"points": [{"at": "07:00:00", "temp_c": 1}]}}
    with pytest.raises(ConfigError) as err:
        parse_scenario({**base, "colour": "red", "faults": [{"kind": "gps_outage",
                                                             "at": "08:00:00"}]})
    keys = [k for k, _ in err.value.problems]
    assert "colour" in keys and "faults.0" in keys
    with pytest.raises(ConfigError) as err:
        parse_scenario({**base, "roads": {"leg": [{"a": "livani", "b": "riga"}]}})
    assert err.value.problems == [("roads.leg.0.b", "no place 'riga' in the plan")]


def test_roads_default_to_1_3_times_the_straight_line() -> None:
    loaded = load_scenario(ROOT / "scenarios/winter-livani.toml")
    km, _kmh, line = loaded.road("rudzati", "sutri")  # no road given
    assert 1.25 < km / (sum(__import__("busd.plan", fromlist=["x"]).haversine_m(*a, *b)
                            for a, b in itertools.pairwise(line)) / 1000) < 1.35
    assert loaded.road("livani", "rozupe")[0] == 19.0
    assert loaded.road("rozupe", "livani")[2][1] == (56.378, 26.29)  # via, either direction


def test_summer_day_offline_serves_every_stop_and_stays_safe() -> None:
    loaded = load_scenario(ROOT / "scenarios/summer-livani.toml")
    driver = offline_day(loaded)
    assert driver.finished
    assert [v.place_id for v in driver.truth.stop_visits()] == [s.id for s in loaded.plan.stops]
    assert driver.truth.final_soc is not None and driver.truth.final_soc > 40
    for visit, stop in zip(driver.truth.stop_visits(), loaded.plan.stops, strict=True):
        assert visit.minutes is not None and visit.minutes >= stop.planned_min
        assert visit.lift_cycles == 0  # no lift hook offline


def test_winter_plan_as_filed_is_unsafe() -> None:
    """What the winter scenarios are for: without a change the bus ends below the reserve."""
    loaded = load_scenario(ROOT / "scenarios/winter-livani.toml")
    truth = offline_day(loaded).truth
    assert truth.min_soc < loaded.scenario.reserve_pct


def test_generated_toml_round_trips() -> None:
    import tomllib

    data = {"bus_id": "sim-01", "freshness_s": {"battery.soc": 60.0},
            "can": {"dbc": "x.dbc", "mapping": [{"message": "A", "signal": "B", "target": "c",
                                                 "when": {"signal": "D", "op": "==",
                                                          "value": 1}}]},
            "simulators": {"speed": 300.0, "clock_anchor": {"sim_epoch": 1.0, "real_epoch": 2.0}}}
    assert tomllib.loads(to_toml(data)) == data


def test_the_scenario_daemon_config_validates_without_the_rate_rules(tmp_path: Path) -> None:
    # Accelerated days drop max_rate (frames in one read look simultaneous); max_step
    # bounds that rule's steps and must go with it, or the config does not validate.
    from simulators.scenario.daemon_config import daemon_config

    loaded = load_scenario(ROOT / "scenarios/winter-livani.toml")
    config = daemon_config(loaded, speed=100.0, workdir=tmp_path, bus_id="lv-01", display=False,
                           display_port=None, mqtt_port=1883, gpsd_port=2947,
                           can_link=tmp_path / "can.pty", lift_link=tmp_path / "lift.pty",
                           plan=tmp_path / "plan.toml", anchor_real=1.0)
    mapping = config["can"]["mapping"]
    assert mapping and not any("max_rate" in m or "max_step" in m for m in mapping)
