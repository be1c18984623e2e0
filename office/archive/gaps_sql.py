"""Gap detection as one SQL query, the same for both back ends (only placeholders differ).

A gap is a run of ``seq`` missing between two archived records of a bus. ``lead(seq)`` over the
scanned rows finds it; but a day's query scans only that day's rows (one partition, by ``ts``),
and a bus's next record may lie outside them: after midnight, or, when the bus's clock was
corrected backwards, even on the day before. So every candidate (a jump inside the scan, or a
bus's last record in it) has its true successor looked up by ``(bus, seq)`` in the whole
archive, an index probe per candidate. Candidates are few (gaps are rare, plus one per bus), so
a day's query costs one day's scan, not the archive's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def gaps_query(*, by_bus: bool, by_day: bool, param: Callable[[str], str]) -> str:
    """Rows (bus, seq before, seq after, ts before, ts after). Parameters named ``bus``,
    ``start`` and ``end`` (``param`` spells a placeholder in the back end's style)."""
    conditions = ["1 = 1"]
    if by_bus:
        conditions.append(f"bus = {param('bus')}")
    if by_day:
        conditions.append(f"ts >= {param('start')} AND ts < {param('end')}")
    return f"""
WITH scanned AS (
    SELECT bus, seq, ts, lead(seq) OVER (PARTITION BY bus ORDER BY seq) AS next_seq
    FROM records WHERE {' AND '.join(conditions)}
),
candidates AS (
    SELECT s.bus, s.seq, s.ts,
           (SELECT min(r.seq) FROM records r WHERE r.bus = s.bus AND r.seq > s.seq) AS next_seq
    FROM scanned s WHERE s.next_seq IS NULL OR s.next_seq > s.seq + 1
)
SELECT c.bus, c.seq, c.next_seq, c.ts,
       (SELECT r.ts FROM records r WHERE r.bus = c.bus AND r.seq = c.next_seq) AS next_ts
FROM candidates c WHERE c.next_seq > c.seq + 1
ORDER BY c.bus, c.seq
"""


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants a local day starts and ends (23 or 25 hours on DST changes)."""
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)
