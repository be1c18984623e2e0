"""A bus's day: ``GET /buses/{bus}/day/{YYYY-MM-DD}`` (``/buses/{bus}/day`` is today).

The page shows :func:`office.dayview.bus_day` in the bus's municipality's zone and the staff's
language: the timeline of planned stops against what happened (each shortened or skipped stop
with the planner's reason, rendered from its code), the SOC chart (uPlot, vendored) with the
reserve line and each accepted plan's projection, legs, visits, charging sessions, plan
events, alerts and the gaps in the data. The chart's data travels in a data attribute (the
CSP allows no inline script).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from office.dayview import DayView, ReasonNote, bus_day, reason_text
from office.reports.labels import service_label
from office.web import i18n
from office.web.app import BUS_ID, WebContext, context, render, session_language


def setup(app: web.Application, ctx: WebContext) -> None:
    app.router.add_get("/buses/{bus}/day", today)
    app.router.add_get("/buses/{bus}/day/{day}", day_page)
    app.router.add_get("/day", pick)


def _bus(request: web.Request, value: str | None = None) -> str:
    bus = value if value is not None else request.match_info["bus"]
    if not BUS_ID.match(bus):
        raise web.HTTPNotFound(text="no such bus\n")
    return bus


async def today(request: web.Request) -> web.Response:
    ctx = context(request)
    bus = _bus(request)
    zone = ctx.config.municipality_of(bus).tz
    day = datetime.fromtimestamp(ctx.clock.now(), UTC).astimezone(zone).date()
    raise web.HTTPSeeOther(f"/buses/{bus}/day/{day.isoformat()}")


async def pick(request: web.Request) -> web.Response:
    """The bus-and-day form's target."""
    bus = _bus(request, request.query.get("bus", ""))
    try:
        day = date.fromisoformat(request.query.get("day", ""))
    except ValueError:
        raise web.HTTPSeeOther(f"/buses/{bus}/day") from None
    raise web.HTTPSeeOther(f"/buses/{bus}/day/{day.isoformat()}")


def chart_data(view: DayView, lang: str) -> dict[str, Any]:
    """What day.js draws: epoch seconds and SOC per series, the reserve lines, labels."""
    def t(key: str, **kw: object) -> str:
        return i18n.translate(lang, key, **kw)

    return {
        "tz": view.tz, "start": view.start.timestamp(), "end": view.end.timestamp(),
        "soc": [[p.ts.timestamp() for p in view.soc], [p.soc for p in view.soc]],
        "reserve": view.reserve_pct, "threshold": view.threshold_pct,
        "projections": [{"label": t("day.projection", time=c.accepted_at.astimezone(
            ZoneInfo(view.tz)).strftime("%H:%M")),
            "t": [p.ts.timestamp() for p in c.points], "soc": [p.soc for p in c.points]}
            for c in view.projections],
        "labels": {"soc": t("day.soc_series"), "reserve": t("day.reserve"),
                   "threshold": t("day.threshold")},
    }


async def day_page(request: web.Request) -> web.Response:
    ctx = context(request)
    bus = _bus(request)
    try:
        day = date.fromisoformat(request.match_info["day"])
    except ValueError:
        raise web.HTTPNotFound(text="no such day\n") from None
    municipality = ctx.config.municipality_of(bus)
    lang = session_language(request)
    now = datetime.fromtimestamp(ctx.clock.now(), UTC)
    view = await bus_day(ctx.archive, bus, day, tz=municipality.timezone, now=now)

    def reason(note: ReasonNote) -> str:
        return reason_text(note, lang)

    def label(name: str) -> str:
        return service_label(name, lang)

    return render(request, "day.html", view=view, bus=bus, day=day, municipality=municipality,
                  reason=reason, label=label, chart=json.dumps(chart_data(view, lang)),
                  prev_day=(day - timedelta(days=1)).isoformat(),
                  next_day=(day + timedelta(days=1)).isoformat())
