"""``busd report``: the monitoring log on the terminal, as CSV, as a SOC plot.

Hook into the CLI with :func:`add_report_parser`; the command reads the store
named by the config (``monitoring.db``, default ``data_dir/monitoring.sqlite``)
or by ``--db``.

* ``busd report [DATE]`` — the day's legs, visits, charging and totals.
* ``busd report --month YYYY-MM`` — visits per village against the plan's cycle.
* ``--csv DIR`` writes ``legs_DATE.csv``, ``visits_DATE.csv``,
  ``charging_DATE.csv``, ``stops_DATE.csv`` and ``summary_DATE.csv``
  (or ``villages_MONTH.csv`` and ``summary_MONTH.csv``).
* ``--plot FILE.png`` draws SOC against time with the visits marked (needs matplotlib).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from busd.config import CONFIG_ENV, load_config
from busd.errors import ConfigError
from busd.monitoring.summary import daily_summary, monthly_summary
from telemetry.monitoring_store import MonitoringStore, StoreError

if TYPE_CHECKING:  # rich is imported when a report is printed: `busd run` registers this
    from rich.console import Console  # parser, and the daemon has no use for rich

EXIT_OK, EXIT_ERROR, EXIT_CONFIG = 0, 1, 2
Row = dict[str, Any]


def add_report_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add ``report`` to the ``busd`` sub-commands (``parser.add_subparsers()``)."""
    report = subparsers.add_parser("report", help="the monitoring log: a day, or a month")
    report.add_argument("date", nargs="?", help="the day, YYYY-MM-DD (default: today)")
    report.add_argument("--month", help="a month, YYYY-MM: coverage per village and totals")
    report.add_argument("--config", help=f"config file (default: ${CONFIG_ENV})")
    report.add_argument("--db", help="monitoring database (default: from the config)")
    report.add_argument("--tz", default=None, help="time zone for times shown (default: config)")
    report.add_argument("--csv", metavar="DIR", help="also write CSV files into DIR")
    report.add_argument("--plot", metavar="FILE.png", help="also plot SOC against time")
    report.add_argument("--reserve", type=float, metavar="PCT",
                        help="SOC reserve line on the plot (default: planner.reserve_pct)")
    report.set_defaults(func=cmd_report)
    return report


def cmd_report(args: argparse.Namespace, *, console: Console | None = None) -> int:
    from rich.console import Console

    console = console or Console(width=140)
    err = Console(stderr=True)
    try:
        db_path, zone_name, reserve = _locate(args)
    except ConfigError as error:
        err.print(f"busd report: invalid configuration: {error}")
        return EXIT_CONFIG
    if not Path(db_path).exists():
        err.print(f"busd report: no monitoring database at {db_path}")
        return EXIT_ERROR
    zone = ZoneInfo(args.tz or zone_name)
    try:
        store = MonitoringStore(db_path)
    except StoreError as error:
        err.print(f"busd report: {error}")
        return EXIT_ERROR
    try:
        if args.month:
            return _month(args, store, console, err)
        day = args.date or datetime.now(zone).date().isoformat()
        try:
            date.fromisoformat(day)
        except ValueError:
            err.print(f"busd report: {day!r} is not a date (YYYY-MM-DD)")
            return EXIT_ERROR
        return _day(args, store, day, zone, console, err,
                    reserve=args.reserve if args.reserve is not None else reserve)
    finally:
        store.close()


def _locate(args: argparse.Namespace) -> tuple[Path, str, float | None]:
    config_path = args.config or os.environ.get(CONFIG_ENV)
    if config_path is None:
        if args.db is None:
            raise ConfigError([("--config", "give --config or --db")])
        return Path(args.db), "Europe/Riga", None
    config = load_config(config_path)
    return (Path(args.db) if args.db else config.monitoring_db, config.monitoring.timezone,
            config.planner.reserve_pct)


