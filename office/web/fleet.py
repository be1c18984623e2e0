"""The live fleet: one MQTT subscription in the web process, an in-memory snapshot, pushed.

Where it comes from:

- the buses' retained ``status``, ``state`` and ``plan`` and their records, heard by one
  :class:`office.live.Office` (the live subscriber the terminal table uses) with a clean
  session: position, heading, SOC, online, alerts, the outbox backlog (unsent records and the
  oldest one's age, as the bus counts them), the plan's stops and projection;
- the archive, every ``archive_poll_s``: the local day's records and seq gaps per bus (data
  completeness) and the newest archived record (how far the archive is behind the bus).

Every ``push_interval_s`` the snapshot is rebuilt from those (200 buses: a few ms) and, when it
differs from the last one, gets a new version; each browser's event stream sends the latest
version it has not sent (never a queue: a slow browser skips versions). So the server's work
per second is one rebuild plus one write per open page, whatever the message rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

import structlog
from pydantic import BaseModel

from busd.clock import Clock, SystemClock
from office.archive import Archive, ArchiveError
from office.archive.base import param
from office.archive.gaps_sql import day_bounds, gaps_query
from office.config import Municipality, OfficeConfig
from office.live import BusView, Office, place_names

log = structlog.get_logger("office.web.fleet")

StopStatus = Literal["done", "now", "next", "skipped", "planned", "depot"]


class StopMark(BaseModel):
    id: str
    name: str
    lat: float
    lon: float
    status: StopStatus


class BusRow(BaseModel):
    bus: str
    municipality: str
    online: bool
    soc: float | None = None
    lat: float | None = None
    lon: float | None = None
    heading: float | None = None
    moving: bool = False
    last_seen: float | None = None  # UTC epoch seconds
    last_seen_local: str = "-"  # in the municipality's zone
    depot_soc: float | None = None
    reserve_pct: float | None = None
    depot_ok: bool | None = None
    # On the road, the place ahead where the bus's planner will propose a change it holds
    # until the arrival: a red depot figure with no proposal yet is not a silence.
    change_at: str | None = None
    stop_now: str | None = None
    stop_next: str | None = None
    alerts: list[str] = []
    archive_behind_s: float | None = None
    # The bus's own outbox backlog, from its retained state (None: an older bus, or no
    # state yet; the table then shows the archive's lag instead).
    outbox_unsent: int | None = None
    outbox_oldest_s: float | None = None
    complete_pct: float | None = None
    missing: int = 0
    route: list[StopMark] = []


class FleetSnapshot(BaseModel):
    ts: float
    buses: list[BusRow]


@dataclass(frozen=True, slots=True)
class ArchiveDay:
    """One bus's local day in the archive."""

    records: int
    missing: int
    newest: datetime | None

    @property
    def complete_pct(self) -> float | None:
        total = self.records + self.missing
        return None if total == 0 else round(100.0 * self.records / total, 1)


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


def _epoch(iso: Any) -> float | None:
    if not isinstance(iso, str):
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def route_of(document: Mapping[str, Any]) -> tuple[list[StopMark], str | None, str | None]:
    """The plan's places with their status today, and the names of the current and next
    stop. The route is depot, the itinerary in order, depot; a stop of the plan that is in
    neither the itinerary nor done was skipped."""
    plan = document.get("plan")
    if not isinstance(plan, dict):
        return [], None, None
    places: dict[str, dict[str, Any]] = {
        str(p["id"]): p for key in ("stops", "chargers") for p in plan.get(key) or []
        if isinstance(p, dict) and "id" in p}
    done = [str(i) for i in document.get("done") or []]
    at = document.get("at")
    order = [str(i.get("id")) for i in document.get("itinerary") or [] if isinstance(i, dict)]
    ahead = [i for i in order if i not in done and i != at]
    marks: list[StopMark] = []
    depot = plan.get("depot")

    def mark(place: Mapping[str, Any], status: StopStatus) -> None:
        lat, lon = _float(place.get("lat")), _float(place.get("lon"))
        if lat is not None and lon is not None:
            marks.append(StopMark(id=str(place.get("id")), name=str(place.get("name") or ""),
                                  lat=lat, lon=lon, status=status))

    if isinstance(depot, dict):
        mark(depot, "depot")
    seen: set[str] = set()
    for pid in [*done, *([str(at)] if at else []), *ahead]:
        if pid in places and pid not in seen:
            seen.add(pid)
            status: StopStatus = ("done" if pid in done else "now" if pid == at
                                  else "next" if ahead and pid == ahead[0] else "planned")
            mark(places[pid], status)
    for stop in plan.get("stops") or []:
        if isinstance(stop, dict) and str(stop.get("id")) not in seen:
            mark(stop, "skipped")
    name = {pid: str(p.get("name") or pid) for pid, p in places.items()}
    now = name.get(str(at)) if at else None
    nxt = name.get(ahead[0]) if ahead else (str(depot.get("name")) if isinstance(depot, dict)
                                            else None)
    return marks, now, nxt


