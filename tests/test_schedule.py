"""The service schedule (office/schedule): cycles on the calendar, validation, day plans and
their energy check, and ``busd office plan generate``. Pure: no archive (see
tests/test_schedule_archive.py for proposals and coverage)."""

from __future__ import annotations

import copy
import json
import tomllib
from datetime import date, time
from pathlib import Path
from typing import Any

import pytest

from busd.errors import ConfigError
from busd.plan import load_plan, validate_for_bus
from busd.planner.energy import EnergyModel
from office.schedule.cli import EXIT_UNSAFE
from office.schedule.cycles import cycle_due, day_kind, due_days, due_points, next_reserve_day
from office.schedule.generate import BusDay, bus_day
from office.schedule.model import Fortnightly, Monthly, Schedule, load_schedule, parse_schedule

LIVANI = Path(__file__).resolve().parents[1] / "config" / "schedule.livani.toml"
RAW: dict[str, Any] = tomllib.loads(LIVANI.read_text(encoding="utf-8"))


def raw() -> dict[str, Any]:
    return copy.deepcopy(RAW)


@pytest.fixture(scope="module")
def livani() -> Schedule:
    return load_schedule(LIVANI)


def plan_day(schedule: Schedule, day: date, *, version: int = 7,
             make_ups: tuple[tuple[str, str], ...] = ()) -> BusDay:
    bus = schedule.buses[0]
    return bus_day(schedule, bus, day, version=version, energy=EnergyModel(bus.energy),
                   energy_source="seeded", make_ups=make_ups)


# --- cycles ------------------------------------------------------------------------------


@pytest.mark.parametrize(("anchor", "due", "not_due"), [
    # Anchored in the last week of 2026: the fortnights run on into 2027.
    (date(2026, 12, 28), [date(2026, 12, 28), date(2027, 1, 11), date(2027, 1, 25)],
     [date(2027, 1, 4), date(2027, 1, 18)]),
    # 2020 had an ISO week 53: week numbers 53 and 1 are both odd, whole weeks are not.
    (date(2020, 12, 31), [date(2020, 12, 28), date(2021, 1, 11)], [date(2021, 1, 4)]),
    # An anchor in the following year counts backwards too.
    (date(2027, 1, 13), [date(2026, 12, 28), date(2027, 1, 11)], [date(2027, 1, 4)]),
])
def test_fortnightly_anchors_across_a_years_end(anchor: date, due: list[date],
                                                not_due: list[date]) -> None:
    cycle = Fortnightly(every="fortnightly", weekday="mon", anchor=anchor)
    assert [cycle_due(cycle, d) for d in due] == [True] * len(due)
    assert [cycle_due(cycle, d) for d in not_due] == [False] * len(not_due)


def test_months_with_five_of_a_weekday() -> None:
    fifth = Monthly(every="monthly", weekday="thu", nth=5)
    last = Monthly(every="monthly", weekday="thu", nth="last")
    fourth = Monthly(every="monthly", weekday="thu", nth=4)
    december, november = (date(2026, 12, 1), date(2026, 12, 31)), (date(2026, 11, 1),
                                                                    date(2026, 11, 30))

    def on(cycle: Monthly, month: tuple[date, date]) -> list[date]:
        from office.schedule.cycles import days
        return [d for d in days(*month) if cycle_due(cycle, d)]

    # December 2026 has five Thursdays (3 … 31), November four (5 … 26).
    assert on(fifth, december) == [date(2026, 12, 31)]
    assert on(fifth, november) == []
    assert on(last, december) == [date(2026, 12, 31)]
    assert on(last, november) == [date(2026, 11, 26)]
    assert on(fourth, december) == [date(2026, 12, 24)]


def test_a_place_due_twice_in_one_week(livani: Schedule) -> None:
    # Jersika: every Thursday, and every other Monday (the weeks of 28 Dec 2026, 11 Jan 2027…).
    jersika = livani.point("jersika")
    assert due_days(jersika, date(2027, 1, 11), date(2027, 1, 17)) == [
        date(2027, 1, 11), date(2027, 1, 14)]
    assert due_days(jersika, date(2027, 1, 4), date(2027, 1, 10)) == [date(2027, 1, 7)]
    # Both days get a plan with Jersika.
    for day in (date(2027, 1, 11), date(2027, 1, 14)):
        planned = plan_day(livani, day).plan
        assert planned is not None and "jersika" in [s.id for s in planned.stops]


