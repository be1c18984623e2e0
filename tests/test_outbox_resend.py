"""Acknowledged records kept for ``cmd/resend``: the window, the bound, the answer.

Real SQLite outbox, the real command dispatcher, a manual clock.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from busd.clock import ManualClock
from busd.config import OutboxConfig
from telemetry.commands import CommandDispatcher
from telemetry.outbox import RESEND_MAX_QUEUED, Outbox, ResendRefused

BUS = "bus-01"


def make(tmp_path: Path, **cfg: Any) -> Outbox:
    return Outbox(path=tmp_path / "outbox.sqlite", clock=ManualClock(), config=OutboxConfig(**cfg))


async def sent_through(box: Outbox, n: int, *, pad: str = "") -> None:
    """Append ``n`` events and acknowledge them, as the uplink does after each PUBACK."""
    first = box.last_seq + 1
    for i in range(n):
        await box.append("event", "tick", {"i": first + i, "pad": pad})
    await box.ack(range(first, first + n))
    await box.purge()


def resend_cmd(first: object, last: object, *, id: str = "r1") -> bytes:
    return json.dumps({"schema": "busd.cmd.resend/1", "bus": BUS, "ts": "2026-01-01T00:00:00.000Z",
                       "id": id, "first_seq": first, "last_seq": last}).encode()


def manual(box: Outbox) -> ManualClock:
    """The outbox's clock, which :func:`make` made manual."""
    clock = box._clock
    assert isinstance(clock, ManualClock)
    return clock


class NoMeta:
    """Resend keeps no setting of its own; only the answers, so a duplicate is not run."""

    def __init__(self) -> None:
        self.meta: dict[str, str] = {}

    async def get_meta(self, key: str) -> str | None:
        return self.meta.get(key)

    async def keep_meta(self, key: str, value: str) -> None:
        assert key == "cmd.answers", key
        self.meta[key] = value


def dispatcher(box: Outbox) -> CommandDispatcher:
    return CommandDispatcher(bus_id=BUS, clock=box._clock, store=NoMeta(), resend=box)


async def test_acknowledged_records_are_kept_out_of_the_drain_and_resent_as_they_were(
    tmp_path: Path,
) -> None:
    async with make(tmp_path) as box:
        await sent_through(box, 5)
        before = {r.seq: r for r in await box.peek_resend(limit=10)}  # nothing queued yet
        assert before == {}
        assert box.rows == 0 and box.sent_rows == 5
        # The drain never sees them again...
        assert await box.peek(after_seq=0, limit=10) == []
        plan = await box.request_resend(2, 4)
        assert (plan.resent, plan.pending, plan.missing, plan.missing_records) == (3, 0, (), 0)
        rows = await box.peek_resend(limit=10)
        # ...but a resend gives them back whole: seq, ts, kind and body as first committed.
        assert [r.seq for r in rows] == [2, 3, 4]
        assert [json.loads(r.body)["i"] for r in rows] == [2, 3, 4]
        assert all(r.stream == "event" and r.kind == "tick" for r in rows)
        assert await box.peek_resend(limit=10) == []  # once
    # Kept across a restart, counted again on open.
    async with make(tmp_path) as box:
        assert box.sent_rows == 5 and box.rows == 0
        assert (await box.request_resend(1, 5)).resent == 5


async def test_a_resend_keeps_the_original_ts(tmp_path: Path) -> None:
    box = make(tmp_path)
    async with box:
        await box.append("event", "tick", {})
        made = (await box.peek(after_seq=0, limit=1))[0].ts
        await manual(box).advance(3600)
        await box.ack([1])
        await box.purge()
        await box.request_resend(1, 1)
        assert [r.ts for r in await box.peek_resend(limit=5)] == [made]


async def test_asking_twice_queues_once_and_ranges_merge(tmp_path: Path) -> None:
    async with make(tmp_path) as box:
        await sent_through(box, 10)
        await box.request_resend(2, 6)
        await box.request_resend(2, 6)
        await box.request_resend(5, 8)
        assert box.resend_waiting == 7
        seqs = []
        while rows := await box.peek_resend(limit=3):
            seqs += [r.seq for r in rows]
        assert seqs == [2, 3, 4, 5, 6, 7, 8]