def bus_row(view: BusView, day: ArchiveDay | None, municipality: Municipality, *,
            now: float, offline_after_s: float) -> BusRow:
    state = view.state if isinstance(view.state, dict) else {}
    values = state.get("values") if isinstance(state.get("values"), dict) else {}
    assert isinstance(values, dict)
    state_ts = _epoch(state.get("ts"))
    seen = max((t for t in (state_ts, view.last_record_at) if t is not None), default=None)
    online = bool(view.online) and seen is not None and now - seen < offline_after_s
    plan_doc = view.plan if isinstance(view.plan, dict) else {}
    route, stop_now, stop_next = route_of(plan_doc)
    # on the road: where the bus's planner will propose the change it holds
    held = plan_doc.get("proposal_at") if isinstance(plan_doc.get("proposal_at"), str) else None
    projection = plan_doc.get("projection") if isinstance(plan_doc.get("projection"),
                                                          dict) else None
    depot_soc = reserve = None
    depot_ok = None
    if projection is not None:
        depot_soc = _float(projection.get("depot_soc"))
        reserve = _float(projection.get("reserve_pct"))
        margin = _float(projection.get("depot_margin_pct"))
        depot_ok = None if margin is None else margin >= 0
    alerts = state.get("alerts") if isinstance(state.get("alerts"), dict) else {}
    assert isinstance(alerts, dict)
    backlog = state.get("outbox") if isinstance(state.get("outbox"), dict) else {}
    assert isinstance(backlog, dict)
    unsent = backlog.get("unsent")
    behind = None
    if day is not None and day.newest is not None and seen is not None:
        behind = max(0.0, round(seen - day.newest.timestamp(), 1))
    return BusRow(
        bus=view.bus, municipality=municipality.id, online=online,
        soc=_float(values.get("battery.soc")), lat=_float(values.get("gps.lat")),
        lon=_float(values.get("gps.lon")), heading=_float(values.get("gps.heading")),
        moving=bool(state.get("moving")), last_seen=seen,
        last_seen_local=("-" if seen is None else datetime.fromtimestamp(seen, UTC).astimezone(
            municipality.tz).strftime("%H:%M:%S")),
        depot_soc=depot_soc, reserve_pct=reserve, depot_ok=depot_ok,
        change_at=place_names(plan_doc).get(held, held) if held else None,
        stop_now=stop_now, stop_next=stop_next, alerts=sorted(str(k) for k in alerts),
        archive_behind_s=behind,
        outbox_unsent=unsent if isinstance(unsent, int) and not isinstance(unsent, bool)
        else None,
        outbox_oldest_s=_float(backlog.get("oldest_age_s")),
        complete_pct=day.complete_pct if day else None, missing=day.missing if day else 0,
        route=route)


