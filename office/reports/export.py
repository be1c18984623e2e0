"""A report as CSV and as an XLSX workbook, headed in the staff's language.

CSV holds one table (a spreadsheet program opens one sheet per file): by default the lines per
bus and day with a total row; ``table`` picks another. Numbers are plain (a dot for decimals,
no thousands separator), times are the municipality's local days. XLSX holds every table, one
sheet each, numbers as numbers (openpyxl, write-only mode: rows are streamed, not kept).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from typing import Literal

from openpyxl import Workbook

from office.reports.labels import INDICATORS, Language, band, indicator, service_label, word
from office.reports.models import Indicators, Report, TallyLine

Cell = str | int | float | None
Table = Literal["lines", "by_bus", "by_day", "places", "bands", "alerts", "services",
                "activities"]
TABLES: tuple[Table, ...] = ("lines", "by_bus", "by_day", "places", "bands", "alerts",
                             "services", "activities")
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _values(values: Indicators) -> list[Cell]:
    data = values.model_dump()
    return [data[name] for name in INDICATORS]


def _heads(lang: Language) -> list[str]:
    return [indicator(name, lang) for name in INDICATORS]


def _number(value: float, activities: bool) -> Cell:
    return value if activities else int(value)


def _tallies(report: Report, lines: list[TallyLine], head: str, lang: Language, *,
             activities: bool) -> Iterator[Sequence[Cell]]:
    """A service type (or activity) a row: its name, each bus's figure, the total."""
    yield [word(head, lang), *report.buses, word("total", lang)]
    for line in lines:
        yield [service_label(line.name, lang),
               *(_number(line.by_bus.get(b, 0.0), activities) for b in report.buses),
               _number(line.total, activities)]


def rows(report: Report, table: Table, lang: Language) -> Iterator[Sequence[Cell]]:
    """``table`` of ``report``: its heading row, then its rows (with a total where one
    makes sense)."""
    total = word("total", lang)
    if table == "lines":
        yield [word("bus", lang), word("day", lang), *_heads(lang)]
        for line in report.lines:
            yield [line.bus, line.day.isoformat(), *_values(line.values)]
        yield [total, report.period.label, *_values(report.totals)]
    elif table == "by_bus":
        yield [word("bus", lang), *_heads(lang)]
        for b in report.by_bus:
            yield [b.bus, *_values(b.values)]
        yield [total, *_values(report.totals)]
    elif table == "by_day":
        yield [word("day", lang), *_heads(lang)]
        for d in report.by_day:
            yield [d.day.isoformat(), *_values(d.values)]
        yield [total, *_values(report.totals)]
    elif table == "places":
        yield [word("place_id", lang), word("place", lang), word("planned_days", lang),
               indicator("visits", lang), word("days_visited", lang), word("minutes", lang),
               indicator("coverage", lang)]
        for p in report.places:
            yield [p.place_id, p.name, p.planned_days, p.visits, p.days_visited, p.minutes,
                   p.coverage]
    elif table == "bands":
        yield [word("band", lang), word("legs", lang), indicator("km", lang),
               indicator("kwh", lang), indicator("kwh_per_km", lang)]
        for x in report.bands:
            yield [band(x.band, lang), x.legs, x.km, x.kwh, x.kwh_per_km]
    elif table == "services":
        yield from _tallies(report, report.services, "service", lang, activities=False)
    elif table == "activities":
        yield from _tallies(report, report.activities, "activity", lang, activities=True)
    else:
        yield [word("alert", lang), word("count", lang), word("minutes", lang)]
        for a in report.alerts:
            yield [a.alert, a.count, a.minutes]


def to_csv(report: Report, lang: Language, table: Table = "lines") -> bytes:
    """UTF-8 with a byte order mark: Excel then reads ā, ė, š right."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows(report, table, lang):
        writer.writerow(["" if c is None else c for c in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _summary(report: Report, lang: Language) -> Iterator[Sequence[Cell]]:
    yield [word("municipality", lang), report.municipality]
    if report.bus is not None:
        yield [word("bus", lang), report.bus]
    yield [word("period", lang), report.period.label]
    yield [word("time_zone", lang), report.tz]
    yield []
    yield [word("indicator", lang), word("value", lang)]
    for name, value in zip(INDICATORS, _values(report.totals), strict=True):
        yield [indicator(name, lang), value]
    for line in report.services:
        yield [f"{word('services', lang)}: {service_label(line.name, lang)}", int(line.total)]
    for line in report.activities:
        yield [f"{word('activities', lang)}: {service_label(line.name, lang)}", line.total]


def to_xlsx(report: Report, lang: Language) -> bytes:
    """The summary and every table, a sheet each (sheet names in ``lang``)."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(word("summary", lang)[:31])
    for row in _summary(report, lang):
        sheet.append(list(row))
    for table in TABLES:
        sheet = book.create_sheet(word(table, lang)[:31])
        for row in rows(report, table, lang):
            sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def filename(report: Report, extension: str) -> str:
    """``report-<municipality or bus>-<period>.<ext>``, safe for a download header."""
    who = report.bus or report.municipality
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in who)
    return f"report-{safe}-{report.period.label}.{extension}"
