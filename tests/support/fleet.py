"""The fleet against the office: ingest worker processes, and what the archive holds per bus.

Shared by tests/test_fleet_office.py, benchmarks/office_ingest.py and benchmarks/ingest_cpu.py.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

from office.archive.base import sqlite_path
from tests.support.mosquitto import REPO

# One query for both back ends: every bus's records, distinct seqs, and their range.
_TALLY = ("SELECT bus, count(*), count(DISTINCT seq), min(seq), max(seq) FROM records "
          "GROUP BY bus")


@dataclass(frozen=True)
class Tally:
    records: int
    distinct: int
    first: int
    last: int


@dataclass(frozen=True)
class Check:
    """The archive against what the buses produced (seq 1..last_seq each)."""

    expected: int
    archived: int
    lost: int  # seqs in 1..last_seq that are not archived
    duplicates: int  # rows beyond one per (bus, seq)
    extra: int  # seqs above a bus's last_seq, or buses that do not exist

    @property
    def exact(self) -> bool:
        return self.lost == 0 and self.duplicates == 0 and self.extra == 0


def tally(url: str) -> dict[str, Tally]:
    if url.startswith("sqlite:"):
        with sqlite3.connect(sqlite_path(url), timeout=30) as db:
            rows = db.execute(_TALLY).fetchall()
    else:
        import psycopg

        with psycopg.connect(url) as conn:
            rows = conn.execute(_TALLY).fetchall()
    return {bus: Tally(n, d, lo, hi) for bus, n, d, lo, hi in rows}


def kinds(url: str) -> set[str]:
    """Every record kind in the archive."""
    sql = "SELECT DISTINCT kind FROM records"
    if url.startswith("sqlite:"):
        with sqlite3.connect(sqlite_path(url), timeout=30) as db:
            return {str(k) for (k,) in db.execute(sql)}
    import psycopg

    with psycopg.connect(url) as conn:
        return {str(k) for (k,) in conn.execute(sql)}


def count(url: str, where: str = "TRUE", args: tuple[object, ...] = ()) -> int:
    """Records matching ``where`` (placeholders: ``?`` for SQLite, ``%s`` for PostgreSQL)."""
    sql = f"SELECT count(*) FROM records WHERE {where}"
    if url.startswith("sqlite:"):
        with sqlite3.connect(sqlite_path(url), timeout=30) as db:
            return int(db.execute(sql.replace("TRUE", "1"), args).fetchone()[0])
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(sql, args).fetchone()
        assert row is not None
        return int(row[0])


def check(url: str, last_seqs: dict[str, int]) -> Check:
    """Compare the archive with every bus's last seq. A bus's distinct seqs within 1..last_seq
    are counted exactly when min >= 1 and max <= last_seq (else the excess is ``extra``)."""
    found = tally(url)
    lost = duplicates = extra = archived = 0
    for bus, t in found.items():
        archived += t.records
        duplicates += t.records - t.distinct
        if bus not in last_seqs:
            extra += t.distinct
    for bus, last in last_seqs.items():
        mine = found.get(bus)
        if mine is None:
            lost += last
            continue
        if mine.last > last or mine.first < 1:
            extra += 1  # at least one; the archive holds seqs the bus never made
        lost += max(0, last - mine.distinct)
    return Check(expected=sum(last_seqs.values()), archived=archived, lost=lost,
                 duplicates=duplicates, extra=extra)


def ingest_process(port: int, archive_url: str, client_id: str, *extra: str,
                   log: Path | None = None) -> subprocess.Popen[bytes]:
    """``busd office ingest`` as its own process (its log to ``log``, or discarded)."""
    out = log.open("ab") if log is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "busd.cli", "office", "ingest", "--host", "127.0.0.1",
             "--port", str(port), "--archive", archive_url, "--client-id", client_id,
             "--log-level", "warning", *extra],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    finally:
        if log is not None and not isinstance(out, int):
            out.close()


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ingest_restart_s() -> float:
    """The shipped ingest unit's ``RestartSec`` in seconds: how soon systemd starts a worker
    again after it died (the benchmark waits as long before its restart)."""
    text = (REPO / "systemd" / "busd-office-ingest@.service").read_text(encoding="utf-8")
    found = re.search(r"^RestartSec=([0-9.]+)(ms|s)?$", text, re.M)
    if found is None:
        raise ValueError("the ingest unit has no RestartSec")
    value = float(found.group(1))
    return value / 1000 if found.group(2) == "ms" else value


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a process and its children so far."""
    try:
        root = psutil.Process(pid)
        total = 0.0
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                total += t.user + t.system
        return total
    except psutil.Error:
        return 0.0