async def archive_days(archive: Archive, municipality: Municipality,
                       day: date) -> dict[str, ArchiveDay]:
    """Every bus's records, missing seqs and newest record on ``day`` (the municipality's
    local day: midnight to midnight in its zone), from the archive's SQL: the same gap query
    as ``busd office gaps``. Every bus of the archive; the caller keeps the municipality's."""
    start, end = day_bounds(day, municipality.tz)
    dialect = archive.dialect

    def value(t: datetime) -> Any:
        return t.isoformat(timespec="microseconds") if dialect == "sqlite" else t

    args = {"start": value(start), "end": value(end), "bus": None}
    def p(name: str) -> str:
        return param(dialect, name)

    counts = await archive.fetch(
        f"SELECT bus, count(*), max(ts) FROM records WHERE ts >= {p('start')} "
        f"AND ts < {p('end')} GROUP BY bus", args)
    gaps = await archive.fetch(gaps_query(by_bus=False, by_day=True, param=p), args)
    missing: dict[str, int] = {}
    for bus, seq, nxt, *_ in gaps:
        missing[bus] = missing.get(bus, 0) + int(nxt) - int(seq) - 1
    out: dict[str, ArchiveDay] = {}
    for bus, n, newest in counts:
        when = newest if isinstance(newest, datetime) else (
            datetime.fromisoformat(newest) if newest else None)
        out[bus] = ArchiveDay(int(n), missing.get(bus, 0), when)
    return out


class FleetFeed:
    """The snapshot, rebuilt every ``push_interval_s``, versioned when it changes."""

    def __init__(self, *, config: OfficeConfig, archive: Archive, clock: Clock,
                 office: Office | None, archive_poll_s: float = 10.0,
                 pace: Clock | None = None) -> None:
        """``clock``: the fleet's time (last seen, today); ``pace``: the clock the rebuilds
        and polls are timed by, real time by default (the demo's fleet runs on an
        accelerated clock, its pages are still pushed once a real second)."""
        self._config = config
        self._archive = archive
        self._clock = clock
        self._pace = pace or SystemClock()
        self.office = office
        self._poll_s = archive_poll_s
        self._days: dict[str, ArchiveDay] = {}
        self._archive_buses: list[str] = []
        self._json = FleetSnapshot(ts=clock.now(), buses=[]).model_dump_json()
        self._body = ""
        self._version = 0
        self._event = asyncio.Event()
        self._closing = False
        self.archive_polled = asyncio.Event()

    # --- FleetSource ---------------------------------------------------------------------

    def snapshot_json(self) -> str:
        return self._json

    def version(self) -> int:
        return self._version

    async def changed(self, after: int, timeout: float) -> int:
        """The version, once it is above ``after`` or ``timeout`` seconds passed."""
        if self._version > after:
            return self._version
        event = self._event
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await event.wait()
        return self._version

    @property
    def closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._closing = True
        self._event.set()

    # --- running -------------------------------------------------------------------------

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            if self.office is not None:
                tg.create_task(self.office.run(), name="office-web-mqtt")
            tg.create_task(self._poll_archive(), name="office-web-archive")
            tg.create_task(self._push(), name="office-web-push")

    async def _poll_archive(self) -> None:
        while True:
            try:
                await self.refresh_archive()
            except ArchiveError as err:
                log.warning("fleet_archive_poll_failed", reason=str(err))
            await self._pace.sleep(self._poll_s)

    async def refresh_archive(self) -> None:
        now = self._clock.now()
        days: dict[str, ArchiveDay] = {}
        for m in self._config.municipalities:
            today = datetime.fromtimestamp(now, UTC).astimezone(m.tz).date()
            found = await archive_days(self._archive, m, today)
            days.update({b: d for b, d in found.items()
                         if self._config.municipality_of(b).id == m.id})
        self._days = days
        self._archive_buses = await self._archive.buses()
        self.archive_polled.set()

    async def _push(self) -> None:
        while True:
            self.rebuild()
            await self._pace.sleep(self._config.web.push_interval_s)

    def rebuild(self) -> None:
        now = self._clock.now()
        views: dict[str, BusView] = dict(self.office.fleet) if self.office is not None else {}
        for bus in self._archive_buses:
            views.setdefault(bus, BusView(bus))
        rows = [bus_row(v, self._days.get(b), self._config.municipality_of(b), now=now,
                        offline_after_s=self._config.web.offline_after_s)
                for b, v in sorted(views.items())]
        body = json.dumps([r.model_dump(mode="json") for r in rows], separators=(",", ":"))
        if body != self._body:
            self._body = body
            self._json = f'{{"ts":{now},"buses":{body}}}'
            self._version += 1
            self._event.set()
            self._event = asyncio.Event()
