"""A day on the bus: cold, cold with a charger on the way, warm; stability; office plans."""

from __future__ import annotations

import copy
import random
import tomllib
from collections.abc import Callable
from datetime import date, time
from typing import Any

import pytest

from busd.config import PlannerConfig
from busd.event_catalog import PlanAccepted, PlanChanged, Proposal
from busd.plan import Plan, load_plan, parse_plan
from busd.planner.core import CommandResult, Outgoing, PlannerCore
from busd.planner.projection import Built, Situation
from tests.conftest import REPO
from tests.progress_helpers import serve

PLAN_FILE = REPO / "config" / "plans" / "livani-winter.toml"


@pytest.fixture
def raw() -> dict[str, Any]:
    return tomllib.loads(PLAN_FILE.read_text())


def no_chargers(raw: dict[str, Any]) -> Plan:
    data = copy.deepcopy(raw)
    data["chargers"] = []
    return parse_plan(data)


def at_turki(plan: Plan, soc: float, temp: float = -12.0, *, minutes_in: float = 0.0) -> Situation:
    turki = plan.stop("turki")
    return Situation(plan.at(time(12, 10)) + minutes_in * 60, soc, temp, turki.lat, turki.lon)


def third_stop(plan: Plan, soc: float, temp: float = -12.0
               ) -> tuple[PlannerCore, list[Outgoing]]:
    core = PlannerCore(PlannerConfig(), bus_id="sim-01")
    core.load(plan, plan.at(plan.depot.leave_at))
    serve(core, "rozupe", "rudzati")
    core.visit_started("turki", "stop", at_turki(plan, soc).now)  # the tracker's arrival
    out = core.observe(at_turki(plan, soc, temp))
    return core, out


def safe(core: PlannerCore) -> bool:
    """Whether the projection is safe, read through a call (as :func:`pending`)."""
    return core.projection is not None and core.projection.safe


def pending(core: PlannerCore) -> Proposal | None:
    """``core.pending`` read through a call: mypy would keep what an earlier assert narrowed
    the attribute to, across the calls that change it."""
    return core.pending


def names(out: list[Outgoing]) -> list[str]:
    return [o.name for o in out]


def test_the_shipped_winter_day_is_safe_at_departure() -> None:
    plan = load_plan(PLAN_FILE)
    core = PlannerCore(PlannerConfig(), bus_id="sim-01")
    core.load(plan, 0)
    depot = plan.depot
    out = core.observe(Situation(plan.at(depot.leave_at), 96, -12, depot.lat, depot.lon))
    assert core.projection is not None and core.projection.safe
    assert core.pending is None and names(out) == ["plan"]
    assert [p.id for p in core.projection.points] == [
        "rozupe", "rudzati", "turki", "jersika", "sutri", "livani"
    ]


def test_cold_day_heating_ate_more_than_planned_shortens_or_skips_with_driver_ack(
    raw: dict[str, Any],
) -> None:
    plan = no_chargers(raw)
    core, out = third_stop(plan, soc=56)
    assert core.progress.at == "turki"
    assert core.projection is not None and not core.projection.safe
    proposal = core.pending
    assert proposal is not None and proposal.kind == "reduce" and not proposal.emergency
    kinds = {c.kind for c in proposal.changes}
    assert kinds & {"shorten", "skip"} and kinds <= {"shorten", "skip", "reorder"}
    # the must-serve stop is already served; the lowest-priority stop goes first
    skipped = [c.stop for c in proposal.changes if c.kind == "skip"]
    if skipped:
        assert "sutri" in skipped
    assert proposal.after.safe
    assert names(out) == ["plan_changed", "plan"]
    assert isinstance(out[0].payload, PlanChanged) and out[0].payload.cause == "proposed"
    # reasons in three languages, Latvian for the driver by default
    assert {"lv", "lt", "en"} <= set(proposal.reasons[0].text)
    assert "depo" in proposal.reasons[0].text["lv"]
    # nothing changes until the driver accepts
    assert [i.id for i in core.itinerary] == ["rozupe", "rudzati", "turki", "jersika", "sutri"]
    result, out = core.acknowledge(proposal.id, plan.at(time(12, 12)))
    assert result.accepted and names(out) == ["plan_accepted", "plan"]
    assert isinstance(out[0].payload, PlanAccepted)
    assert out[0].payload.proposal_id == proposal.id
    assert [i.model_dump() for i in core.itinerary] == [
        i.model_dump() for i in proposal.itinerary
    ]
    # the same state again: now safe, no new proposal, acknowledging twice is refused
    out = core.observe(at_turki(plan, 56, minutes_in=2))
    assert pending(core) is None and safe(core)
    again, _ = core.acknowledge(proposal.id, plan.at(time(12, 13)))
    assert not again.accepted and again.status == "accepted_before"