def _day(args: argparse.Namespace, store: MonitoringStore, day: str, zone: ZoneInfo,
         console: Console, err: Console, *, reserve: float | None = None) -> int:
    records = store.day_records_sync(day)
    stored = store.summary(day)
    alerts = int(stored["alerts"]) if stored is not None else 0
    summary = daily_summary(day, records, alerts=alerts)
    if not any(records[k] for k in ("leg", "visit", "charge")):
        err.print(f"busd report: nothing recorded on {day}")
        return EXIT_ERROR
    print_day(console, summary, records, zone)
    if args.csv:
        write_day_csv(Path(args.csv), day, summary, records)
    if args.plot:
        try:
            plot_soc(Path(args.plot), day, records, zone, reserve_pct=reserve)
        except ImportError:
            err.print("busd report: --plot needs matplotlib (pip install matplotlib)")
            return EXIT_ERROR
    return EXIT_OK


def _month(args: argparse.Namespace, store: MonitoringStore, console: Console,
           err: Console) -> int:
    try:
        datetime.strptime(args.month, "%Y-%m")
    except ValueError:
        err.print(f"busd report: {args.month!r} is not a month (YYYY-MM)")
        return EXIT_ERROR
    summary = monthly_summary(args.month, store.month_records(args.month))
    print_month(console, summary)
    if args.csv:
        out = Path(args.csv)
        out.mkdir(parents=True, exist_ok=True)
        _write_csv(out / f"villages_{args.month}.csv", summary["villages"])
        _write_csv(out / f"summary_{args.month}.csv",
                   [{k: v for k, v in summary.items() if k != "villages"}])
    return EXIT_OK


# --- terminal ----------------------------------------------------------------------


def _t(ts: float | None, zone: ZoneInfo) -> str:
    return "…" if ts is None else datetime.fromtimestamp(ts, zone).strftime("%H:%M")


