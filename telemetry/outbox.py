"""The durable outbox: every record for the office is committed here before it counts as sent.

One SQLite file, one connection, used only by one dedicated thread, so the
event loop never blocks on disk and there is no write contention.

- ``seq`` is assigned inside the committing transaction, one above the last
  number used; on open that is the larger of ``max(seq)`` and ``meta.last_seq``,
  which every delete records (so an emptied table does not restart at 1). It is
  contiguous and strictly increasing across restarts and crashes: a record that
  never committed never had a number, and so never leaves a gap.
- Journal: WAL, so readers never wait and a commit is one sequential append.
  ``synchronous=FULL`` (default, ``outbox.synchronous``) fsyncs the WAL on every
  commit: a committed record survives power loss, which is the promise the bus
  makes. NORMAL would survive a crash of the daemon but may lose the last
  commits on power loss. The cost of FULL is kept small by committing telemetry
  in groups (``commit_interval_s``); events, reports and command results commit
  at once and their ``emit_*`` returns only after the commit.
- Rows are deleted only after the broker's PUBACK (:meth:`Outbox.ack`), in
  groups (every ``delete_interval_s`` or 2000 records): one small transaction
  instead of one per message keeps the disk writes low (SD cards wear). Acked
  rows are never offered again by this process; after a crash they are resent
  and the office drops them by ``seq``.
- An insert touches only the table's last page: no secondary index (the bound
  check scans, once a minute) and no counter row to update.
- Bounded by ``max_mb`` (payload bytes) and ``max_age_days``. Over the bound it
  drops, in this order: telemetry change samples (thinning the history to its
  keyframes), then keyframes, then events/reports, each oldest first, and
  commits a ``data_dropped`` event saying what went.
- A disk that refuses writes (full, read-only) is handled by the one storage
  policy (busd/storage.py): the outbox turns degraded, keeps telemetry and the
  records given to :meth:`Outbox.keep` (command answers) and the settings given
  to :meth:`Outbox.keep_meta` (the accepted plan version) in bounded memory,
  retries with back-off while its loop goes on beating, and reports to the
  storage alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import structlog

from busd.clock import Clock, utc_iso
from busd.config import BusdConfig, OutboxConfig, outbox_path
from busd.errors import BusdError, StorageError
from busd.event_catalog import CommandResult, DailyReport, DataDropped, Event, EventModel
from busd.storage import Backlog, Report, StoragePolicy
from busd.supervisor import ComponentContext

log = structlog.get_logger("telemetry.outbox")

Stream = Literal["telemetry", "event", "report", "cmd_result"]
STREAMS: tuple[Stream, ...] = ("telemetry", "event", "report", "cmd_result")

# Drop priority: lowest goes first when the outbox is over its bound.
PRIO_TELEMETRY_DELTA = 0
PRIO_TELEMETRY_FULL = 1
PRIO_DURABLE = 2

T = TypeVar("T")
# Durable records the disk refused (given to keep(): command answers), waiting in memory.
UNWRITTEN_CAPACITY = 1000
Item = tuple[Stream, str, float, int, str]  # stream, kind, ts, prio, body

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq    INTEGER PRIMARY KEY,
    stream TEXT    NOT NULL,
    kind   TEXT    NOT NULL,
    ts     REAL    NOT NULL,
    prio   INTEGER NOT NULL,
    size   INTEGER NOT NULL,
    body   TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class OutboxClosed(BusdError):
    """The outbox is closed (shutting down); nothing can be appended."""


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    stream: Stream
    kind: str
    ts: float
    body: str  # the record's ``data``, as compact JSON


def _dumps(data: Mapping[str, Any]) -> str:
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    # Text that is not Unicode (a lone surrogate) raises UnicodeEncodeError here, in the
    # caller, not in the insert after the buffered samples were taken (they were lost).
    text.encode("utf-8")
    return text


class Outbox:
    """Durable, bounded, ordered record store; a supervisor component and an EventSink."""

    name = "outbox"
    critical = True

    def __init__(
        self, *, path: Path, clock: Clock, config: OutboxConfig | None = None,
        on_storage: Report | None = None,
    ) -> None:
        """``on_storage(reason)`` is told when the disk refuses writes (None: it takes
        them again)."""
        self._path = Path(path)
        self._clock = clock
        self._cfg = config or OutboxConfig()
        self._max_bytes = int(self._cfg.max_mb * 1024 * 1024)
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None
        self._opened = asyncio.Event()
        self._closed = False
        # Telemetry waiting for the next group commit. Bounded: if the disk stalls
        # the oldest sample goes (counted); it had no seq yet, so no gap appears.
        self._pending: deque[tuple[float, int, str]] = deque(maxlen=self._cfg.telemetry_buffer)
        self._storage = StoragePolicy("outbox", clock=clock, report=on_storage)
        self._unwritten: Backlog[Item] = Backlog("outbox", UNWRITTEN_CAPACITY)
        # Settings given to keep_meta() the disk refused: the latest value of each key
        # (a handful of keys, so bounded), read back by get_meta, written by flush().
        self._unwritten_meta: dict[str, str] = {}
        self._new_records = asyncio.Event()
        self._acked: set[int] = set()  # PUBACKed, waiting for the next group delete
        self._last_seq = 0
        self._rows = 0
        self._bytes = 0
        self.counters: dict[str, int] = {
            "appended": 0, "acked": 0, "dropped_records": 0, "telemetry_overflow": 0,
            "commits": 0, "storage_errors": 0, "unwritten_dropped": 0,
        }
        self._log = log.bind(component="outbox", path=str(self._path))

    @classmethod
    def from_config(
        cls, config: BusdConfig, *, clock: Clock, on_storage: Report | None = None
    ) -> Outbox:
        return cls(path=outbox_path(config), clock=clock, config=config.outbox,
                   on_storage=on_storage)

    # --- lifecycle ----------------------------------------------------------------

    async def open(self) -> None:
        if self._db is not None:
            return
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        await self._call(self._open_sync)
        self._opened.set()
        self._log.info("outbox_opened", last_seq=self._last_seq, rows=self._rows,
                       bytes=self._bytes)

    def _open_sync(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a commit is
        # exactly where this code says it is.
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self._cfg.synchronous}")
        # After a power cut the file must still be whole; say so loudly if not
        # (WAL with synchronous=FULL makes this a hardware fault, not a crash).
        verdict = db.execute("PRAGMA quick_check").fetchone()[0]
        self.integrity_ok = verdict == "ok"
        if not self.integrity_ok:
            self._log.error("outbox_integrity_failed", path=str(self._path), verdict=verdict)
        db.executescript(_SCHEMA)
        row = db.execute("SELECT value FROM meta WHERE key='last_seq'").fetchone()
        last = int(row[0]) if row else 0
        top = db.execute("SELECT max(seq) FROM outbox").fetchone()[0]
        self._last_seq = max(last, top or 0)
        self._rows, self._bytes = db.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM outbox").fetchone()
        self._db = db

    async def close(self) -> None:
        """Commit buffered telemetry and close; safe to call twice."""
        if self._db is None:
            return
        try:
            await self.flush()
            await self.purge()
        except StorageError as err:
            # Stopping on a full disk: acknowledged records are sent again after the
            # restart (the office drops the duplicates); unwritten samples are lost.
            self._log.error("outbox_close_unwritten", error=str(err),
                            telemetry_lost=len(self._pending),
                            records_lost=len(self._unwritten),
                            settings_lost=sorted(self._unwritten_meta))
        finally:
            self._closed = True
            self._opened.clear()
            await self._call(self._close_sync)
            assert self._executor is not None
            self._executor.shutdown(wait=True)
            self._executor = None
            self._log.info("outbox_closed", last_seq=self._last_seq, rows=self._rows)

    def _close_sync(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    async def __aenter__(self) -> Outbox:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def run(self, ctx: ComponentContext) -> None:
        """Group-commit telemetry and enforce the bound until cancelled, then flush and close."""
        await self.open()
        ctx.ready()
        next_check = self._clock.monotonic()
        next_purge = next_check + self._cfg.delete_interval_s

        async def housekeeping() -> None:
            nonlocal next_check, next_purge
            await self.flush()
            if self._clock.monotonic() >= next_purge:
                await self.purge()
                next_purge = self._clock.monotonic() + self._cfg.delete_interval_s
            if self._clock.monotonic() >= next_check:
                await self.enforce_bounds()
                next_check = self._clock.monotonic() + self._cfg.retention_check_s

        try:
            while True:
                await self._clock.sleep(self._cfg.commit_interval_s)
                # Live state still flows on a full disk; telemetry, kept records and
                # acknowledgements wait in memory, and the loop beats while it waits.
                if not await self._storage.attempt(housekeeping, ctx):
                    self.counters["storage_errors"] += 1
                    await self._storage.wait(ctx)
                self.counters["unwritten_dropped"] = self._unwritten.dropped
                ctx.counters.update(self.counters, rows=self._rows, bytes=self._bytes,
                                    last_seq=self._last_seq, unwritten=len(self._unwritten))
                ctx.beat()
        finally:
            await asyncio.shield(self.close())

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise OutboxClosed("outbox is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _ready(self) -> None:
        if self._closed:
            raise OutboxClosed("outbox is closed")
        if not self._opened.is_set():
            # Components start together; a record made before the outbox opened waits for it.
            async with asyncio.timeout(30):
                await self._opened.wait()

    # --- writing ------------------------------------------------------------------

    def add_telemetry(
        self, data: Mapping[str, Any], *, full: bool, ts: float | None = None
    ) -> None:
        """Buffer a telemetry sample; it gets its seq at the next group commit."""
        if len(self._pending) == self._pending.maxlen:
            self.counters["telemetry_overflow"] += 1
        prio = PRIO_TELEMETRY_FULL if full else PRIO_TELEMETRY_DELTA
        self._pending.append((self._clock.now() if ts is None else ts, prio, _dumps(data)))

    async def append(
        self, stream: Stream, kind: str, data: EventModel | Mapping[str, Any]
    ) -> int:
        """Commit one record (after any buffered telemetry, to keep seq in time order).

        ``data`` is a catalogue model (busd/event_catalog.py), serialised here at the
        edge; a plain mapping is stored as it is (tests, tools). Neither may hold NaN
        or infinity: they are not JSON."""
        if stream not in STREAMS or stream == "telemetry":
            raise ValueError(f"append() takes event, report or cmd_result, not {stream!r}")
        if not kind or "/" in kind or "+" in kind or "#" in kind:
            raise ValueError(f"bad record kind {kind!r}")
        body = data.to_json() if isinstance(data, EventModel) else _dumps(data)
        await self._ready()
        items = self._take_pending()
        items.append((stream, kind, self._clock.now(), PRIO_DURABLE, body))
        try:
            seqs = await self._call(self._insert_sync, items)
        except StorageError:
            self._restore_pending(items[:-1])
            raise
        self._new_records.set()
        return seqs[-1]

    async def keep(
        self, stream: Stream, kind: str, data: EventModel | Mapping[str, Any]
    ) -> None:
        """Commit one record, or keep it in memory while the disk refuses it (bounded:
        past ``UNWRITTEN_CAPACITY`` the oldest kept record goes, counted and logged).
        Never raises StorageError: for a writer that must go on (the uplink's answers
        to commands); the run loop commits what was kept once the disk takes it."""
        try:
            await self.append(stream, kind, data)
        except StorageError as err:
            body = data.to_json() if isinstance(data, EventModel) else _dumps(data)
            self._unwritten.append((stream, kind, self._clock.now(), PRIO_DURABLE, body))
            self._storage.refused(err)
            self._log.warning("outbox_record_kept_in_memory", kind=kind,
                              unwritten=len(self._unwritten))

    @property
    def unwritten(self) -> int:
        """Records kept in memory because the disk refused them."""
        return len(self._unwritten)

    async def emit_event(self, event: Event) -> int:
        return await self.append("event", event.kind, event)

    async def emit_report(self, report: DailyReport) -> int:
        return await self.append("report", report.kind, report)

    async def emit_result(self, result: CommandResult) -> int:
        """The answer to a command, for ``cmd/result``."""
        return await self.append("cmd_result", result.kind, result)

    async def flush(self) -> None:
        """Commit buffered telemetry (and records and settings kept while the disk refused
        them) now."""
        if self._db is None:
            return
        for key, value in list(self._unwritten_meta.items()):
            await self._call(self._set_meta_sync, key, value)
            if self._unwritten_meta.get(key) == value:  # not replaced meanwhile
                del self._unwritten_meta[key]
        if not (self._pending or self._unwritten):
            return
        items = self._take_pending()
        try:
            await self._call(self._insert_sync, items)
        except StorageError:
            self._restore_pending(items)
            raise
        self._new_records.set()

    def _restore_pending(self, items: list[Item]) -> None:
        """Put what could not be written back in front of what came since."""
        newer = list(self._pending)
        self._pending.clear()
        kept = [item for item in items if item[0] != "telemetry"]
        if kept:
            self._unwritten.extend([*kept, *self._unwritten.take()])
        for stream, _, ts, prio, body in items:
            if stream == "telemetry":
                self._pending.append((ts, prio, body))
        self._pending.extend(newer)  # the bounded buffer drops the oldest beyond its size

    def _take_pending(self) -> list[Item]:
        """Records kept from a full disk first (they are older), then buffered telemetry."""
        items: list[Item] = self._unwritten.take()
        items += [("telemetry", "sample", ts, prio, body) for ts, prio, body in self._pending]
        self._pending.clear()
        return items

    def _insert_sync(self, items: list[Item]) -> list[int]:
        db = self._require_db()
        seq = self._last_seq
        rows = []
        for stream, kind, ts, prio, body in items:
            seq += 1
            rows.append((seq, stream, kind, ts, prio, len(body.encode()), body))
        with self._transaction(db):
            db.executemany("INSERT INTO outbox VALUES (?,?,?,?,?,?,?)", rows)
        # Only after the commit do the numbers exist.
        self._last_seq = seq
        self._rows += len(rows)
        self._bytes += sum(r[5] for r in rows)
        self.counters["appended"] += len(rows)
        self.counters["commits"] += 1
        return [r[0] for r in rows]

    @contextlib.contextmanager
    def _transaction(self, db: sqlite3.Connection) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT; a disk that refuses the write becomes StorageError.

        When COMMIT itself fails (SQLITE_FULL), SQLite may already have rolled the
        transaction back; a second ROLLBACK would raise and hide the real cause.
        """
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as err:  # disk full, read-only, I/O error
            raise StorageError(f"cannot write the outbox {self._path}: {err}") from err

    def _require_db(self) -> sqlite3.Connection:
        if self._db is None:
            raise OutboxClosed("outbox is not open")
        return self._db

    # --- reading and acknowledging --------------------------------------------------

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def rows(self) -> int:
        """Records not yet acknowledged by the broker."""
        return self._rows - len(self._acked)

    @property
    def bytes(self) -> int:
        return self._bytes

    async def wait_new(self, after_seq: int) -> None:
        """Return once a record with seq > ``after_seq`` is committed."""
        while self._last_seq <= after_seq:
            self._new_records.clear()
            await self._new_records.wait()

    async def peek(self, *, after_seq: int, limit: int) -> list[Row]:
        """The oldest committed records with seq > ``after_seq``."""
        await self._ready()
        return await self._call(self._peek_sync, after_seq, limit)

    def _peek_sync(self, after_seq: int, limit: int) -> list[Row]:
        cur = self._require_db().execute(
            "SELECT seq, stream, kind, ts, body FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [Row(*r) for r in cur if r[0] not in self._acked]

    async def ack(self, seqs: Iterable[int]) -> None:
        """The broker acknowledged these records: they go with the next group delete."""
        self._acked.update(seqs)
        if len(self._acked) >= 2000:
            # A full disk is the run loop's to report; the uplink just goes on.
            with contextlib.suppress(StorageError):
                await self.purge()

    async def purge(self) -> None:
        """Delete acknowledged records now."""
        if not self._acked or self._db is None:
            return
        batch = sorted(self._acked)
        await self._call(self._delete_sync, batch)
        self._acked.difference_update(batch)

    def _delete_sync(self, seqs: list[int]) -> None:
        db = self._require_db()
        with self._transaction(db):
            if seqs[-1] - seqs[0] + 1 == len(seqs):  # the usual case: one contiguous run
                where, args = "seq BETWEEN ? AND ?", (seqs[0], seqs[-1])
                freed = db.execute(
                    f"SELECT count(*), coalesce(sum(size),0) FROM outbox WHERE {where}", args
                ).fetchone()
                db.execute(f"DELETE FROM outbox WHERE {where}", args)
            else:
                freed = [0, 0]
                for seq in seqs:
                    got = db.execute("SELECT size FROM outbox WHERE seq=?", (seq,)).fetchone()
                    if got:
                        freed[0] += 1
                        freed[1] += got[0]
                        db.execute("DELETE FROM outbox WHERE seq=?", (seq,))
            # The table may now be empty: keep the numbering in the same transaction.
            db.execute("INSERT OR REPLACE INTO meta VALUES ('last_seq', ?)",
                       (str(self._last_seq),))
        self._rows -= freed[0]
        self._bytes -= freed[1]
        self.counters["acked"] += freed[0]

    # --- small persistent settings (plan version, retained plan) -----------------------

    async def get_meta(self, key: str) -> str | None:
        await self._ready()
        if key in self._unwritten_meta:  # kept from a full disk: newer than the file's
            return self._unwritten_meta[key]
        return await self._call(self._get_meta_sync, key)

    def _get_meta_sync(self, key: str) -> str | None:
        row = self._require_db().execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    async def set_meta(self, key: str, value: str) -> None:
        if key == "last_seq":
            raise ValueError("last_seq belongs to the outbox")
        await self._ready()
        await self._call(self._set_meta_sync, key, value)

    async def keep_meta(self, key: str, value: str) -> None:
        """Store a setting, or keep it in memory while the disk refuses it (as :meth:`keep`
        does records): never raises StorageError, for a decision already taken (a plan
        the planner accepted); :meth:`get_meta` sees it at once, the run loop writes it
        once the disk takes it."""
        try:
            await self.set_meta(key, value)
        except StorageError as err:
            self._unwritten_meta[key] = value
            self._storage.refused(err)
            self._log.warning("outbox_setting_kept_in_memory", key=key)
        else:
            self._unwritten_meta.pop(key, None)  # an older kept value must not win later

    def _set_meta_sync(self, key: str, value: str) -> None:
        db = self._require_db()
        with self._transaction(db):
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # --- the bound --------------------------------------------------------------------

    async def enforce_bounds(self) -> int:
        """Drop what is over the size or age bound and record a data_dropped event; returns
        the number of records dropped."""
        await self._ready()
        await self.flush()
        await self.purge()
        cutoff = self._clock.now() - self._cfg.max_age_days * 86400
        dropped = await self._call(self._enforce_sync, cutoff)
        if not dropped:
            return 0
        total = sum(d.records for d in dropped)
        self.counters["dropped_records"] += total
        for summary in dropped:
            self._log.warning("outbox_dropped", **summary.to_dict())
            await self.emit_event(summary)
        return total

    def _enforce_sync(self, cutoff: float) -> list[DataDropped]:
        db = self._require_db()
        results: list[tuple[DataDropped, int]] = []
        with self._transaction(db):
            aged = db.execute(
                "SELECT seq, stream, ts, size FROM outbox WHERE ts < ? ORDER BY seq", (cutoff,)
            ).fetchall()
            if aged:
                db.execute("DELETE FROM outbox WHERE ts < ?", (cutoff,))
                results.append(self._summary("max_age_days", aged))
            over = self._bytes - sum(r[3] for r in aged) - self._max_bytes
            victims: list[tuple[int, str, float, int]] = []
            for prio in (PRIO_TELEMETRY_DELTA, PRIO_TELEMETRY_FULL, PRIO_DURABLE):
                if over <= 0:
                    break
                # Keep the newest record of all (it may be the data_dropped report itself).
                cur = db.execute(
                    "SELECT seq, stream, ts, size FROM outbox WHERE prio=? AND seq < ? "
                    "ORDER BY seq", (prio, self._last_seq))
                for row in cur:
                    victims.append(row)
                    over -= row[3]
                    if over <= 0:
                        break
            if victims:
                db.executemany("DELETE FROM outbox WHERE seq=?", [(v[0],) for v in victims])
                results.append(self._summary("max_mb", victims))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('last_seq', ?)",
                       (str(self._last_seq),))
        for group, size in results:
            self._rows -= group.records
            self._bytes -= size
        return [group for group, _ in results]

    @staticmethod
    def _summary(
        reason: Literal["max_age_days", "max_mb"], rows: list[tuple[int, str, float, int]]
    ) -> tuple[DataDropped, int]:
        """The ``data_dropped`` event for ``rows``, and the bytes they held."""
        by_stream: dict[str, int] = {}
        for _, stream, _, _ in rows:
            by_stream[stream] = by_stream.get(stream, 0) + 1
        event = DataDropped.model_validate({
            "reason": reason,
            "records": len(rows),
            "by_stream": by_stream,
            "first_seq": min(r[0] for r in rows),
            "last_seq": max(r[0] for r in rows),
            "from": utc_iso(min(r[2] for r in rows)),
            "to": utc_iso(max(r[2] for r in rows)),
        })
        return event, sum(r[3] for r in rows)