def test_same_day_with_a_charger_on_the_way_proposes_a_charging_stop(raw: dict[str, Any]) -> None:
    plan = parse_plan(raw)
    core, _ = third_stop(plan, soc=56)
    proposal = core.pending
    assert proposal is not None and proposal.kind == "charge"
    charge = [c for c in proposal.changes if c.kind == "charge"]
    assert len(charge) == 1 and charge[0].charger == "preili"
    assert charge[0].kwh and charge[0].kwh > 0
    # charging keeps every remaining stop
    assert not [c for c in proposal.changes if c.kind == "skip"]
    assert proposal.after.safe
    assert any("Preiļi" in r.text["lv"] for r in proposal.reasons)


def test_warm_day_no_change_all_day(raw: dict[str, Any]) -> None:
    plan = parse_plan(raw)
    core = PlannerCore(PlannerConfig(), bus_id="sim-01")
    core.load(plan, 0)
    depot = plan.depot
    out = core.observe(Situation(plan.at(depot.leave_at), 96, 8, depot.lat, depot.lon))
    projection = core.projection
    assert projection is not None and projection.safe
    # follow the projection along the day, at every stop on arrival
    for point in projection.points[:-1]:
        stop = plan.stop(point.id)
        ts = plan.at(depot.leave_at) + (
            __import__("datetime").datetime.fromisoformat(point.eta.replace("Z", "+00:00"))
            .timestamp() - plan.at(depot.leave_at)
        )
        if core.progress.at is not None:
            core.visit_ended(core.progress.at)
        core.visit_started(point.id, "stop", ts)
        out += core.observe(Situation(ts, point.soc_arrive, 8, stop.lat, stop.lon))
        assert core.progress.at == point.id
    assert core.pending is None
    assert "plan_changed" not in names(out[1:])


def test_noisy_readings_near_the_line_do_not_flap(raw: dict[str, Any]) -> None:
    plan = no_chargers(raw)
    core, _ = third_stop(plan, soc=56)
    first = core.pending
    assert first is not None
    rng = random.Random(7)
    events = []
    for k in range(1, 40):
        soc = 56 - 0.02 * k + rng.uniform(-0.4, 0.4)
        events += [o for o in core.observe(at_turki(plan, soc, minutes_in=k * 0.5))
                   if o.kind == "event"]
    assert core.pending is not None and core.pending.id == first.id
    assert events == []


def test_same_state_gives_the_same_proposal(raw: dict[str, Any]) -> None:
    plan = parse_plan(raw)
    a, _ = third_stop(plan, soc=52)
    b, _ = third_stop(plan, soc=52)
    assert a.pending is not None and b.pending is not None
    assert a.pending.model_dump() == b.pending.model_dump()


def test_a_warmer_afternoon_withdraws_the_pending_proposal(raw: dict[str, Any]) -> None:
    plan = no_chargers(raw)
    core, _ = third_stop(plan, soc=60)
    assert core.pending is not None
    out = core.observe(at_turki(plan, 75, temp=5, minutes_in=1))
    assert pending(core) is None
    assert [o.payload.cause for o in out if isinstance(o.payload, PlanChanged)] == ["withdrawn"]


def test_restoring_a_skipped_stop_needs_a_clear_margin(raw: dict[str, Any]) -> None:
    plan = no_chargers(raw)
    core, _ = third_stop(plan, soc=56)
    assert core.pending is not None
    core.acknowledge(core.pending.id, plan.at(time(12, 11)))
    # a little better, but less than restore_margin_pct to spare: stays as accepted
    core.observe(at_turki(plan, 56.5, minutes_in=2))
    assert core.projection is not None
    assert core.projection.depot_margin_pct < PlannerConfig().restore_margin_pct
    assert pending(core) is None
    # much better (charged from a socket, say): offers to serve the skipped stops again
    core.observe(at_turki(plan, 95, minutes_in=3))
    restore = pending(core)
    assert restore is not None and restore.kind == "restore"
    assert core.pending.after.depot_margin_pct >= PlannerConfig().hysteresis_pct - 1e-6