def test_two_cycles_on_one_day_give_one_visit(livani: Schedule) -> None:
    # Rudzāti: every Tuesday, and the last Thursday; Jersika every Thursday: 28 Jan 2027.
    day = date(2027, 1, 28)
    ids = [p.id for p in due_points(livani, "sim-01", day)]
    assert ids.count("rudzati") == 1 and ids.count("jersika") == 1


def test_a_holiday_on_a_due_day_plans_nothing(livani: Schedule) -> None:
    # 31 Dec 2026: Rudzāti's last Thursday, Jersika's and Sutri's Thursday, and a holiday.
    day = date(2026, 12, 31)
    assert {p.id for p in due_points(livani, "sim-01", day)} == {"rudzati", "jersika", "sutri"}
    assert day_kind(livani, day) == "holiday"
    result = plan_day(livani, day)
    assert result.plan is None and result.kind == "holiday" and result.safe
    # The next reserve day skips 1 January (a holiday, though a Friday).
    assert next_reserve_day(livani, day) == date(2027, 1, 8)


# --- validation ----------------------------------------------------------------------------


def _problems(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as err:
        parse_schedule(data)
    return dict(err.value.problems)


def test_the_shipped_schedule_is_valid(livani: Schedule) -> None:
    assert livani.municipality == "Līvāni"
    assert {p.id for p in livani.points} == {"rozupe", "rudzati", "turki", "jersika", "sutri"}
    assert livani.points_of(livani.bus("sim-01")) == [p.id for p in livani.points]


@pytest.mark.parametrize(("change", "key", "words"), [
    (lambda d: d["points"][1]["cycles"][0].update(weekday="thursday"),
     "points.1.cycles.0.weekly.weekday", "'mon'"),
    (lambda d: d["points"][0].update(min_min=200), "points.0", "min_min is longer"),
    (lambda d: d["points"][2]["cycles"].append({"every": "monthly", "weekday": "mon",
                                                  "nth": 6}),
     "points.2.cycles.1.monthly.nth", "5"),
    (lambda d: d["points"][0].update(lat=95), "points.0.lat", "less than or equal"),
    (lambda d: d.update(timezone="Europe/Atlantis"), "timezone", "unknown time zone"),
    (lambda d: d["buses"][0].update(routes=["north", "east"]), "buses.0.routes.1",
     "unknown route 'east'"),
    (lambda d: d["buses"][0].update(routes=["north"]), "points.1.id",
     "'jersika' is served by no bus"),
    (lambda d: d["reserve"].update(weekdays=["tue"]), "points.0.cycles.0.weekday",
     "tue is a reserve weekday"),
    (lambda d: d["reserve"].update(dates=["2026-12-25"]), "reserve.dates.0", "public holiday"),
    (lambda d: d["points"][3].update(colour="red"), "points.3.colour", "Extra inputs"),
    (lambda d: d["buses"][0]["energy"].update(reserve_pct=90), "buses.0.energy.reserve_pct",
     "60"),
])
def test_validation_errors_name_the_key(change: Any, key: str, words: str) -> None:
    data = raw()
    change(data)
    problems = _problems(data)
    assert key in problems, problems
    assert words in problems[key]


def test_a_missing_or_broken_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="schedule file not found"):
        load_schedule(tmp_path / "none.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("municipality = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot read schedule"):
        load_schedule(broken)


# --- day plans ---------------------------------------------------------------------------


def test_the_order_keeps_the_windows_and_takes_the_shortest_way(livani: Schedule) -> None:
    # Tuesday: Turki is first in the schedule, but Rožupe's window opens at 08:00 and
    # Rudzāti's at 10:00; Turki fits only after them.
    result = plan_day(livani, date(2026, 12, 8))
    assert result.plan is not None and result.safe, result.problems
    assert [s.id for s in result.plan.stops] == ["rozupe", "rudzati", "turki"]
    assert [(s.id, s.arrive) for s in result.stops][:2] == [("rozupe", "08:00"),
                                                            ("rudzati", "10:00")]
    # Road km from the schedule reach the plan (livani → rožupe 19 km, rožupe → rudzāti 8.5).
    assert [s.leg_km for s in result.plan.stops][:2] == [19.0, 8.5]
    assert result.plan.stops[2].leg_km == 15.5  # rudzāti → turki
    assert result.plan.depot.return_leg_km is None  # turki → depot: not known, great circle


def test_the_plan_is_the_one_the_bus_takes(livani: Schedule, tmp_path: Path) -> None:
    from office.schedule.day import write_day

    day = date(2026, 12, 10)
    result = plan_day(livani, day, version=1_796_000_000)
    (written,) = write_day(tmp_path, day, [result])
    assert written.name == "sim-01.json"
    plan = load_plan(written)  # the bus's own loader: the format of cmd/plan and plan files
    assert plan == result.plan
    assert validate_for_bus(plan, "sim-01", day, current_version=1) == []
    summary = json.loads((tmp_path / "2026-12-10.summary.json").read_text(encoding="utf-8"))
    assert summary[0]["safe"] is True and "plan" not in summary[0]


def test_a_late_window_and_a_late_return_are_flagged(livani: Schedule) -> None:
    data = raw()
    # Rožupe's window closes before the bus can be there; Turki takes all afternoon.
    data["points"][2]["window"] = {"earliest": "07:35:00", "latest": "07:40:00"}
    data["points"][0]["planned_min"] = 400
    schedule = parse_schedule(data)
    result = plan_day(schedule, date(2026, 12, 8))
    assert not result.safe
    assert any(p.startswith("rozupe: arrives") for p in result.problems), result.problems
    assert any(p.startswith("back at the depot") for p in result.problems), result.problems


def test_an_unsafe_day_is_flagged_and_not_written_as_ready(tmp_path: Path) -> None:
    from busd.cli import main

    data = raw()
    data["buses"][0]["start_soc"] = 32  # a bus that was not charged overnight
    schedule_file = tmp_path / "schedule.toml"
    schedule_file.write_text(LIVANI.read_text(encoding="utf-8").replace(
        "start_soc = 96", "start_soc = 32"), encoding="utf-8")
    schedule = parse_schedule(data)
    result = plan_day(schedule, date(2026, 12, 8))
    assert not result.safe and result.depot_soc is not None
    assert result.threshold_pct is not None and result.depot_soc < result.threshold_pct
    assert any("below the reserve" in p for p in result.problems)
    out = tmp_path / "out"
    status = main(["office", "plan", "generate", "--schedule", str(schedule_file),
                   "--date", "2026-12-08", "--out", str(out), "--version", "5"])
    assert status == EXIT_UNSAFE
    assert sorted(p.name for p in out.iterdir()) == ["2026-12-08.summary.json",
                                                     "sim-01.unsafe.json"]
    summary = json.loads((out / "2026-12-08.summary.json").read_text(encoding="utf-8"))
    assert summary[0]["safe"] is False and summary[0]["problems"]


def test_generate_writes_a_plan_per_bus_and_day(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from busd.cli import main

    status = main(["office", "plan", "generate", "--schedule", str(LIVANI),
                   "--date", "2026-12-07", "--through", "2026-12-11", "--out", str(tmp_path),
                   "--version", "9"])
    assert status == 0
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("sim-01*.json"))
    assert written == ["2026-12-08/sim-01.json", "2026-12-10/sim-01.json"]
    text = capsys.readouterr().out
    assert "2026-12-11 sim-01: reserve, nothing planned" in text
    assert load_plan(tmp_path / "2026-12-08" / "sim-01.json").version == 9


def test_generate_names_the_bad_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from busd.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text(LIVANI.read_text(encoding="utf-8").replace('weekday = "tue"',
                                                              'weekday = "tues"', 1),
                   encoding="utf-8")
    assert main(["office", "plan", "generate", "--schedule", str(bad), "--date", "2026-12-08",
                 "--out", str(tmp_path)]) == 2
    assert "points.0.cycles.0.weekly.weekday" in capsys.readouterr().out


def test_a_make_up_joins_its_reserve_day(livani: Schedule) -> None:
    result = plan_day(livani, date(2026, 12, 11),
                      make_ups=(("līvāni/turki/2026-12-08", "turki"),))
    assert result.kind == "reserve" and result.plan is not None
    assert [s.id for s in result.plan.stops] == ["turki"]
    assert result.make_ups == ["līvāni/turki/2026-12-08"]
    assert plan_day(livani, date(2026, 12, 11)).plan is None


def test_window_order_is_kept_when_many_stops_are_due() -> None:
    data = raw()
    # Eight points on Tuesdays: past the exhaustive search, the greedy one keeps the windows.
    base = data["points"][2]
    for k in range(5):
        extra = copy.deepcopy(base)
        extra.update(id=f"extra{k}", name=f"Extra {k}", lat=56.36 + k * 0.01, planned_min=20,
                     min_min=10)
        extra.pop("window")
        data["points"].append(extra)
        data["routes"][0]["points"].append(f"extra{k}")
    schedule = parse_schedule(data)
    result = plan_day(schedule, date(2026, 12, 8))
    assert result.plan is not None and len(result.plan.stops) == 8
    ids = [s.id for s in result.plan.stops]
    assert ids.index("rozupe") < ids.index("rudzati")
    assert all(s.window is None or s.window.earliest >= time(8) for s in result.plan.stops)


def test_the_readme_documents_every_schedule_key() -> None:
    from office.schedule.model import Bus, Road, Route, ServicePoint

    readme = (LIVANI.parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### The service schedule"):]
    section = section[:section.index("\n## ")]
    for model in (Schedule, ServicePoint, Bus, Road, Route):
        for key in model.model_fields:
            assert f"`{key}`" in section, f"{model.__name__}.{key}"


def test_plan_send_refuses_a_plan_generate_flagged_unsafe_unless_forced(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    from busd.cli import main

    schedule_file = tmp_path / "schedule.toml"
    schedule_file.write_text(LIVANI.read_text(encoding="utf-8").replace(
        "start_soc = 96", "start_soc = 32"), encoding="utf-8")
    out = tmp_path / "out"
    assert main(["office", "plan", "generate", "--schedule", str(schedule_file),
                 "--date", "2026-12-08", "--out", str(out), "--version", "5"]) == EXIT_UNSAFE
    # Renamed by hand: the summary beside it still flags bus sim-01's version 5.
    renamed = out / "sim-01.json"
    renamed.write_bytes((out / "sim-01.unsafe.json").read_bytes())
    with socket.socket() as s:  # a port nobody listens on: a forced send fails to connect
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    send = ["office", "plan", "send", "--host", "127.0.0.1", "--port", port, "--bus", "sim-01",
            "--timeout", "0.1"]
    for file, flag in ((out / "sim-01.unsafe.json", "sim-01.unsafe.json was flagged unsafe"),
                       (renamed, "2026-12-08.summary.json flags sim-01.json unsafe (")):
        capsys.readouterr()
        assert main([*send, str(file)]) == 2
        said = capsys.readouterr().out
        assert "not sent: " in said and flag in said and "--force" in said, said
    capsys.readouterr()
    assert main([*send, "--force", str(renamed)]) == 2  # sent (tried): the broker is absent
    said = capsys.readouterr().out
    assert "Connection refused" in said and "not sent: " not in said, said
    # A safe plan with a summary that says so is sent (tried) without --force.
    ok = tmp_path / "ok"
    assert main(["office", "plan", "generate", "--schedule", str(LIVANI), "--date", "2026-12-08",
                 "--out", str(ok), "--version", "5"]) == 0
    capsys.readouterr()
    assert main([*send, str(ok / "sim-01.json")]) == 2
    said = capsys.readouterr().out
    assert "Connection refused" in said and "not sent: " not in said, said
