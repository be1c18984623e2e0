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
- Rows leave the ``outbox`` table only after the broker's PUBACK (:meth:`Outbox.ack`),
  in groups (every ``delete_interval_s`` or 2000 records): one small transaction
  instead of one per message keeps the disk writes low (SD cards wear). Acked
  rows are never offered again by the drain of this process; after a crash they
  are resent and the office drops them by ``seq``.
- A PUBACK proves that the broker took a record, not that the office archived it
  (no subscriber, an ingest worker's session expired). So an acknowledged row is
  *moved*, in that same transaction, to a second table, ``sent``, and kept there
  for ``keep_sent_days`` (7) and at most ``keep_sent_mb`` (50), whichever is hit
  first, oldest first: :meth:`Outbox.request_resend` (``cmd/resend``) queues a
  range of it to be published again, and :meth:`Outbox.peek_resend` gives the
  uplink those rows once the live backlog is empty. A separate table, not a
  ``sent`` flag: the drain's query (``seq > ?`` on ``outbox``) walks only records
  not yet sent however many sent ones are kept, and an insert still touches only
  the last page of a table with no secondary index. ``sent`` has one index, on
  ``sent_at``, so the once-a-minute expiry does not read the kept bodies.
  The resend queue is in memory (bounded by ``RESEND_MAX_QUEUED`` records): a
  restart forgets it, and the office asks again (a resend is idempotent).
- An insert into ``outbox`` touches only the table's last page: no secondary index (the
  bound check scans, once a minute) and no counter row to update.
