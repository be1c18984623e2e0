"""Read-only looks into the daemon's SQLite files from the scenario's side.

The daemon is another process writing these files; every look opens them
read-only with a short timeout and treats "not there yet" or "busy" as unknown.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any


def monitoring_rows(db: Path, table: str) -> list[dict[str, Any]]:
    """Rows of the daemon's monitoring store (read-only), for reports and tests."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(f"SELECT * FROM {table}")]
    finally:
        con.close()


def count_rows(db: Path, table: str) -> int | None:
    """Rows of a table in another process's SQLite (read-only); None while it does not exist."""
    if not db.exists():
        return None
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.2)
        try:
            return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return None


def delivered_seqs(db: Path) -> set[int]:
    """Seqs the daemon numbered and no longer holds (handed to the broker); empty if unknown."""
    if not db.exists():
        return set()
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.5)
        try:
            row = con.execute("SELECT value FROM meta WHERE key='last_seq'").fetchone()
            pending = {int(r[0]) for r in con.execute("SELECT seq FROM outbox")}
        finally:
            con.close()
    except sqlite3.Error:
        return set()
    last = max(int(row[0]) if row else 0, max(pending, default=0))
    return set(range(1, last + 1)) - pending
