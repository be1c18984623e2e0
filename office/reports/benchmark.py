"""The reports' figure for the web benchmark (benchmarks/office_web.py): one municipality's
month report, in seconds, from a PostgreSQL month of 200 buses × 30 days.

The month is made and timed by benchmarks/office_month_report.py, in a process of its own
with its own PostgreSQL (it needs the test support's server and takes a few minutes to fill);
this hook runs it and gives the median of its three runs. ``archive_url`` (the web
benchmark's own SQLite archive of one live day) is not what the issue's figure is about and
is not used. None when the script is not in this tree (an installed package).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "office_month_report.py"


def month_report_s(archive_url: str | None = None, *, buses: int = 200,
                   days: int = 30) -> float | None:
    """The median seconds of one municipality's month report (see the module's docstring)."""
    del archive_url  # see the module's docstring
    if not SCRIPT.exists():
        return None
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--buses", str(buses), "--days", str(days)],
        cwd=SCRIPT.parents[1], capture_output=True, text=True, check=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return float(figures["month_report_s"]["median"])
