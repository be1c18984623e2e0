"""The office's reports: daily and monthly, per bus and per municipality, with the
methodology's indicators (clients served, route duration, km, frequency and territorial
coverage, time on site, energy and kWh/km by temperature band, problem situations), computed
in SQL over the archive's derived tables, exported as CSV and XLSX.

``await build_report(archive, Municipality(name=…, tz=…, buses=(…)), Period.month(2026, 3))``
gives a typed :class:`Report`; :func:`to_csv` and :func:`to_xlsx` give its files.
"""

from office.reports.build import build_report
from office.reports.export import TABLES, filename, to_csv, to_xlsx
from office.reports.models import (
    Indicators,
    Municipality,
    Period,
    Report,
)

__all__ = ["TABLES", "Indicators", "Municipality", "Period", "Report", "build_report",
           "filename", "to_csv", "to_xlsx"]
