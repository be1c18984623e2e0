"""The municipality's local day of a stored UTC time, in SQL, for both back ends.

PostgreSQL knows time zones: ``(ts AT TIME ZONE :tz)::date``. SQLite does not; but a period
of a month has at most a couple of UTC offsets (a DST change), so its local day is a CASE over
the period's constant-offset stretches, each ``date(ts, '+N minutes')``. SQLite keeps times as
UTC ISO text with microseconds; they are cut to whole seconds first, because SQLite rounds
``.999999`` up to the next second (and 21:59:59.999999Z would land on the next day).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from office.archive.derived.tables import SQLITE, Dialect


def offset_stretches(zone: ZoneInfo, start: datetime,
                     end: datetime) -> list[tuple[datetime, int]]:
    """(stretch's end, UTC offset in minutes) for each constant-offset stretch of
    [start, end); the last stretch ends at ``end``."""
    def offset(at: datetime) -> int:
        delta = at.astimezone(zone).utcoffset()
        return int((delta or timedelta()).total_seconds() // 60)

    stretches: list[tuple[datetime, int]] = []
    current = offset(start)
    at = start
    step = timedelta(hours=1)
    while at < end:
        nxt = min(at + step, end)
        if offset(nxt) != current and nxt < end:
            low, high = at, nxt  # the change lies in (low, high]: find its second
            while high - low > timedelta(seconds=1):
                mid = low + (high - low) / 2
                low, high = (mid, high) if offset(mid) == current else (low, mid)
            stretches.append((high, current))
            current = offset(high)
        at = nxt
    stretches.append((end, current))
    return stretches


def local_day_sql(column: str, dialect: Dialect, zone: ZoneInfo, start: datetime,
                  end: datetime) -> str:
    """An SQL expression for ``column``'s local day; PostgreSQL's needs the ``tz`` parameter.

    Valid for times in [start, end) (the report's period); outside, the edge offsets apply."""
    if dialect is not SQLITE:
        return f"({column} AT TIME ZONE :tz)::date"
    cut = f"substr({column}, 1, 19)"
    stretches = offset_stretches(zone, start, end)
    if len(stretches) == 1:
        return f"date({cut}, '{stretches[0][1]:+d} minutes')"
    whens = " ".join(
        f"WHEN {column} < '{SQLITE.value(until)}' THEN date({cut}, '{minutes:+d} minutes')"
        for until, minutes in stretches[:-1])
    return f"(CASE {whens} ELSE date({cut}, '{stretches[-1][1]:+d} minutes') END)"