def test_an_offered_restore_stays_while_its_minutes_are_safe_and_is_withdrawn_when_not(
    raw: dict[str, Any],
) -> None:
    plan = no_chargers(raw)
    core, _ = third_stop(plan, soc=56)
    assert core.pending is not None
    core.acknowledge(core.pending.id, plan.at(time(12, 11)))
    # The cut kept the hysteresis above its own line: two points more are a spare to give.
    core.observe(at_turki(plan, 58, minutes_in=3))
    offered = pending(core)
    assert offered is not None and offered.kind == "restore"
    # The spare dips under the restore line, so a search would offer nothing now; but what
    # the offer gives back is still safe: it stays, not withdrawn and offered again later.
    out = core.observe(at_turki(plan, 57, minutes_in=4))
    assert core.projection is not None
    assert core.projection.depot_margin_pct < PlannerConfig().restore_margin_pct
    still = pending(core)
    assert still is not None and still.id == offered.id
    assert "withdrawn" not in [e.payload.cause for e in out if isinstance(e.payload, PlanChanged)]
    # Colder, or the SOC read lower: those minutes are no longer safe, the offer goes.
    out = core.observe(at_turki(plan, 55, minutes_in=5))
    assert pending(core) is None
    assert "withdrawn" in [e.payload.cause for e in out if isinstance(e.payload, PlanChanged)]


def accepted_at_depot(plan: Plan, soc: float, kind: str, *, later_temp: float) -> PlannerCore:
    """Ten minutes before departure at −15 °C the planner proposes ``kind``; the driver
    accepts, and four minutes later, the SOC the same, it is ``later_temp`` outside."""
    core = PlannerCore(PlannerConfig(), bus_id="sim-01")
    before = plan.at(plan.depot.leave_at) - 600
    core.load(plan, before)
    depot = plan.depot
    core.observe(Situation(before, soc, -15.0, depot.lat, depot.lon))
    first = pending(core)
    assert first is not None and first.kind == kind
    core.acknowledge(first.id, before + 60)
    core.observe(Situation(before + 240, soc, later_temp, depot.lat, depot.lon))
    return core


@pytest.mark.parametrize("soc", [63.0, 72.0, 81.0])
def test_a_cut_at_the_depot_is_not_followed_by_a_restore_or_another_cut(
    raw: dict[str, Any], soc: float,
) -> None:
    """The margin grows with the energy still to spend, so a cut lowers the line: a cut
    searched at the line of the plan it replaced left four to six points spare, and the
    next projection, the SOC the same, offered minutes back (or cut again). The cut holds
    the hysteresis above its own line, and no more."""
    cfg = PlannerConfig()
    core = accepted_at_depot(no_chargers(raw), soc, "reduce", later_temp=-15.0)
    assert pending(core) is None
    assert core.projection is not None and core.projection.safe
    assert cfg.hysteresis_pct - 0.5 <= core.projection.depot_margin_pct < cfg.restore_margin_pct


@pytest.mark.parametrize(("soc", "warmer"), [(88.0, -1.0), (90.0, -3.0)])
def test_a_charging_stop_the_day_no_longer_needs_is_dropped(
    raw: dict[str, Any], soc: float, warmer: float,
) -> None:
    """A charge proposed for a cold morning; it turns milder, and without the charge the day
    keeps the hysteresis above its line. Kept, it sends the bus to Preiļi and back for
    nothing (the spare is still under the restore line: no stop has minutes to get back).
    The planner proposes to drop it."""
    plan = parse_plan(raw)
    cfg = PlannerConfig()
    core = accepted_at_depot(plan, soc, "charge", later_temp=warmer)
    assert core.projection is not None
    assert core.projection.depot_margin_pct < cfg.restore_margin_pct
    drop = pending(core)
    assert drop is not None and drop.kind == "restore"
    assert [c.kind for c in drop.changes] == ["drop_charge"]
    assert drop.after.depot_soc - drop.after.threshold_pct >= cfg.hysteresis_pct - 0.5
    core.acknowledge(drop.id, plan.at(plan.depot.leave_at))
    assert [i.kind for i in core.itinerary] == ["stop"] * len(plan.stops)


