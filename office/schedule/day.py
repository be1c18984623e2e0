"""A day's plans for every bus of the schedule, and their files.

Each bus's plan is written as ``DIR/{bus}.json``: exactly the plan ``cmd/plan`` carries and a
plan file holds (:class:`busd.plan.Plan`). A plan that failed its checks is written as
``DIR/{bus}.unsafe.json`` instead, so that no plan ready to send exists for a day that cannot
be served safely; ``DIR/{date}.summary.json`` lists every bus's checks. :func:`unsafe_reason`
tells a sender (``busd office plan send``) that a file it was given is one of those.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from busd.clock import Clock
from busd.errors import ConfigError
from busd.files import write_atomic
from busd.plan import Plan, load_plan
from office.archive import Archive
from office.schedule.energy import bus_energy
from office.schedule.generate import BusDay, bus_day
from office.schedule.model import Schedule
from office.schedule.proposals import planned_make_ups


async def generate_day(schedule: Schedule, day: date, *, archive: Archive | None, clock: Clock,
                       version: int | None = None, temp_c: float | None = None) -> list[BusDay]:
    """Every bus's plan for ``day``. ``archive`` gives the learned models and the confirmed
    make-ups; None: seeded models and no make-ups."""
    make_ups = [] if archive is None else await planned_make_ups(archive, schedule, day)
    pairs = [(m.id, m.point_id) for m in make_ups]
    result: list[BusDay] = []
    for bus in schedule.buses:
        energy = await bus_energy(archive, bus.id, bus.energy, day)
        result.append(bus_day(schedule, bus, day, version=version or int(clock.now()),
                              energy=energy.model, energy_source=energy.source,
                              make_ups=pairs, temp_c=temp_c))
    return result


def write_day(out: Path, day: date, plans: list[BusDay]) -> list[Path]:
    """The plan files and the summary; returns the plan files written."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for bd in plans:
        for stale in (out / f"{bd.bus}.json", out / f"{bd.bus}.unsafe.json"):
            if stale.exists():
                stale.unlink()  # an earlier generation's file must not be sent by mistake
        if bd.plan is None:
            continue
        path = out / (f"{bd.bus}.json" if bd.safe else f"{bd.bus}.unsafe.json")
        write_atomic(path, bd.plan.model_dump_json(indent=2) + "\n")
        written.append(path)
    # The checks without the plans (those are the files), with each plan's version and file.
    summary = [bd.model_dump(mode="json", exclude={"plan"}) | {
        "version": None if bd.plan is None else bd.plan.version,
        "file": None if bd.plan is None else
        (f"{bd.bus}.json" if bd.safe else f"{bd.bus}.unsafe.json")} for bd in plans]
    write_atomic(summary_path(out, day),
                      json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return written


UNSAFE_SUFFIX = ".unsafe.json"


def summary_path(out: Path, day: date) -> Path:
    return out / f"{day.isoformat()}.summary.json"


def unsafe_reason(path: Path, plan: Plan) -> str | None:
    """Why the plan file at ``path`` was flagged unsafe by the generator, or None.

    Flagged: its name ends in ``.unsafe.json``, or the day's summary beside it lists it (by
    file name, or by bus and version) as not safe. A summary that cannot be read says
    nothing: a hand-written plan has none."""
    if path.name.endswith(UNSAFE_SUFFIX):
        return f"{path.name} was flagged unsafe by busd office plan generate"
    summary = summary_path(path.parent, plan.date)
    try:
        entries = json.loads(summary.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(entries, list):
        return None
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        mine = entry.get("file") == path.name or (
            plan.bus is not None and entry.get("bus") == plan.bus
            and entry.get("version") == plan.version)
        if mine and entry.get("safe") is False:
            problems = "; ".join(str(p) for p in entry.get("problems") or [])
            return (f"{summary.name} flags {path.name} unsafe"
                    + (f" ({problems})" if problems else ""))
    return None


@dataclass(frozen=True, slots=True)
class GeneratedPlan:
    """A plan file ready to send, found in a generator's output directory."""

    name: str  # relative to the directory: BUS.json or YYYY-MM-DD/BUS.json
    plan: Plan


def ready_plans(out: Path, *, since: date) -> list[GeneratedPlan]:
    """The plans in ``out`` (one day's, or a month's ``DIR/YYYY-MM-DD/``) for ``since`` and
    later that are ready to send: for a bus, not flagged unsafe (:func:`unsafe_reason`), and
    readable (a broken file is skipped). By day, then bus."""
    found: list[GeneratedPlan] = []
    for path in sorted([*out.glob("*.json"), *out.glob("*/*.json")]):
        if path.name.endswith((UNSAFE_SUFFIX, ".summary.json")):
            continue
        try:
            plan = load_plan(path)
        except ConfigError:
            continue
        if plan.bus is None or plan.date < since or unsafe_reason(path, plan) is not None:
            continue
        found.append(GeneratedPlan(path.relative_to(out).as_posix(), plan))
    found.sort(key=lambda g: (g.plan.date, g.plan.bus or "", g.name))
    return found


def format_day(plans: list[BusDay]) -> str:
    """The generator's summary for the terminal, one bus per block."""
    lines: list[str] = []
    for bd in plans:
        head = f"{bd.date.isoformat()} {bd.bus}: {bd.kind}"
        if bd.plan is None:
            lines.append(f"{head}, nothing planned")
            continue
        flag = "OK" if bd.safe else "UNSAFE"
        lines.append(
            f"{head}, version {bd.plan.version}, {len(bd.plan.stops)} stops, {bd.km:.0f} km, "
            f"back {bd.return_at}, depot SOC {bd.depot_soc:.1f} % "
            f"(needs {bd.threshold_pct:.1f} %, {bd.energy} model, {bd.temp_c:.0f} °C): {flag}")
        for s in bd.stops:
            late = f", {s.late_min:.0f} min late" if s.late_min else ""
            lines.append(f"    {s.arrive}-{s.depart} {s.id:<12} SOC {s.soc_arrive:5.1f} %{late}")
        lines += [f"    ! {p}" for p in bd.problems]
        if bd.make_ups:
            lines.append(f"    make-ups: {', '.join(bd.make_ups)}")
    return "\n".join(lines)