async def test_the_answer_tells_what_is_pending_and_what_is_gone(tmp_path: Path) -> None:
    async with make(tmp_path, keep_sent_days=1) as box:
        await sent_through(box, 4)  # 1-4 kept
        await manual(box).advance(2 * 86400)
        await box.enforce_bounds()
        await sent_through(box, 3)  # 5-7 kept
        await box.append("event", "tick", {})  # 8 not yet acknowledged
        plan = await box.request_resend(2, 10)
        assert plan.resent == 3 and plan.pending == 1
        # 2-4 went with the window; 9-10 were never made.
        assert plan.missing == ((2, 4), (9, 10)) and plan.missing_records == 5
        # The unacknowledged record goes with the drain, not with the resend.
        assert [r.seq for r in await box.peek_resend(limit=10)] == [5, 6, 7]


async def test_sent_records_older_than_keep_sent_days_are_deleted_without_a_loss_report(
    tmp_path: Path,
) -> None:
    async with make(tmp_path, keep_sent_days=2) as box:
        await sent_through(box, 3)
        await manual(box).advance(86400)
        await sent_through(box, 2)
        await manual(box).advance(1.5 * 86400)  # the first three are 2.5 days old, the rest 1.5
        assert await box.enforce_bounds() == 0  # nothing the office lacks: no data_dropped
        assert box.sent_rows == 2 and box.counters["sent_expired"] == 3
        assert await box.peek(after_seq=0, limit=10) == []
        with sqlite3.connect(tmp_path / "outbox.sqlite") as db:
            assert [r[0] for r in db.execute("SELECT seq FROM sent ORDER BY seq")] == [4, 5]


async def test_a_range_older_than_the_window_is_answered_no_longer_on_the_bus(
    tmp_path: Path,
) -> None:
    async with make(tmp_path, keep_sent_days=1) as box:
        await sent_through(box, 6)
        await manual(box).advance(2 * 86400)
        await box.enforce_bounds()
        result = await dispatcher(box).handle("resend", resend_cmd(2, 5))
        assert not result.accepted
        assert result.reason.startswith("seq 2-5 is no longer on the bus")
        assert result.detail.resent == 0 and result.detail.missing == [(2, 5)]
        assert result.detail.missing_records == 4
        assert await box.peek_resend(limit=10) == []
        # A range the bus never reached is not called lost.
        ahead = await dispatcher(box).handle("resend", resend_cmd(7, 9))
        assert ahead.reason == "seq 7-9 was never made: this bus's last record is 6"


async def test_keep_sent_mb_drops_the_oldest_sent_records(tmp_path: Path) -> None:
    async with make(tmp_path, keep_sent_mb=0.002) as box:  # about 2 kB
        await sent_through(box, 20, pad="x" * 200)  # about 4.4 kB
        await box.enforce_bounds()
        assert 0 < box.sent_bytes <= 0.002 * 1024 * 1024
        with sqlite3.connect(tmp_path / "outbox.sqlite") as db:
            kept = [r[0] for r in db.execute("SELECT seq FROM sent ORDER BY seq")]
        assert kept == list(range(21 - len(kept), 21))  # the newest stay
        assert box.counters["sent_expired"] == 20 - len(kept)


async def test_when_room_is_needed_sent_records_go_before_any_unsent_one(tmp_path: Path) -> None:
    async with make(tmp_path, max_mb=0.01) as box:  # about 10 kB; keep_sent_mb yields to it
        await sent_through(box, 30, pad="s" * 200)  # about 6.6 kB kept
        for i in range(20):
            box.add_telemetry({"pad": "t" * 200, "i": i}, full=False)  # about 4.4 kB unsent
        await box.flush()
        limit = int(0.01 * 1024 * 1024)
        assert box.bytes + box.sent_bytes > limit
        assert await box.enforce_bounds() == 0  # no unsent record thinned, no data_dropped
        assert box.bytes + box.sent_bytes <= limit
        assert box.sent_rows < 30
        unsent = await box.peek(after_seq=0, limit=100)
        assert [json.loads(r.body)["i"] for r in unsent] == list(range(20))
        # With nothing kept left to drop, unsent telemetry is thinned as before.
        for i in range(40):
            box.add_telemetry({"pad": "t" * 200, "i": 20 + i}, full=False)
        await box.flush()
        assert await box.enforce_bounds() > 0
        assert box.sent_rows == 0


