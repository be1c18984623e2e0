"""``busd report``: the day on the terminal, CSV files, the SOC plot, the month."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from busd.monitoring.segment import DayTracker, Settings, places_of
from busd.monitoring.summary import daily_summary, expected_visits, monthly_summary
from busd.services.tally import VisitTally
from telemetry import report_cli
from telemetry.monitoring_store import MonitoringStore
from tests.monitoring_helpers import DEPOT, PREILI, ROZUPE, TURKI, make_plan
from tests.test_monitoring_segment import Script

DAY = "2026-01-01"


def fill(store: MonitoringStore, day: date = date(2026, 1, 1), *, skip_turki: bool = False) -> None:
    """A recorded day: the same scripted bus the segmentation tests use."""
    plan = make_plan(day, stops=(ROZUPE, TURKI, ("jersika", "Jersika", 56.2465, 26.2415)))
    offset = (day - date(2026, 1, 1)).days * 86400.0
    script = Script().park(600).drive(ROZUPE).park(1500, lifts=2)
    if not skip_turki:
        script.drive(TURKI).park(900, lifts=1)
    script.drive(PREILI).park(1800, charge_kw=40.0).drive(DEPOT).park(600)
    tracker = DayTracker(places=places_of(plan), settings=Settings(), zone=ZoneInfo("Europe/Riga"))
    rows, samples = [], []
    for s in script.samples:
        s = type(s)(**{**{f: getattr(s, f) for f in s.__slots__}, "ts": s.ts + offset})
        rows += [(c.kind, c.row) for c in tracker.step(s)]
        if int(s.mono) % 60 == 0:
            samples.append({"ts": s.ts, "day": day.isoformat(), "soc": s.soc,
                            "speed_kmh": s.speed_kmh, "odometer_km": s.odometer_km})
    rows += [(c.kind, c.row) for c in tracker.checkpoint()]
    store.write_sync(rows, samples)
    store.save_plan_sync(plan)
    store.note_stop(day.isoformat(), "jersika", "skipped", "SOC reserve: dropped by the planner",
                    script.t)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    store = MonitoringStore(tmp_path / "monitoring.sqlite")
    fill(store)
    store.close()
    return tmp_path / "monitoring.sqlite"


def test_day_report_on_the_terminal(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report_cli.main(["report", DAY, "--db", str(db)]) == 0
    out = capsys.readouterr().out
    for text in ("Monitoring 2026-01-01", "Legs", "Visits", "Charging", "Planned stops",
                 "Rožupe", "Turki", "Preiļi public charger", "Līvāni depot",
                 "SOC reserve: dropped by the planner", "stops served 1, shortened 1, skipped 1"):
        assert text in out, text
    print(out)


def test_csv_files_for_spreadsheets(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "csv"
    assert report_cli.main(["report", DAY, "--db", str(db), "--csv", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"{k}_{DAY}.csv" for k in ("activities", "charging", "legs", "services",
                                                 "stops", "summary", "visits")]
    with (out / f"visits_{DAY}.csv").open(encoding="utf-8") as f:
        visits = list(csv.DictReader(f))
    assert [v["place_name"] for v in visits] == [
        "Līvāni depot", "Rožupe", "Turki", "Preiļi public charger", "Līvāni depot"]
    assert float(visits[1]["duration_min"]) == pytest.approx(25.0, abs=0.1)
    with (out / f"summary_{DAY}.csv").open(encoding="utf-8") as f:
        (summary,) = list(csv.DictReader(f))
    assert float(summary["km"]) > 50 and summary["lift_cycles"] == "3"


def count_services(store: MonitoringStore, day: str) -> None:
    """The staff page's tallies at the day's stops: Rožupe 2 notary + 1 social, Turki 3 social;
    Rožupe set up 5 min and served 20."""
    visits = {v["place_id"]: v for v in store.day_records_sync(day)["visit"]}
    for place, counts, seconds in (("rozupe", {"notary": 2, "social": 1},
                                    {"setup": 300.0, "serving": 1200.0}),
                                   ("turki", {"social": 3}, {})):
        store.save_tally(VisitTally(visits[place]["id"], day, place, counts=counts,
                                    activity_s=seconds), ts=0.0)


def test_services_by_type_and_time_by_activity_in_the_day_and_the_month(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    store = MonitoringStore(db)
    count_services(store, DAY)
    store.close()
    out_dir = tmp_path / "csv"
    assert report_cli.main(["report", DAY, "--db", str(db), "--csv", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "Clients served by type (6 in all)" in out
    assert "time by activity: serving 20 min, setup 5 min" in out
    table = out.split("Clients served by type", 1)[1].splitlines()
    header = next(line for line in table if "place" in line)
    rozupe = next(line for line in table if "Rožupe" in line)
    cells = dict(zip([c.strip() for c in header.split("┃")],
                     [c.strip() for c in rozupe.split("│")], strict=True))
    assert (cells["notary"], cells["social"]) == ("2", "1"), rozupe
    with (out_dir / f"summary_{DAY}.csv").open(encoding="utf-8") as f:
        (summary,) = list(csv.DictReader(f))
    assert (summary["clients_served"], summary["services.notary"], summary["services.social"],
            summary["activities_min.serving"]) == ("6", "2", "4", "20.0")
    assert report_cli.main(["report", "--month", "2026-01", "--db", str(db)]) == 0
    month = capsys.readouterr().out
    assert "Clients served by type (6 in all)" in month and "serving 20 min" in month


def test_soc_plot_is_written(db: Path, tmp_path: Path) -> None:
    png = tmp_path / "soc.png"
    assert report_cli.main(["report", DAY, "--db", str(db), "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000


def test_month_report_counts_visits_per_village_against_the_cycle(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = MonitoringStore(tmp_path / "m.sqlite")
    for d in (1, 8, 15):
        fill(store, date(2026, 1, d), skip_turki=d == 8)
    store.close()
    csv_dir = tmp_path / "csv"
    assert report_cli.main(["report", "--month", "2026-01", "--db", str(tmp_path / "m.sqlite"),
                            "--csv", str(csv_dir)]) == 0
    out = capsys.readouterr().out
    assert "3 days in service" in out and "Rožupe" in out
    with (csv_dir / "villages_2026-01.csv").open(encoding="utf-8") as f:
        villages = {v["stop_id"]: v for v in csv.DictReader(f)}
    assert villages["rozupe"]["visits"] == "3" and villages["turki"]["visits"] == "2"
    assert villages["jersika"]["visits"] == "0"
    assert float(villages["rozupe"]["expected"]) == pytest.approx(31 / 7, abs=0.1)


def test_bad_arguments_are_clear_errors(db: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert report_cli.main(["report", "yesterday", "--db", str(db)]) == 1
    assert report_cli.main(["report", "2025-06-01", "--db", str(db)]) == 1
    assert report_cli.main(["report", "--month", "2026-13", "--db", str(db)]) == 1
    assert report_cli.main(["report", DAY, "--db", str(tmp_path / "none.sqlite")]) == 1
    err = capsys.readouterr().err
    assert "not a date" in err and "nothing recorded" in err and "no monitoring database" in err


def test_report_finds_the_database_through_the_config(db: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "busd.toml"
    config.write_text(f'bus_id = "sim-01"\n[monitoring]\ndb = "{db}"\n', encoding="utf-8")
    assert report_cli.main(["report", DAY, "--config", str(config)]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text('bus_id = "sim-01"\n[monitoring]\nmin_visit = 3\n', encoding="utf-8")
    assert report_cli.main(["report", DAY, "--config", str(bad)]) == 2
    assert "monitoring.min_visit" in capsys.readouterr().err


def test_summary_rules() -> None:
    assert expected_visits("weekly", 2026, 2) == 4.0
    assert expected_visits("fortnightly", 2026, 1) == pytest.approx(2.2)
    assert expected_visits("monthly", 2026, 1) == 1.0
    assert expected_visits(None, 2026, 1) is None
    empty = daily_summary(DAY, {})
    assert empty["km"] == 0 and empty["kwh_per_km"] is None and empty["min_soc"] is None
    assert monthly_summary("2026-01", {})["days_in_service"] == 0


def test_planned_stops_are_listed_in_visit_order() -> None:
    # Planned Rožupe, Turki, Jersika; the bus went to Turki first, and skipped Jersika.
    plan = make_plan(stops=(ROZUPE, TURKI, ("jersika", "Jersika", 56.2465, 26.2415)))
    script = Script().park(600).drive(TURKI).park(1500).drive(ROZUPE).park(1500)
    script.drive(DEPOT).park(600)
    tracker = DayTracker(places=places_of(plan), settings=Settings(), zone=ZoneInfo("Europe/Riga"))
    rows: dict[str, list[dict[str, Any]]] = {"visit": [], "leg": []}
    for s in script.samples:
        for c in tracker.step(s):
            if c.row["status"] != "open":
                rows[c.kind].append(c.row)
    plan_stops = [{"stop_id": st.id, "name": st.name, "planned_min": st.planned_min}
                  for st in plan.stops]
    summary = daily_summary(DAY, {**rows, "plan_stops": plan_stops})
    assert [st["stop_id"] for st in summary["stops"]] == ["turki", "rozupe", "jersika"]


def test_switched_off_time_is_reported_as_switched_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from dataclasses import replace

    store = MonitoringStore(tmp_path / "monitoring.sqlite")
    script = Script().park(600)
    script.park(3600, power_kw=0.0)  # BMS asleep, CAN silent while parked: switched off
    script.samples[600:] = [replace(s, power_kw=None, speed_kmh=None, odometer_km=None,
                                    soc=None) for s in script.samples[600:]]
    script.park(600).drive(ROZUPE).park(600)
    tracker = DayTracker(places=places_of(make_plan()), settings=Settings(),
                         zone=ZoneInfo("Europe/Riga"))
    rows = [(c.kind, c.row) for s in script.samples for c in tracker.step(s)]
    store.write_sync(rows + [(c.kind, c.row) for c in tracker.checkpoint()], [])
    store.close()
    assert report_cli.main(["report", DAY, "--db", str(tmp_path / "monitoring.sqlite")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "switched off 60.0 min" in out and "energy data missing 0.0 min" in out


def test_soc_plot_shows_the_reserve_line(db: Path, tmp_path: Path) -> None:
    store = MonitoringStore(db)
    records = store.day_records_sync(DAY)
    store.close()
    labels = report_cli.plot_soc(tmp_path / "soc.png", DAY, records, ZoneInfo("Europe/Riga"),
                                 reserve_pct=15.0)
    assert labels == ["SOC", "reserve 15 %"]
    assert report_cli.main(["report", DAY, "--db", str(db), "--reserve", "20",
                            "--plot", str(tmp_path / "r.png")]) == 0
