"""The reports: ``GET /reports`` (the page), ``GET /reports/export.csv`` and ``.xlsx``.

Query: ``m`` (a municipality's id; the first by default), ``period`` (``YYYY-MM`` for a month,
``YYYY-MM-DD`` for a day; this month by default, in the municipality's zone), ``bus`` (one of
its buses: that bus's report), and for CSV ``table`` (``lines`` by default; see
office/reports/export.py). The report is :func:`office.reports.build_report` over the
municipality's buses that the archive knows; headings are the exports' own words
(office/reports/labels.py) in the staff's language. Printing uses static/print.css.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from urllib.parse import quote, urlencode

import structlog
from aiohttp import web

from office.config import Municipality
from office.reports import Municipality as ReportScope
from office.reports import Period, Report, build_report, filename, to_csv, to_xlsx
from office.reports.export import CSV_MEDIA_TYPE, TABLES, XLSX_MEDIA_TYPE, Table
from office.reports.labels import INDICATORS, band, indicator, service_label, word
from office.web.app import NavItem, WebContext, context, render, session_language

log = structlog.get_logger("office.web.reports")

_MONTH = re.compile(r"^\d{4}-\d{2}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def setup(app: web.Application, ctx: WebContext) -> None:
    ctx.nav.append(NavItem("/reports", "nav.reports"))
    app.router.add_get("/reports", reports_page)
    app.router.add_get("/reports/export.csv", export_csv)
    app.router.add_get("/reports/export.xlsx", export_xlsx)


def parse_period(value: str | None, today: date) -> Period:
    """``YYYY-MM`` or ``YYYY-MM-DD``; None: this month. 400 for anything else."""
    try:
        if not value:
            return Period.month(today.year, today.month)
        if _MONTH.match(value):
            year, month = (int(x) for x in value.split("-"))
            return Period.month(year, month)
        if _DAY.match(value):
            return Period.day(date.fromisoformat(value))
    except ValueError:
        pass
    raise web.HTTPBadRequest(text="period: YYYY-MM or YYYY-MM-DD\n")


async def _report(request: web.Request) -> tuple[Municipality, Period, Report | None]:
    ctx = context(request)
    m_id = request.query.get("m")
    municipality = (ctx.config.municipality(m_id) if m_id else ctx.config.municipalities[0])
    if municipality is None:
        raise web.HTTPNotFound(text="no such municipality\n")
    today = datetime.fromtimestamp(ctx.clock.now(), UTC).astimezone(municipality.tz).date()
    period = parse_period(request.query.get("period"), today)
    buses = municipality.members(await ctx.archive.buses())
    bus = request.query.get("bus") or None
    if bus is not None and bus not in buses:
        raise web.HTTPNotFound(text="no such bus in this municipality\n")
    if not buses:
        return municipality, period, None
    scope = ReportScope(name=municipality.name, tz=municipality.timezone, buses=tuple(buses))
    return municipality, period, await build_report(ctx.archive, scope, period, bus=bus)


def _query(municipality: Municipality, period: Period, bus: str | None,
           **extra: str) -> str:
    values = {"m": municipality.id, "period": period.label} | ({"bus": bus} if bus else {})
    return urlencode(values | extra)


async def reports_page(request: web.Request) -> web.Response:
    municipality, period, report = await _report(request)
    lang = session_language(request)
    bus = request.query.get("bus") or None
    return render(request, "reports.html", report=report, municipality=municipality,
                  period=period, bus=bus, indicators=list(INDICATORS),
                  indicator=lambda name: indicator(name, lang),
                  word=lambda name: word(name, lang), band=lambda name: band(name, lang),
                  label=lambda name: service_label(name, lang),
                  csv_url="/reports/export.csv?" + _query(municipality, period, bus),
                  xlsx_url="/reports/export.xlsx?" + _query(municipality, period, bus),
                  tables=TABLES,
                  table_url=lambda table: "/reports/export.csv?" + _query(
                      municipality, period, bus, table=table),
                  bus_url=lambda b: "/reports?" + _query(municipality, period, b))


def _download(body: bytes, media_type: str, name: str) -> web.Response:
    # RFC 6266: an ASCII fallback, and the UTF-8 name (Līvāni) for browsers that read it.
    ascii_name = name.encode("ascii", "replace").decode().replace("?", "_")
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
    return web.Response(body=body, headers={"Content-Type": media_type,
                                            "Content-Disposition": disposition})


async def export_csv(request: web.Request) -> web.Response:
    _, _, report = await _report(request)
    if report is None:
        raise web.HTTPNotFound(text="no buses in this municipality\n")
    asked = request.query.get("table", "lines")
    table: Table | None = next((t for t in TABLES if t == asked), None)
    if table is None:
        raise web.HTTPBadRequest(text=f"table: one of {', '.join(TABLES)}\n")
    lang = session_language(request)
    log.info("report_exported", format="csv", period=report.period.label, table=table)
    return _download(to_csv(report, lang, table), CSV_MEDIA_TYPE, filename(report, "csv"))


async def export_xlsx(request: web.Request) -> web.Response:
    _, _, report = await _report(request)
    if report is None:
        raise web.HTTPNotFound(text="no buses in this municipality\n")
    lang = session_language(request)
    log.info("report_exported", format="xlsx", period=report.period.label)
    return _download(to_xlsx(report, lang), XLSX_MEDIA_TYPE, filename(report, "xlsx"))
