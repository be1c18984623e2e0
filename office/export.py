"""``busd office --export-csv``: every archived record as CSV, for a spreadsheet."""

from __future__ import annotations

import csv
from pathlib import Path

from office.archive import Archive

COLUMNS = ("bus", "seq", "ts", "schema", "kind", "topic", "received", "data")


async def export_csv(archive: Archive, out: Path) -> int:
    """Write every record, by bus and seq; returns how many. One bus in memory at a time."""
    n = 0
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for bus in await archive.buses():
            for r in await archive.records(bus):
                writer.writerow((r.bus, r.seq, r.ts.isoformat(), r.schema_, r.kind, r.topic,
                                 r.received.isoformat(), r.data_json()))
                n += 1
    return n