async def test_keeping_nothing_deletes_at_puback(tmp_path: Path) -> None:
    async with make(tmp_path, keep_sent_days=0) as box:
        await sent_through(box, 3)
        assert box.sent_rows == 0
        with sqlite3.connect(tmp_path / "outbox.sqlite") as db:
            assert db.execute("SELECT count(*) FROM sent").fetchone()[0] == 0
        assert (await box.request_resend(1, 3)).missing == ((1, 3),)


async def test_the_resend_queue_is_bounded(tmp_path: Path) -> None:
    async with make(tmp_path) as box:
        await sent_through(box, 2)
        box._resend = [(10**7, 10**7 + RESEND_MAX_QUEUED - 2)]  # nearly full
        with pytest.raises(ResendRefused, match="the resend queue is full"):
            await box.request_resend(1, 2)
        result = await dispatcher(box).handle("resend", resend_cmd(1, 2))
        assert not result.accepted and result.reason.startswith("the resend queue is full")


@pytest.mark.parametrize(("first", "last", "reason"), [
    (5, 3, "first_seq 5 is above last_seq 3"),
    (1, 100_001, "the range holds 100001 records, at most 100000"),
    (-4, 3, "first_seq: Input should be greater than or equal to 1"),
    (0, 0, "first_seq: Input should be greater than or equal to 1"),
    (1, 2**70, "last_seq: Input should be less than or equal to"),
    ("1", 3, "first_seq: Input should be a valid integer"),
    (1.5, 3, "first_seq: Input should be a valid integer"),
    (1, True, "last_seq: Input should be a valid integer"),
])
async def test_hostile_ranges_are_refused_with_the_reason(
    tmp_path: Path, first: object, last: object, reason: str,
) -> None:
    async with make(tmp_path) as box:
        await sent_through(box, 3)
        result = await dispatcher(box).handle("resend", resend_cmd(first, last))
        assert not result.accepted
        assert result.reason.startswith("invalid command: ") and reason in result.reason
        assert box.resend_waiting == 0


async def test_a_bus_without_a_resend_source_says_so(tmp_path: Path) -> None:
    d = CommandDispatcher(bus_id=BUS, clock=ManualClock(), store=NoMeta())
    result = await d.handle("resend", resend_cmd(1, 2))
    assert not result.accepted and result.reason == "this bus keeps no sent records to resend"


def test_the_window_is_validated() -> None:
    with pytest.raises(ValidationError, match="keep_sent_mb"):
        OutboxConfig(max_mb=40, keep_sent_mb=50)
    with pytest.raises(ValidationError, match="keep_sent_days"):
        OutboxConfig(keep_sent_days=-1)
    assert OutboxConfig(max_mb=10).keep_sent_mb == 50  # the default yields to a small bound


async def test_a_queued_resend_wakes_the_drain_unless_it_waits_only_for_new_records(
        tmp_path: Path) -> None:
    # The uplink waits for new records alone while the backlog's pace holds resends back:
    # a queued resend must not wake it over and over.
    import asyncio

    async with make(tmp_path, keep_sent_days=7) as box:
        await sent_through(box, 3)
        await box.request_resend(1, 3)
        async with asyncio.timeout(2):
            await box.wait_new(box.last_seq)  # a resend is waiting: at once
        waiter = asyncio.create_task(box.wait_new(box.last_seq, resends=False))
        await asyncio.sleep(0)
        assert not waiter.done()
        seq = await box.append("event", "tick", {"new": True})
        async with asyncio.timeout(2):
            await waiter
        assert seq == box.last_seq