- Bounded by ``max_mb`` (payload bytes, sent and unsent) and ``max_age_days`` (unsent).
  When room is needed, kept ``sent`` rows go first (oldest first, no loss: the broker
  had them); then, in this order: telemetry change samples (thinning the history to
  its keyframes), then keyframes, then events/reports, each oldest first, and
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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
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
# Records a cmd/resend may have waiting at once (ten of the largest ranges).
RESEND_MAX_QUEUED = 1_000_000
# Missing ranges a resend answer lists at most (thinned telemetry leaves one per sample).
RESEND_MAX_RANGES = 100

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
CREATE TABLE IF NOT EXISTS sent (
    seq     INTEGER PRIMARY KEY,
    stream  TEXT    NOT NULL,
    kind    TEXT    NOT NULL,
    ts      REAL    NOT NULL,
    prio    INTEGER NOT NULL,
    size    INTEGER NOT NULL,
    body    TEXT    NOT NULL,
    sent_at REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS sent_by_time ON sent (sent_at);
"""


class OutboxClosed(BusdError):
    """The outbox is closed (shutting down); nothing can be appended."""


class ResendRefused(BusdError):
    """A resend that cannot be queued now (the queue is full); the message says why."""


@dataclass(frozen=True, slots=True)
class SentGone:
    """Kept acknowledged records the window or the bound removed (no loss: logged only)."""

    reason: str
    records: int
    size: int
    first_seq: int
    last_seq: int


@dataclass(frozen=True, slots=True)
class ResendPlan:
    """What the outbox will do for a resend of ``first_seq``..``last_seq``."""

    resent: int  # records kept after their PUBACK, queued to be published again
    pending: int  # records not yet acknowledged: the drain sends them anyway
    missing: tuple[tuple[int, int], ...]  # ranges no longer here (at most RESEND_MAX_RANGES)
    missing_records: int  # every missing record, listed or not
    last_made: int  # the newest seq this bus has made: above it, nothing was ever missing


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    stream: Stream
    kind: str
    ts: float
    body: str  # the record's ``data``, as compact JSON


@dataclass(frozen=True, slots=True)
class PeekRange:
    """Records with ``after_seq`` < seq <= ``upto`` (None: no upper end), at most ``limit``."""

    after_seq: int
    limit: int
    upto: int | None = None


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
        self._acked: set[int] = set()  # PUBACKed, waiting for the next group move to `sent`
        self._keep_sent = self._cfg.keep_sent_days > 0 and self._cfg.keep_sent_mb > 0
        self._keep_sent_bytes = int(self._cfg.keep_sent_mb * 1024 * 1024)
        # Ranges [first, last] of `sent` to publish again: sorted, disjoint, bounded.
        self._resend: list[tuple[int, int]] = []
        self._last_seq = 0
        self._rows = 0
        self._bytes = 0
        self._sent_rows = 0
        self._sent_bytes = 0
        self.counters: dict[str, int] = {
            "appended": 0, "acked": 0, "dropped_records": 0, "telemetry_overflow": 0,
            "commits": 0, "storage_errors": 0, "unwritten_dropped": 0,
            "sent_expired": 0, "resend_requested": 0,
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
        top_sent = db.execute("SELECT max(seq) FROM sent").fetchone()[0]
        self._last_seq = max(last, top or 0, top_sent or 0)
        self._rows, self._bytes = db.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM outbox").fetchone()
        self._sent_rows, self._sent_bytes = db.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM sent").fetchone()
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
                                    sent_rows=self._sent_rows, sent_bytes=self._sent_bytes,
                                    resend_waiting=self.resend_waiting,
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
        """Payload bytes of the records not yet moved to ``sent``."""
        return self._bytes

    @property
    def sent_rows(self) -> int:
        """Acknowledged records kept for cmd/resend."""
        return self._sent_rows

    @property
    def sent_bytes(self) -> int:
        return self._sent_bytes

    @property
    def resend_waiting(self) -> int:
        """Records (at most) still queued to be published again."""
        return sum(last - first + 1 for first, last in self._resend)

    async def wait_new(self, after_seq: int, *, resends: bool = True) -> None:
        """Return once a record with seq > ``after_seq`` is committed, or (``resends``) a
        resend is queued."""
        while self._last_seq <= after_seq and not (resends and self._resend):
            self._new_records.clear()
            await self._new_records.wait()

    async def peek(self, *, after_seq: int, limit: int, upto: int | None = None) -> list[Row]:
        """The oldest committed records not yet acknowledged with seq > ``after_seq`` (and at
        most ``upto``): up to ``limit`` of them; none means there are none."""
        await self._ready()
        return await self._call(self._peek_sync, after_seq, limit, upto)

    def _peek_sync(self, after_seq: int, limit: int, upto: int | None) -> list[Row]:
        # Acknowledged rows wait in the table for the next group delete: read past as many as
        # there are, so they never hide the unacknowledged rows behind them (a peek that gave
        # none while some waited further on would end a drain early).
        acked = self._acked
        cur = self._require_db().execute(
            "SELECT seq, stream, kind, ts, body FROM outbox WHERE seq > ? AND seq <= ? "
            "ORDER BY seq LIMIT ?",
            (after_seq, upto if upto is not None else 2**63 - 1, limit + len(acked)),
        )
        # Lazily: the cursor stops stepping at the limit-th unacknowledged row.
        return [Row(*r) for r in islice((r for r in cur if r[0] not in acked), limit)]

    async def peek_first(self, ranges: Sequence[PeekRange]) -> tuple[int, list[Row]]:
        """The first of ``ranges`` that holds records not yet acknowledged: (its index, its
        oldest records as :meth:`peek` gives them); (-1, []) when none does. One trip to the
        outbox's thread for all of them: the drain asks for live records and, only when none
        wait, a backlog batch, and every trip waits its turn behind the other work there."""
        await self._ready()
        return await self._call(self._peek_first_sync, tuple(ranges))

    def _peek_first_sync(self, ranges: tuple[PeekRange, ...]) -> tuple[int, list[Row]]:
        for index, wanted in enumerate(ranges):
            rows = self._peek_sync(wanted.after_seq, wanted.limit, wanted.upto)
            if rows:
                return index, rows
        return -1, []

    async def seq_before(self, ts: float) -> int:
        """The last seq made before ``ts``: the newest unsent record older than ``ts``; when
        every unsent record is as new, the seq before the oldest; with none, the last seq."""
        await self._ready()
        return await self._call(self._seq_before_sync, ts)

    def _seq_before_sync(self, ts: float) -> int:
        db = self._require_db()
        # Backwards along the primary key: stops at the first old row, reading only the new.
        row = db.execute("SELECT seq FROM outbox WHERE ts < ? ORDER BY seq DESC LIMIT 1",
                         (ts,)).fetchone()
        if row is None:
            row = db.execute("SELECT min(seq) - 1 FROM outbox").fetchone()
        return self._last_seq if row is None or row[0] is None else min(int(row[0]),
                                                                         self._last_seq)

    async def oldest_unsent_ts(self) -> float | None:
        """When the oldest record not yet acknowledged was made (None: nothing waits)."""
        await self._ready()
        return await self._call(self._oldest_sync)

    def _oldest_sync(self) -> float | None:
        # In seq order, lazily: acked rows awaiting the group delete are few and first.
        for seq, ts in self._require_db().execute("SELECT seq, ts FROM outbox ORDER BY seq"):
            if seq not in self._acked:
                return float(ts)
        return None

    async def ack(self, seqs: Iterable[int]) -> None:
        """The broker acknowledged these records: they go with the next group delete."""
        self._acked.update(seqs)
        if len(self._acked) >= 2000:
            # A full disk is the run loop's to report; the uplink just goes on.
            with contextlib.suppress(StorageError):
                await self.purge()

    async def purge(self) -> None:
        """Move acknowledged records to ``sent`` now (delete them when none are kept)."""
        if not self._acked or self._db is None:
            return
        batch = sorted(self._acked)
        await self._call(self._delete_sync, batch, self._clock.now())
        self._acked.difference_update(batch)

    def _delete_sync(self, seqs: list[int], now: float) -> None:
        db = self._require_db()
        # Kept rows are copied in the deleting transaction: a row is in one table or the other.
        keep = ("INSERT OR IGNORE INTO sent SELECT seq, stream, kind, ts, prio, size, body, ? "
                "FROM outbox WHERE ")
        with self._transaction(db):
            # In contiguous runs: the live and the backlog lanes (telemetry/uplink.py) ack
            # interleaved ranges, each of them contiguous.
            freed = [0, 0]
            for first, last in _runs(seqs):
                args = (first, last)
                count, size = db.execute(
                    "SELECT count(*), coalesce(sum(size),0) FROM outbox "
                    "WHERE seq BETWEEN ? AND ?", args).fetchone()
                freed[0] += count
                freed[1] += size
                if self._keep_sent:
                    db.execute(keep + "seq BETWEEN ? AND ?", (now, *args))
                db.execute("DELETE FROM outbox WHERE seq BETWEEN ? AND ?", args)
            # The table may now be empty: keep the numbering in the same transaction.
            db.execute("INSERT OR REPLACE INTO meta VALUES ('last_seq', ?)",
                       (str(self._last_seq),))
        self._rows -= freed[0]
        self._bytes -= freed[1]
        if self._keep_sent:
            self._sent_rows += freed[0]
            self._sent_bytes += freed[1]
        self.counters["acked"] += freed[0]

    # --- resend (cmd/resend) ----------------------------------------------------------------

    async def request_resend(self, first_seq: int, last_seq: int) -> ResendPlan:
        """Queue the kept records of ``first_seq``..``last_seq`` to be published again.

        Idempotent: a range already queued is queued once. Raises :class:`ResendRefused`
        when the queue cannot take the range."""
        await self._ready()
        if first_seq > last_seq:
            raise ValueError("first_seq is above last_seq")
        # Records acknowledged since the last group move are in `sent` after this.
        with contextlib.suppress(StorageError):  # on a full disk they count as pending
            await self.purge()
        kept, present = await self._call(self._resend_scan_sync, first_seq, last_seq)
        missing: list[tuple[int, int]] = []
        missing_records = 0
        expect = first_seq
        for seq in [*present, last_seq + 1]:
            if seq > expect:
                missing_records += seq - expect
                if len(missing) < RESEND_MAX_RANGES:
                    missing.append((expect, seq - 1))
            expect = seq + 1
        if kept:
            lo, hi = kept[0], kept[-1]
            merged = _add_range(self._resend, lo, hi)
            waiting = sum(b - a + 1 for a, b in merged)
            if waiting > RESEND_MAX_QUEUED:
                raise ResendRefused(
                    f"the resend queue is full ({self.resend_waiting} records waiting, at most "
                    f"{RESEND_MAX_QUEUED}): ask again once it has drained")
            self._resend = merged
            self.counters["resend_requested"] += len(kept)
            self._new_records.set()  # wake the drain
        return ResendPlan(resent=len(kept), pending=len(present) - len(kept),
                          missing=tuple(missing), missing_records=missing_records,
                          last_made=self._last_seq)

    def _resend_scan_sync(self, first: int, last: int) -> tuple[list[int], list[int]]:
        """(seqs kept in ``sent``, seqs in either table) within the range, in order."""
        db = self._require_db()
        kept = [r[0] for r in db.execute(
            "SELECT seq FROM sent WHERE seq BETWEEN ? AND ? ORDER BY seq", (first, last))]
        waiting = [r[0] for r in db.execute(
            "SELECT seq FROM outbox WHERE seq BETWEEN ? AND ? ORDER BY seq", (first, last))]
        return kept, sorted(kept + waiting)

    async def peek_resend(self, *, limit: int) -> list[Row]:
        """The next kept records queued for a resend (oldest first); they leave the queue
        now. Empty when nothing is queued."""
        while self._resend:
            first, last = self._resend[0]
            rows = await self._call(self._peek_sent_sync, first, last, limit)
            # Taken off by value, not by position: a request may have merged meanwhile.
            done_upto = rows[-1].seq if len(rows) == limit else last
            self._resend = _remove_range(self._resend, first, done_upto)
            if rows:
                return rows
        return []

    def _peek_sent_sync(self, first: int, last: int, limit: int) -> list[Row]:
        cur = self._require_db().execute(
            "SELECT seq, stream, kind, ts, body FROM sent WHERE seq BETWEEN ? AND ? "
            "ORDER BY seq LIMIT ?", (first, last, limit))
        return [Row(*r) for r in cur]

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
        now = self._clock.now()
        cutoff = now - self._cfg.max_age_days * 86400
        dropped = await self._call(self._enforce_sync, cutoff,
                                   now - self._cfg.keep_sent_days * 86400)
        if not dropped:
            return 0
        total = sum(d.records for d in dropped)
        self.counters["dropped_records"] += total
        for summary in dropped:
            self._log.warning("outbox_dropped", **summary.to_dict())
            await self.emit_event(summary)
        return total

    def _enforce_sync(self, cutoff: float, sent_cutoff: float) -> list[DataDropped]:
        db = self._require_db()
        results: list[tuple[DataDropped, int]] = []
        gone: list[SentGone] = []  # kept acknowledged records dropped: no loss, just logged
        with self._transaction(db):
            gone += self._expire_sent(db, sent_cutoff)
            sent_bytes = self._sent_bytes - sum(g.size for g in gone)
            aged = db.execute(
                "SELECT seq, stream, ts, size FROM outbox WHERE ts < ? ORDER BY seq", (cutoff,)
            ).fetchall()
            if aged:
                db.execute("DELETE FROM outbox WHERE ts < ?", (cutoff,))
                results.append(self._summary("max_age_days", aged))
            over = self._bytes - sum(r[3] for r in aged) + sent_bytes - self._max_bytes
            # Kept acknowledged records make room first: the broker had them, nothing is lost.
            evicted = self._evict_sent(db, over, "max_mb")
            if evicted is not None:
                gone.append(evicted)
                over -= evicted.size
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
        for g in gone:
            self._sent_rows -= g.records
            self._sent_bytes -= g.size
            self.counters["sent_expired"] += g.records
            self._log.info("outbox_sent_expired", reason=g.reason, records=g.records,
                           first_seq=g.first_seq, last_seq=g.last_seq)
        return [group for group, _ in results]

    def _expire_sent(self, db: sqlite3.Connection, cutoff: float) -> list[SentGone]:
        """Inside the bound's transaction: drop kept records acknowledged before ``cutoff``
        (the index on ``sent_at`` finds them), then the oldest beyond ``keep_sent_mb``."""
        gone: list[SentGone] = []
        rows, size, first, last = db.execute(
            "SELECT count(*), coalesce(sum(size), 0), min(seq), max(seq) FROM sent "
            "WHERE sent_at < ?", (cutoff,)).fetchone()
        if rows:
            db.execute("DELETE FROM sent WHERE sent_at < ?", (cutoff,))
            gone.append(SentGone("keep_sent_days", rows, size, first, last))
        left = self._sent_bytes - size
        keep = self._keep_sent_bytes if self._keep_sent else 0
        evicted = self._evict_sent(db, left - keep, "keep_sent_mb")
        if evicted is not None:
            gone.append(evicted)
        return gone

    @staticmethod
    def _evict_sent(db: sqlite3.Connection, need: int, reason: str) -> SentGone | None:
        """Drop the oldest kept records until ``need`` bytes are freed (or none is left)."""
        if need <= 0:
            return None
        freed = rows = 0
        first = last = 0
        for seq, size in db.execute("SELECT seq, size FROM sent ORDER BY seq"):
            first = first or seq
            last = seq
            rows += 1
            freed += size
            if freed >= need:
                break
        if not rows:
            return None
        db.execute("DELETE FROM sent WHERE seq <= ?", (last,))
        return SentGone(reason, rows, freed, first, last)

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



def _runs(seqs: list[int]) -> list[tuple[int, int]]:
    """Sorted seqs as contiguous (first, last) runs."""
    runs: list[tuple[int, int]] = []
    for seq in seqs:
        if runs and runs[-1][1] + 1 == seq:
            runs[-1] = (runs[-1][0], seq)
        else:
            runs.append((seq, seq))
    return runs


def _add_range(ranges: list[tuple[int, int]], first: int, last: int) -> list[tuple[int, int]]:
    """``ranges`` (sorted, disjoint) with ``first``..``last`` added, merged where they touch."""
    out: list[tuple[int, int]] = []
    for a, b in sorted([*ranges, (first, last)]):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _remove_range(ranges: list[tuple[int, int]], first: int, last: int) -> list[tuple[int, int]]:
    """``ranges`` without ``first``..``last``."""
    out: list[tuple[int, int]] = []
    for a, b in ranges:
        if b < first or a > last:
            out.append((a, b))
            continue
        if a < first:
            out.append((a, first - 1))
        if b > last:
            out.append((last + 1, b))
    return out