def test_no_safe_plan_says_so_and_sends_the_bus_to_the_nearest_charger_or_depot(
    raw: dict[str, Any],
) -> None:
    plan = parse_plan(raw)
    core, _out = third_stop(plan, soc=30)
    proposal = core.pending
    assert proposal is not None and proposal.emergency and proposal.kind == "emergency"
    go = [c for c in proposal.changes if c.kind == "go_to"]
    assert go and go[0].charger in (None, "preili")
    assert proposal.reasons[0].code.startswith("emergency_")
    assert "ĀRKĀRTAS SITUĀCIJA" in proposal.reasons[0].text["lv"]


# --- plans from the office (cmd/plan) ---------------------------------------------------


def office(core: PlannerCore, plan_date: date, data: dict[str, Any]
           ) -> tuple[CommandResult, list[Outgoing]]:
    return core.replace_plan(data, today=plan_date, now=0)


@pytest.mark.parametrize(
    ("edit", "key", "reason"),
    [
        (lambda d: d["stops"][1].update(window={"earliest": "08:10:00", "latest": "09:00:00"}),
         "(plan)", "overlap"),
        (lambda d: d.update(charging=[{"charger": "riga", "after": "turki", "minutes": 30}]),
         "(plan)", "unknown charger 'riga'"),
        (lambda d: d["stops"][0].update(planned_min=-30), "stops.0.planned_min", "greater than 0"),
        (lambda d: d["stops"][2].update(min_min=-5), "stops.2.min_min", "greater than or equal"),
        (lambda d: d.update(date="2026-12-13"), "date", "expired: plan is for 2026-12-13, "
         "today is 2026-12-14"),
        (lambda d: d.update(bus="sim-02"), "bus", "this is 'sim-01'"),
        (lambda d: d.update(version=1), "version", "not newer than the current 1"),
    ],
)
def test_bad_plans_from_the_office_are_rejected_with_reasons(
    raw: dict[str, Any], edit: Callable[[dict[str, Any]], None], key: str, reason: str,
) -> None:
    plan = parse_plan(raw)
    core = PlannerCore(PlannerConfig(), bus_id="sim-01")
    core.load(plan, 0)
    data = copy.deepcopy(raw)
    data["version"] = 2
    edit(data)
    result, out = office(core, plan.date, data)
    assert not result.accepted and out == []
    assert any(k == key and reason in r for k, r in result.problems), result.problems
    assert core.plan is plan


def test_a_good_plan_from_the_office_replaces_the_day(raw: dict[str, Any]) -> None:
    plan = parse_plan(raw)
    core = PlannerCore(PlannerConfig(), bus_id="sim-01")
    core.load(plan, 0)
    data = copy.deepcopy(raw)
    data.update(version=2, charging=[{"charger": "preili", "after": "turki", "minutes": 40}])
    result, out = office(core, plan.date, data)
    assert result.accepted and result.problems == []
    assert core.plan is not None and core.plan.version == 2
    assert [i.id for i in core.itinerary][3] == "preili"
    assert out[0].name == "plan_changed" and isinstance(out[0].payload, PlanChanged)
    assert out[0].payload.cause == "office"


def test_garbage_from_the_office_is_rejected(raw: dict[str, Any]) -> None:
    core = PlannerCore(PlannerConfig(), bus_id="sim-01")
    result, _ = core.replace_plan({"hello": 1}, today=parse_plan(raw).date, now=0)
    assert not result.accepted and result.problems
    result, _ = core.replace_plan(["not", "a", "plan"], today=parse_plan(raw).date, now=0)
    assert not result.accepted


def test_a_departure_announced_during_a_projection_counts_from_the_next_one(
    raw: dict[str, Any],
) -> None:
    """observe() runs in a worker thread while the tracker's events update the progress
    on the loop: one observation works with one set of facts from start to end."""
    plan = no_chargers(raw)
    clean, _ = third_stop(plan, soc=56)
    core = PlannerCore(PlannerConfig(), bus_id="sim-01")
    core.load(plan, plan.at(plan.depot.leave_at))
    serve(core, "rozupe", "rudzati")
    core.visit_started("turki", "stop", at_turki(plan, 56).now)
    real_build = core._build

    def build_then_leave(sit: Situation) -> Built:
        built = real_build(sit)
        if core.progress.at == "turki":
            core.visit_ended("turki")  # the tracker's event lands meanwhile
        return built

    core._build = build_then_leave  # type: ignore[method-assign]
    core.observe(at_turki(plan, 56))
    assert core.pending is not None and clean.pending is not None
    assert core.pending.itinerary == clean.pending.itinerary
    assert core.progress.done == {"rozupe", "rudzati", "turki"}  # and it is not lost
