"""The planner's decisions, without I/O: what to propose, when, and what to publish.

:class:`PlannerCore` takes observations (time, SOC, temperature, position) and
commands (acknowledge, replace the plan) and returns :class:`Outgoing`
messages; the component (busd.planner.component) does the waiting and the
publishing. Same inputs, same outputs: nothing here reads a clock or a random
source.

Stability (the documented hysteresis, ``hysteresis_pct`` = H):

- The search runs only when the active itinerary is unsafe (projected SOC
  below reserve + margin somewhere), or when it has been reduced (stops
  skipped or shortened, a charge added) and the depot is projected at least
  ``restore_margin_pct`` above the line. Every proposal is searched with the
  line raised by H (falling back to the plain line only when nothing is safe
  with the headroom), so neither a reduction nor a restoration is undone by
  the next few readings.
- A pending proposal is kept while the new best has the same shape (stops,
  minutes, charger); it is replaced only when it has become unsafe, the new
  best serves more, or the new best's depot SOC differs by H or more.
- A pending proposal is withdrawn only when the active itinerary is safe by H; a pending
  restoration only when the minutes it gives back are no longer safe.
- On the road, a proposal that leaves the place ahead as it is (neither cut nor
  skipped, no charger put before it) waits for the arrival there: the leg is driven
  either way, and the arrival's projection knows what it cost. ``proposal_at`` names
  that place meanwhile. An emergency is never held.
- Proposal ids hash the plan version and the itineraries before and after,
  so the same situation always yields the same proposal.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

import structlog
from pydantic import BaseModel, ConfigDict

from busd.config import PlannerConfig
from busd.errors import ConfigError
from busd.event_catalog import PlanAccepted, PlanChanged, PlanDocument
from busd.plan import Plan, is_future, parse_plan, validate_for_bus
from busd.planner.energy import EnergyModel
from busd.planner.model import Evaluation, evaluate
from busd.planner.projection import (
    Built,
    Item,
    Progress,
    Situation,
    build,
    initial_itinerary,
    itinerary_of,
    kwh_to_spend,
    service_elapsed_min,
)
from busd.planner.proposal import (
    ProjectionDoc,
    Proposal,
    make_proposal,
    projection_doc,
    proposal_id,
    shape,
)
from busd.planner.search import SearchStats, best_plan

log = structlog.get_logger("busd.planner")

_HISTORY = 32
_PUBLISH_STEP_PCT = 1.0  # republish the retained plan when the depot SOC moves this much
# A line that moves less than this (SOC points) is the same line: no second search.
_LINE_SHIFT_MIN = 0.2
_LINE_HALVINGS = 3  # a cut's line to within an eighth of its move
# A proposal is held on the road this long at most: an arrival the tracker missed (a stop
# off its usual spot) must not hold a cut all day.
_HOLD_MAX_S = 3600.0


@dataclass(frozen=True)
class Outgoing:
    """A message for the sinks: the retained plan document, or an event."""

    kind: Literal["plan", "event"]
    name: str  # "plan", or the event kind
    payload: PlanChanged | PlanAccepted | PlanDocument


AckStatus = Literal["accepted", "unknown", "superseded", "withdrawn", "accepted_before"]


class AckResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    accepted: bool
    proposal_id: str
    status: AckStatus
    detail: str = ""


class CommandResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    accepted: bool
    problems: list[tuple[str, str]] = []
    scheduled: date | None = None  # accepted for a later day: kept until that day


class PlannerCore:
    def __init__(
        self, config: PlannerConfig, *, bus_id: str, energy: EnergyModel | None = None
    ) -> None:
        self.cfg = config
        self.bus_id = bus_id
        self.energy = energy or EnergyModel(config)
        self.plan: Plan | None = None
        self.itinerary: tuple[Item, ...] = ()
        # The tracker's word, updated on the loop as its events come (visit_started/ended).
        self.progress = Progress()
        # What one observation works with from start to end: observe() runs in a worker
        # thread while the tracker's events may update ``progress`` on the loop.
        self._seen = self.progress
        self.pending: Proposal | None = None
        # A proposal held on the road until the bus reaches this place (see _can_wait): the
        # driver's display says a change of plan comes there, while the band shows red.
        self.proposal_at: str | None = None
        self._held_since: float | None = None  # when the proposal held now was first held
        # Office plans for later days, kept until their day (the component keeps them on disk).
        self.scheduled: dict[date, Plan] = {}
        self.projection: ProjectionDoc | None = None
        self.last_search: SearchStats | None = None
        # proposal id -> final status
        self._history: OrderedDict[str, AckStatus] = OrderedDict()
        self._published_depot_soc: float | None = None

    # --- commands ------------------------------------------------------------------

    def load(
        self, plan: Plan, now: float, *, cause: Literal["file", "office"] = "file"
    ) -> list[Outgoing]:
        """Start (or restart) the day with ``plan``."""
        out: list[Outgoing] = []
        if self.pending is not None:
            out += self._drop_pending("superseded", now)
        # Where the bus stands is the tracker's word and stays true whatever the plan; a
        # new day has nothing served yet; "at" is a place of the new itinerary or nothing.
        done = self.progress.done
        if self.plan is not None and self.plan.date != plan.date:
            done = frozenset()
        self.energy.start_day(plan.date)  # today's lessons start afresh on a new day
        self.plan = plan
        self.itinerary = initial_itinerary(plan)
        at = self.progress.at
        if at not in {i.id for i in self.itinerary} - done:
            at = None
        self.progress = Progress(done, at, self.progress.arrived if at else None,
                                 self.progress.place, self.progress.on_road)
        self.projection = None
        self.proposal_at = None
        self._published_depot_soc = None
        log.info("plan_loaded", version=plan.version, stops=len(plan.stops), cause=cause)
        out.append(self._event(PlanChanged(cause=cause, version=plan.version, plan=plan)))
        out.append(self._plan_message(now))
        return out

    def replace_plan(
        self, data: object, *, now: float, today: date | None = None
    ) -> tuple[CommandResult, list[Outgoing]]:
        """A plan from the office (``cmd/plan``): validated, then it replaces the day's.

        ``today`` defaults to the date at ``now`` in the new plan's own time zone, as
        the command dispatcher reckons it (:func:`busd.plan.day_problem`).
        """
        try:
            plan = data if isinstance(data, Plan) else parse_plan(data)
        except ConfigError as err:
            return CommandResult(accepted=False, problems=err.problems), []
        today = plan.local_date(now) if today is None else today
        # Versions increase per day: the plan this one would replace is the same day's.
        same_day = self.scheduled.get(plan.date) if is_future(plan, today) else self.plan
        current = same_day.version if same_day is not None and same_day.date == plan.date \
            else None
        problems = validate_for_bus(plan, self.bus_id, today, current)
        if problems:
            return CommandResult(accepted=False, problems=problems), []
        if is_future(plan, today):
            self.scheduled[plan.date] = plan
            log.info("plan_scheduled", version=plan.version, day=plan.date.isoformat())
            return CommandResult(accepted=True, scheduled=plan.date), []
        return CommandResult(accepted=True), self.load(plan, now, cause="office")

    def take_scheduled(self, today: date) -> Plan | None:
        """The office plan kept for ``today``, if one waits (it is the day's from now on);
        plans kept for days that have passed are dropped."""
        for day in [d for d in self.scheduled if d < today]:
            del self.scheduled[day]
        return self.scheduled.pop(today, None)

    # --- the tracker's word (busd.monitoring.tracker owns arrival, departure, served) ---

    def visit_started(self, place_id: str | None, place_kind: str | None, start: float) -> None:
        """The tracker says the bus stands at ``place_id`` since ``start`` (epoch s).

        A stop or charger of the itinerary not yet served is "at": its served minutes
        run from ``start``. Any place of the plan (the depot, a skipped stop) tells the
        projection where the bus is; an unplanned stop neither.
        """
        place = place_id if place_kind in ("depot", "stop", "charger") else None
        at = place if place_kind in ("stop", "charger") else None
        if self.plan is not None and at not in {i.id for i in self.itinerary} - self.progress.done:
            at = None  # a skipped or served stop: the bus is there, but it is not the visit
        self.progress = Progress(self.progress.done, at, start if at else None, place)
        log.info("place_reached", place=place_id, kind=place_kind, at=at is not None)

    def visit_ended(self, place_id: str | None) -> None:
        """The tracker says the bus left ``place_id``: the stop or charger it was at is served."""
        done = self.progress.done
        if place_id is not None and place_id == self.progress.at:
            done = done | {place_id}
        self.progress = Progress(done, on_road=True)
        log.info("place_left", place=place_id)

    def acknowledge(self, pid: str, now: float) -> tuple[AckResult, list[Outgoing]]:
        """The driver accepts proposal ``pid``."""
        if self.pending is not None and self.pending.id == pid:
            proposal = self.pending
            self.pending = None
            self.itinerary = tuple(proposal.itinerary)
            self._remember(pid, "accepted_before")
            log.info("plan_accepted", proposal=pid, kind=proposal.kind)
            out = [
                self._event(PlanAccepted(
                    proposal_id=pid, proposal_kind=proposal.kind, changes=proposal.changes,
                    itinerary=proposal.itinerary, reasons=proposal.reasons,
                )),
                self._plan_message(now),
            ]
            return AckResult(accepted=True, proposal_id=pid, status="accepted"), out
        status = self._history.get(pid)
        if status is None:
            return AckResult(
                accepted=False, proposal_id=pid, status="unknown",
                detail="no such proposal (it may be from before a restart)",
            ), []
        return AckResult(
            accepted=False, proposal_id=pid, status=status,
            detail=f"proposal is {status.replace('_', ' ')}",
        ), []

    # --- observations ------------------------------------------------------------------

    def observe(self, sit: Situation) -> list[Outgoing]:
        """A new reading: project, and propose if needed (progress is the tracker's)."""
        if self.plan is None:
            return []
        self._seen = self.progress  # one reference read: the same facts all through
        out: list[Outgoing] = []
        built = self._build(sit)
        active = built.project()
        itinerary = self._charge_as_projected(built, active, sit.now)
        lengthened = itinerary != self.itinerary  # the driver must see the new length
        self.itinerary = itinerary
        self.projection = projection_doc(built, active, sit.now)
        candidate = self._candidate(built, active, sit)
        held_before, self.proposal_at = self.proposal_at, None
        if self.pending is not None:
            out += self._revise_pending(built, active, candidate, sit)
        elif candidate is not None and self._can_wait(candidate, sit.now):
            self.proposal_at = self._place_ahead()
            self._held_since = sit.now if self._held_since is None else self._held_since
        elif candidate is not None:
            out += self._propose(candidate, sit.now)
        if self.proposal_at is None:
            self._held_since = None
        depot = self.projection.depot_soc
        if not out and (
            lengthened
            or self.proposal_at != held_before  # the office sees where a change will come
            or self._published_depot_soc is None
            or abs(depot - self._published_depot_soc) >= _PUBLISH_STEP_PCT
        ):
            out.append(self._plan_message(sit.now))
        return out

    # --- internals -----------------------------------------------------------------------

    def _build(self, sit: Situation) -> Built:
        assert self.plan is not None
        return build(self.plan, self.itinerary, self._seen, sit, self.energy, self.cfg)

    def _charge_as_projected(
        self, built: Built, active: Evaluation, now: float
    ) -> tuple[Item, ...]:
        """The itinerary with each charging stop as long as the projection now needs it.

        A charge is proposed for what the day needed then; as the day teaches the model
        (and the SOC on arrival is known), the driver is told to charge for what it needs
        now, so the bus comes home where the projection says rather than wherever an old
        estimate left it. The length is not part of a proposal's shape: no proposal.
        """
        inst = built.instance
        needed = {
            built.node_ids[p.node]: p.minutes for p in active.points[:-1]
            if inst.is_charger(p.node)
        }
        if not needed:
            return self.itinerary
        elapsed = self._elapsed(now)
        items = []
        for item in self.itinerary:
            if item.kind == "charge" and item.id in needed and item.id not in self._seen.done:
                here = item.id == self._seen.at
                minutes = needed[item.id] + (elapsed if here else 0.0)
                # Plugged in, the charge only lengthens: the estimate wavers with each reading
                # of the charger's power, and the driver unplugs at the first dip.
                if here:
                    minutes = max(minutes, item.minutes)
                if abs(minutes - item.minutes) >= 1.0:
                    item = Item(kind="charge", id=item.id, minutes=round(minutes, 1))
            items.append(item)
        return tuple(items)

    def _elapsed(self, now: float) -> float:
        assert self.plan is not None
        return service_elapsed_min(self.plan, self._seen, now)

    def _reduced(self) -> bool:
        assert self.plan is not None
        planned = {s.id: s.planned_min for s in self.plan.stops}
        served = {i.id: i.minutes for i in self.itinerary if i.kind == "stop"}
        if any(i.kind == "charge" for i in self.itinerary if i.id not in self._seen.done):
            return True
        return any(
            sid not in self._seen.done and served.get(sid, 0.0) < m - 0.5
            for sid, m in planned.items()
        )

    def _candidate(self, built: Built, active: Evaluation, sit: Situation) -> Proposal | None:
        """The proposal the situation calls for, or None."""
        assert self.plan is not None
        inst = built.instance
        margin = active.depot_soc - inst.threshold_pct
        restore = active.safe and self._reduced() and (
            margin >= self.cfg.restore_margin_pct or self._idle_charge(built, active))
        if active.safe and not restore:
            return None
        # A proposal keeps H of headroom, so the next readings do not undo it at once.
        stats = SearchStats()
        best, shift = self._search_at_own_line(built, active, stats)
        if best.safe:
            # Keep the minutes that are safe H above the line; judge them at the normal line
            # (a cut: at its own, lower one).
            judge = inst if shift >= 0 else inst.raised(shift)
            best = evaluate(judge, best.seq, best.minutes)
        elif not restore:
            best = best_plan(inst, exact_max_stops=self.cfg.exact_max_stops, stats=stats)
        self.last_search = stats
        if restore and (not best.safe or not self._worth_restoring(built, best, active)):
            return None
        emergency = not best.safe
        if emergency:
            best = self._emergency(built)
        items = itinerary_of(built, best, self._seen, self._elapsed(sit.now))
        items = self._with_done(items)
        if shape(items) == shape(self.itinerary):
            return None
        return make_proposal(
            self.plan, built, active, best, items, sit, emergency=emergency,
            base=self.itinerary,
        )

    def _can_wait(self, proposal: Proposal, now: float) -> bool:
        """Whether ``proposal`` can wait for the next arrival: the bus is on the road, and
        the proposal leaves the place it drives to as it is. The leg is driven either way;
        on arrival the model has learned from it, and the driver gets one proposal made with
        what the leg taught. Made at once, it was made on the leg's guess and changed again
        on arrival: the demo's fresh bus, its first leg in the cold 40 % over the seed, was
        asked to swap two stops while driving and to swap them back, with cuts, at the
        first stop. Held for an hour at most (``_HOLD_MAX_S``)."""
        if proposal.emergency or not self._seen.on_road:
            return False
        if self._held_since is not None and now - self._held_since > _HOLD_MAX_S:
            return False
        mine, its = self._item_ahead(self.itinerary), self._item_ahead(proposal.itinerary)
        if mine is None or its is None:
            return False
        return (mine.kind, mine.id) == (its.kind, its.id) and abs(mine.minutes - its.minutes) < 1

    def _item_ahead(self, items: Sequence[Item]) -> Item | None:
        return next((i for i in items if i.id not in self._seen.done), None)

    def _place_ahead(self) -> str | None:
        ahead = self._item_ahead(self.itinerary)
        return None if ahead is None else ahead.id

    def _worth_restoring(self, built: Built, best: Evaluation, active: Evaluation) -> bool:
        """Whether a restore is worth the driver's attention: it serves more, or serves as
        much with a charging stop fewer ahead (the km to the charger and back, and the time,
        saved). A charge under way is not a stop ahead: its length is the itinerary's, and a
        driver already plugged in was asked to "drop" a charge minutes before unplugging."""
        if best.key[1:5] != active.key[1:5]:
            return best.key[1:5] > active.key[1:5]
        return len(self._chargers_ahead(built, best)) < len(self._chargers_ahead(built, active))

    def _chargers_ahead(self, built: Built, ev: Evaluation) -> list[int]:
        """The charging stops of ``ev`` still to drive to: not the one the bus is at."""
        return [v for v in ev.seq
                if built.instance.is_charger(v) and built.node_ids[v] != self._seen.at]

    def _idle_charge(self, built: Built, active: Evaluation) -> bool:
        """Whether a charging stop still ahead is no longer needed: the day went better than
        when it was proposed, and without it the itinerary keeps H above the line. Kept, it
        sends the bus the km to the charger and back for little or nothing (and a charger
        passed without a visit stayed ahead all day). Asked as soon as it is so, the drop
        comes in the morning more often, before the noon projection counts the detour."""
        ahead = self._chargers_ahead(built, active)
        if not ahead:
            return False
        seq = tuple(v for v in active.seq if v not in ahead)
        minutes = {v: m for v, m in active.minutes.items() if v in seq}
        return evaluate(built.instance.raised(self.cfg.hysteresis_pct), seq, minutes).safe

    def _search_at_own_line(self, built: Built, active: Evaluation,
                            stats: SearchStats) -> tuple[Evaluation, float]:
        """The best plan that keeps H of headroom above the line it will itself have, and
        the move of the line it was searched at (SOC points; below 0 for a cut).

        The margin below the line grows with the energy still to spend
        (:meth:`EnergyModel.margin_pct`): a cut lowers the line, a restore raises it. Searched
        at the line of the itinerary it replaces, a cut left more room than H, which the
        next projection offered back as a restore, and the restore took the line above the
        bus again: on some simulated days five proposals in the quarter of an hour before
        departure. So the search runs again at the line the first result would have, and
        keeps the result when it holds H above its own line. A cut searched at its own
        lower line gives back minutes that raise the line again: between the two lines a few
        halvings find the lowest line whose plan still holds H above its own."""
        def search(shift: float) -> Evaluation:
            return best_plan(built.instance.raised(self.cfg.hysteresis_pct + shift),
                             exact_max_stops=self.cfg.exact_max_stops, stats=stats)

        def holds(ev: Evaluation, shift: float) -> bool:
            return ev.safe and self._line_shift(built, active, ev) <= shift + _LINE_SHIFT_MIN

        first = search(0.0)
        shift = self._line_shift(built, active, first)
        if not first.safe or abs(shift) < _LINE_SHIFT_MIN:
            return first, 0.0
        second = search(shift)
        if holds(second, shift) or shift > 0:
            # a restore that does not hold H at its own line: the higher line is the nearer
            return second, shift
        best, low, high = first, shift, 0.0  # a cut: safe at its own line already
        for _ in range(_LINE_HALVINGS):
            mid = (low + high) / 2
            found = search(mid)
            if holds(found, mid):
                best, high = found, mid
            else:
                low = mid
        return best, high

    def _at_own_line(self, built: Built, active: Evaluation,
                     ev: Evaluation | None) -> Evaluation | None:
        """``ev`` judged at the line it will have: a cut pending, judged at the line of the
        itinerary it replaces, is unsafe there, and was superseded by the same cut again."""
        if ev is None:
            return None
        shift = self._line_shift(built, active, ev)
        if shift > -_LINE_SHIFT_MIN:
            return ev
        return evaluate(built.instance.raised(shift), ev.seq, ev.minutes)

    def _line_shift(self, built: Built, active: Evaluation, other: Evaluation) -> float:
        """How far the line would move (SOC points) were ``other`` the itinerary instead of
        ``active``: the margin for the energy each still has to spend."""
        inst = built.instance

        def kwh(ev: Evaluation) -> float:
            return kwh_to_spend(inst.drive_kwh_per_km, inst.site_kw, ev.km, ev.minutes.values())

        return self.energy.margin_pct(kwh(other)) - self.energy.margin_pct(kwh(active))

    def _with_done(self, items: tuple[Item, ...]) -> tuple[Item, ...]:
        """Keep the served part of the day in front, so itineraries compare whole."""
        done = [i for i in self.itinerary if i.id in self._seen.done]
        return (*done, *items)

    def _emergency(self, built: Built) -> Evaluation:
        """No safe plan: the nearest charger that is reachable and open, else the depot."""
        inst = built.instance
        options: list[tuple[float, int, tuple[int, ...]]] = []
        first: tuple[int, ...] = (1,) if inst.stops and inst.stops[0].in_progress else ()
        for k, ch in enumerate(inst.chargers):
            node = inst.n + 1 + k
            km = inst.dist[first[0] if first else 0][node]
            soc_there = inst.soc_pct - inst.drive_kwh_per_km * km / inst.capacity_kwh * 100
            arrive = inst.now + km / inst.speed_kmh * 3600
            if soc_there > 0 and arrive <= ch.closes:
                options.append((km, node, (*first, node)))
        options.append((inst.dist[first[0] if first else 0][inst.depot], inst.depot, first))
        options.sort()
        seq = options[0][2]
        minutes = {1: 0.0} if first else {}
        return evaluate(inst, seq, minutes)

    def _revise_pending(
        self, built: Built, active: Evaluation, candidate: Proposal | None, sit: Situation
    ) -> list[Outgoing]:
        assert self.pending is not None
        pending = self.pending
        margin = active.depot_soc - built.instance.threshold_pct
        if candidate is None:
            if pending.kind == "restore":
                # Given back while the spare was clear; withdrawn only once the minutes it
                # gives back are no longer safe. Withdrawing as soon as the spare dips under
                # the restore line (the search then finds nothing) and offering it again a
                # minute later put the same proposal before the driver twice.
                still = self._evaluate_items(built, tuple(pending.itinerary), sit.now)
                if still is None or not still.safe:
                    return self._drop_pending("withdrawn", sit.now)
                return []
            if active.safe and margin >= self.cfg.hysteresis_pct:
                return self._drop_pending("withdrawn", sit.now)
            return []
        if shape(candidate.itinerary) == shape(pending.itinerary):
            return []
        now_eval = self._at_own_line(
            built, active, self._evaluate_items(built, tuple(pending.itinerary), sit.now))
        serves_more = candidate.after.points and now_eval is not None and (
            sum(1 for p in candidate.after.points if p.kind == "stop")
            > sum(1 for p in now_eval.points[:-1] if not built.instance.is_charger(p.node))
        )
        material = (
            now_eval is None
            or not now_eval.safe
            or serves_more
            or abs(candidate.after.depot_soc - now_eval.depot_soc) >= self.cfg.hysteresis_pct
            or candidate.emergency != pending.emergency
        )
        if not material:
            return []
        out = self._drop_pending("superseded", sit.now)
        return out + self._propose(candidate, sit.now)

    def _evaluate_items(
        self, built: Built, items: tuple[Item, ...], now: float
    ) -> Evaluation | None:
        inst = built.instance
        seq: list[int] = []
        minutes: dict[int, float] = {}
        elapsed = self._elapsed(now)
        for item in items:
            if item.id in self._seen.done:
                continue
            try:
                v = built.node(item.id)
            except ValueError:
                return None
            seq.append(v)
            if item.kind == "stop":
                spent = elapsed if item.id == self._seen.at else 0.0
                minutes[v] = max(0.0, item.minutes - spent)
        return evaluate(inst, tuple(seq), minutes)

    def _propose(self, proposal: Proposal, now: float) -> list[Outgoing]:
        self.pending = proposal
        log.warning(
            "plan_proposed", proposal=proposal.id, kind=proposal.kind,
            changes=[c.kind for c in proposal.changes], emergency=proposal.emergency,
        )
        return [
            self._event(PlanChanged(cause="proposed", proposal=proposal)),
            self._plan_message(now),
        ]

    def _drop_pending(
        self, status: Literal["superseded", "withdrawn"], now: float
    ) -> list[Outgoing]:
        assert self.pending is not None
        pid = self.pending.id
        self.pending = None
        self._remember(pid, status)
        log.info("proposal_" + status, proposal=pid)
        return [self._event(PlanChanged(cause=status, proposal_id=pid)),
                self._plan_message(now)]

    def _remember(self, pid: str, status: AckStatus) -> None:
        self._history[pid] = status
        self._history.move_to_end(pid)
        while len(self._history) > _HISTORY:
            self._history.popitem(last=False)

    @staticmethod
    def _event(event: PlanChanged | PlanAccepted) -> Outgoing:
        # No bus, ts or schema here: the record's envelope carries them.
        return Outgoing("event", event.kind, event)

    def document(self, now: float) -> PlanDocument:
        """The retained ``plan``: the plan, the itinerary, the projection, any proposal
        (the uplink puts it in its envelope with ``bus``, ``ts`` and ``schema``)."""
        return PlanDocument(
            plan=self.plan, itinerary=list(self.itinerary), done=sorted(self.progress.done),
            at=self.progress.at, projection=self.projection, pending=self.pending,
            proposal_at=self.proposal_at,
        )

    def _plan_message(self, now: float) -> Outgoing:
        if self.projection is not None:
            self._published_depot_soc = self.projection.depot_soc
        return Outgoing("plan", "plan", self.document(now))


__all__ = [
    "AckResult",
    "CommandResult",
    "Outgoing",
    "PlannerCore",
    "proposal_id",
]
