"""The durable outbox against a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from busd.clock import ManualClock
from busd.config import OutboxConfig
from telemetry.outbox import Outbox, OutboxClosed, PeekRange


def make(tmp_path: Path, **cfg: Any) -> Outbox:
    return Outbox(path=tmp_path / "outbox.sqlite", clock=ManualClock(), config=OutboxConfig(**cfg))


async def test_seq_is_contiguous_across_reopen_even_when_empty(tmp_path: Path) -> None:
    async with make(tmp_path) as box:
        assert await box.append("event", "a", {"n": 1}) == 1
        assert await box.append("event", "b", {"n": 2}) == 2
        await box.ack([1, 2])
        assert box.rows == 0
    async with make(tmp_path) as box:
        # The table is empty, yet numbering continues: max(seq) alone would restart at 1.
        assert await box.append("event", "c", {}) == 3
        rows = await box.peek(after_seq=0, limit=10)
        assert [r.seq for r in rows] == [3]


async def test_telemetry_is_group_committed_before_the_next_event(tmp_path: Path) -> None:
    async with make(tmp_path) as box:
        box.add_telemetry({"values": {"battery.soc": 90.0}}, full=True)
        box.add_telemetry({"values": {"battery.soc": 89.9}}, full=False)
        assert box.last_seq == 0  # not committed yet: no number, so no gap if lost
        seq = await box.append("event", "visit_started", {"stop": "jersika"})
        assert seq == 3
        rows = await box.peek(after_seq=0, limit=10)
        assert [(r.seq, r.stream) for r in rows] == [
            (1, "telemetry"), (2, "telemetry"), (3, "event")]
        assert json.loads(rows[0].body) == {"values": {"battery.soc": 90.0}}


async def test_close_commits_buffered_telemetry(tmp_path: Path) -> None:
    box = make(tmp_path)
    await box.open()
    box.add_telemetry({"values": {}}, full=True)
    await box.close()
    with sqlite3.connect(tmp_path / "outbox.sqlite") as db:
        assert db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 1
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(OutboxClosed):
        await box.append("event", "x", {})


async def test_peek_is_oldest_first_and_ack_deletes(tmp_path: Path) -> None:
    async with make(tmp_path) as box:
        for i in range(10):
            await box.append("event", "e", {"i": i})
        first = await box.peek(after_seq=0, limit=4)
        assert [r.seq for r in first] == [1, 2, 3, 4]
        assert [r.seq for r in await box.peek(after_seq=4, limit=3)] == [5, 6, 7]
        await box.ack([1, 2, 3, 4])
        await box.ack([6, 8])
        assert [r.seq for r in await box.peek(after_seq=0, limit=100)] == [5, 7, 9, 10]
        assert box.rows == 4


async def test_peek_first_gives_the_first_range_holding_unacknowledged_records(
    tmp_path: Path,
) -> None:
    async with make(tmp_path) as box:
        for i in range(10):
            await box.append("event", "e", {"i": i})
        await box.ack([8, 9, 10])
        live, backlog = PeekRange(after_seq=7, limit=4), PeekRange(after_seq=0, upto=5, limit=2)
        # Records 8..10 are acknowledged: the live range is empty, the backlog's comes.
        found, rows = await box.peek_first([live, backlog])
        assert (found, [r.seq for r in rows]) == (1, [1, 2])
        # The first range wins when it holds any (what the drain does: live first).
        found, rows = await box.peek_first([PeekRange(after_seq=5, limit=4), backlog])
        assert (found, [r.seq for r in rows]) == (0, [6, 7])
        await box.ack([1, 2, 3, 4, 5])
        assert await box.peek_first([live, backlog]) == (-1, [])


async def test_wait_new_wakes_on_commit(tmp_path: Path) -> None:
    import asyncio

    async with make(tmp_path) as box:
        async def rows_when_woken() -> int:
            await box.wait_new(0)
            return box.rows

        waiter = asyncio.create_task(rows_when_woken())
        await box.append("event", "e", {})
        async with asyncio.timeout(2):
            # It woke for the commit, not before it (the record was not there yet).
            assert await waiter == 1


async def test_over_size_drops_telemetry_deltas_first_then_keyframes_then_events(
    tmp_path: Path,
) -> None:
    async with make(tmp_path, max_mb=0.01) as box:  # about 10 kB
        await box.append("event", "first", {"pad": "x" * 100})
        for i in range(200):
            box.add_telemetry({"pad": "y" * 40, "i": i}, full=i % 10 == 0)
        await box.flush()
        await box.append("event", "last", {"pad": "x" * 100})
        assert box.bytes > 10 * 1024
        dropped = await box.enforce_bounds()
        assert dropped > 0
        assert box.bytes <= 10 * 1024 + 450  # plus the data_dropped event itself
        rows = await box.peek(after_seq=0, limit=1000)
        kinds = [r.kind for r in rows]
        assert kinds[0] == "first" and "last" in kinds  # events survive
        assert kinds[-1] == "data_dropped"
        samples = [json.loads(r.body)["i"] for r in rows if r.stream == "telemetry"]
        # The oldest deltas went first; every keyframe is still there.
        missing = sorted(set(range(200)) - set(samples))
        deltas = [i for i in range(200) if i % 10]
        assert missing == deltas[: len(missing)]
        report = json.loads(rows[-1].body)
        assert report["reason"] == "max_mb"
        assert report["records"] == dropped
        assert report["by_stream"] == {"telemetry": dropped}


async def test_over_age_drops_and_reports(tmp_path: Path) -> None:
    box = make(tmp_path, max_age_days=1)
    clock = box._clock
    assert isinstance(clock, ManualClock)
    async with box:
        await box.append("event", "old", {})
        await clock.advance(2 * 86400)
        await box.append("event", "new", {})
        assert await box.enforce_bounds() == 1
        rows = await box.peek(after_seq=0, limit=10)
        assert [r.kind for r in rows] == ["new", "data_dropped"]
        assert json.loads(rows[1].body)["first_seq"] == 1


async def test_bad_kind_is_refused(tmp_path: Path) -> None:
    async with make(tmp_path) as box:
        for bad in ("", "a/b", "#", "x+"):
            with pytest.raises(ValueError):
                await box.append("event", bad, {})
        with pytest.raises(ValueError):
            await box.append("event", "nan", {"v": float("nan")})