def _n(value: Any, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_day(console: Console, s: Row, records: dict[str, list[Row]], zone: ZoneInfo) -> None:
    from rich.table import Table

    console.print(f"[bold]Monitoring {s['day']}[/bold]  ({zone.key})")
    legs = Table(title="Legs", title_justify="left")
    for col in ("from", "to", "start", "end", "km", "kWh out", "regen", "kWh/km", "km/h",
                "°C", "SOC used", "gap s"):
        legs.add_column(col, justify="left" if col in ("from", "to") else "right")
    for r in records["leg"]:
        legs.add_row(r.get("from_name") or "-", r.get("to_name") or "…", _t(r["start_ts"], zone),
                     _t(r.get("end_ts"), zone), _n(r.get("km"), 2), _n(r.get("out_kwh"), 2),
                     _n(r.get("regen_kwh"), 2), _n(r.get("kwh_per_km"), 3),
                     _n(r.get("avg_kmh")), _n(r.get("temp_c")), _n(r.get("soc_used")),
                     _n(r.get("gap_s"), 0))
    console.print(legs)
    visits = Table(title="Visits", title_justify="left")
    for col in ("place", "kind", "arrival", "departure", "min", "kWh on site", "lift",
                "SOC arr.", "SOC dep.", "status"):
        visits.add_column(col, justify="left" if col in ("place", "kind", "status") else "right")
    for r in records["visit"]:
        visits.add_row(r.get("place_name") or "-", r.get("place_kind") or "",
                       _t(r["start_ts"], zone), _t(r.get("end_ts"), zone),
                       _n(r.get("duration_min")), _n(r.get("out_kwh"), 2),
                       str(r.get("lift_cycles") or 0), _n(r.get("soc_start")),
                       _n(r.get("soc_end")), r["status"])
    console.print(visits)
    if records["charge"]:
        charges = Table(title="Charging", title_justify="left")
        for col in ("where", "start", "end", "min", "kWh added", "peak kW", "SOC before",
                    "SOC after"):
            charges.add_column(col, justify="left" if col == "where" else "right")
        for r in records["charge"]:
            charges.add_row(r.get("place_name") or "-", _t(r["start_ts"], zone),
                            _t(r.get("end_ts"), zone), _n(r.get("duration_min")),
                            _n(r.get("energy_added_kwh"), 2), _n(r.get("peak_kw")),
                            _n(r.get("soc_start")), _n(r.get("soc_end")))
        console.print(charges)
    print_services(console, s, records)
    if s["stops"]:
        stops = Table(title="Planned stops", title_justify="left")
        for col in ("stop", "status", "planned min", "min on site", "reason"):
            stops.add_column(col, justify="right" if "min" in col else "left")
        for st in s["stops"]:
            stops.add_row(st["name"], st["status"], _n(st["planned_min"], 0), _n(st["minutes"]),
                          st["reason"] or "")
        console.print(stops)
    console.print(
        f"[bold]Day[/bold]: {s['km']:.1f} km, {s['energy_net_kwh']:.1f} kWh net "
        f"({s['energy_out_kwh']:.1f} out, {s['energy_regen_kwh']:.1f} regen, "
        f"{s['energy_charged_kwh']:.1f} charged), {_n(s['kwh_per_km'], 3)} kWh/km "
        f"(driving {_n(s['driving_kwh_per_km'], 3)})\n"
        f"time: driving {s['driving_min']:.0f} min, on site {s['on_site_min']:.0f} min, "
        f"charging {s['charging_min']:.0f} min; stops served {s['stops_served']}, "
        f"shortened {s['stops_shortened']}, skipped {s['stops_skipped']}, "
        f"unplanned {s['unplanned_stops']}\n"
        f"min SOC {_n(s['min_soc'])} %, lift cycles {s['lift_cycles']}, alerts {s['alerts']}, "
        f"switched off {s.get('switched_off_min') or 0.0:.1f} min, "
        f"energy data missing {s['energy_gap_min']:.1f} min"
        + (f", {s['open_records']} record(s) still open" if s["open_records"] else "")
    )


def print_month(console: Console, s: Row) -> None:
    from rich.table import Table

    console.print(f"[bold]Monitoring {s['month']}[/bold]: {s['days_in_service']} days in service")
    table = Table(title="Villages", title_justify="left")
    for col in ("village", "cycle", "visits", "days", "expected", "coverage", "hours on site"):
        table.add_column(col, justify="left" if col in ("village", "cycle") else "right")
    for v in s["villages"]:
        table.add_row(v["name"] or v["stop_id"], v["cycle"] or "-", str(v["visits"]),
                      str(v["days_visited"]), _n(v["expected"]),
                      "-" if v["coverage"] is None else f"{v['coverage'] * 100:.0f} %",
                      _n(v["minutes"] / 60.0))
    console.print(table)
    console.print(
        f"{s['km']:.1f} km, {s['energy_net_kwh']:.1f} kWh net, {_n(s['kwh_per_km'], 3)} kWh/km; "
        f"driving {s['driving_h']} h, on site {s['on_site_h']} h, charging {s['charging_h']} h; "
        f"lift cycles {s['lift_cycles']}, alerts {s['alerts']}, "
        f"unplanned stops {s['unplanned_stops']}"
    )
    print_services(console, s, None)


def print_services(console: Console, s: Row, records: dict[str, list[Row]] | None) -> None:
    """Clients served per service type (per visit, with the day's records) and minutes per
    activity: the staff page's tallies."""
    from rich.table import Table

    if not s.get("services") and not s.get("activities_min"):
        return
    types = sorted(s.get("services") or {})
    # The title on its own line: a narrow table would wrap it.
    console.print(f"[italic]Clients served by type ({s.get('clients_served', 0)} in all)[/italic]")
    table = Table()
    table.add_column("place")
    for name in types:
        table.add_column(name, justify="right")
    if records is not None:
        names = {v["id"]: v.get("place_name") or "-" for v in records["visit"]}
        by_visit: dict[str, dict[str, int]] = {}
        for row in records.get("services", ()):
            by_visit.setdefault(row["visit_id"], {})[row["service"]] = int(row["count"] or 0)
        for visit_id, counts in by_visit.items():
            table.add_row(names.get(visit_id, visit_id), *(str(counts.get(t, 0)) for t in types))
    table.add_row("[bold]all[/bold]", *(str(s["services"][t]) for t in types))
    console.print(table)
    if s.get("activities_min"):
        console.print("time by activity: " + ", ".join(
            f"{name} {minutes:.0f} min" for name, minutes in s["activities_min"].items()))


# --- CSV and plot ------------------------------------------------------------------


def _flat(row: Row) -> Row:
    """A summary row for CSV: each per-type or per-activity figure its own column."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def _write_csv(path: Path, rows: list[Row]) -> None:
    rows = [_flat(row) for row in rows]
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def write_day_csv(out: Path, day: str, summary: Row, records: dict[str, list[Row]]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = {
        f"legs_{day}.csv": records["leg"],
        f"visits_{day}.csv": records["visit"],
        f"charging_{day}.csv": records["charge"],
        f"stops_{day}.csv": summary["stops"],
        f"services_{day}.csv": records.get("services", []),
        f"activities_{day}.csv": records.get("activities", []),
        f"summary_{day}.csv": [{k: v for k, v in summary.items() if k != "stops"}],
    }
    for name, rows in files.items():
        _write_csv(out / name, rows)
    return [out / name for name in files]


def plot_soc(path: Path, day: str, records: dict[str, list[Row]], zone: ZoneInfo, *,
             reserve_pct: float | None = None) -> list[str]:
    """Write the plot; returns the labels of the lines drawn (SOC, the reserve)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    samples = records["samples"]
    fig, ax = plt.subplots(figsize=(11, 4.5))
    def num(ts: float) -> float:
        # matplotlib.dates has no annotations (no stub beside it), unlike most of matplotlib
        return float(mdates.date2num(datetime.fromtimestamp(ts, zone)))  # type: ignore[no-untyped-call]

    times = [num(s["ts"]) for s in samples]
    ax.plot(times, [s["soc"] for s in samples], color="tab:blue", label="SOC")
    for v in records["visit"]:
        if v.get("place_kind") == "depot":
            continue
        start, end = num(v["start_ts"]), num(v.get("end_ts") or v["updated_ts"])
        ax.axvspan(start, end, color="tab:orange", alpha=0.2)
        ax.annotate(v.get("place_name") or "", (start, 1.0), xycoords=("data", "axes fraction"),
                    rotation=90, va="top", fontsize=8)
    for c in records["charge"]:
        start, end = num(c["start_ts"]), num(c.get("end_ts") or c["updated_ts"])
        ax.axvspan(start, end, color="tab:green", alpha=0.25)
    curves: dict[str, list[Row]] = {}
    for point in records.get("projections", []):
        curves.setdefault(point["proposal_id"], []).append(point)
    for n, points in enumerate(curves.values(), start=1):
        accepted = datetime.fromtimestamp(points[0]["accepted_ts"], zone).strftime("%H:%M")
        ax.plot([num(p["ts"]) for p in points], [p["soc"] for p in points], linestyle=":",
                marker=".", label=f"plan accepted {accepted} (projected)", color=f"C{n + 2}")
    if reserve_pct is not None:
        ax.axhline(reserve_pct, color="tab:red", linestyle="--", linewidth=1,
                   label=f"reserve {reserve_pct:g} %")
    ax.legend(loc="lower left", fontsize=8)
    ax.set_ylabel("SOC %")
    ax.set_ylim(0, 100)
    ax.set_title(f"SOC {day} (shaded: on site; green: charging)")
    # matplotlib.dates has no annotations (no stub beside it), unlike most of matplotlib
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=zone))  # type: ignore[no-untyped-call]
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    labels = [str(line.get_label()) for line in ax.get_lines()]
    plt.close(fig)
    return labels


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry until the lead hooks the parser into ``busd``."""
    parser = argparse.ArgumentParser(prog="busd")
    sub = parser.add_subparsers(dest="command", required=True)
    add_report_parser(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
