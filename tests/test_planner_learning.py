"""The tracker's completed legs and visits teach the planner's energy model."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from busd.config import PlannerConfig
from busd.event_catalog import LegCompleted
from busd.files import write_atomic
from busd.plan import Plan
from busd.planner import component, energy
from busd.planner.energy import EnergyModel
from busd.planner.learning import EnergyLearner
from tests.monitoring_helpers import leg_event, visit_ended
from tests.test_planner_component import ctx, make


def leg(km: float, out: float, temp: float, **extra: object) -> LegCompleted:
    return leg_event(id="leg-1", km=km, out_kwh=out, temp_c=temp, **extra)


async def test_a_hungrier_leg_raises_the_driving_estimate_and_is_saved(tmp_path: Path) -> None:
    planner, _state, _clock, _sink = make(tmp_path)
    emitter = EnergyLearner(planner=planner)
    before = planner.energy_model.drive_kwh_per_km(-12.0)
    emitter.on_event(leg(20.0, 20.0 * before * 1.4, -12.0))
    after = planner.energy_model.drive_kwh_per_km(-12.0)
    assert after > before
    await planner.flush_energy()
    saved = json.loads((tmp_path / "planner" / "energy.json").read_text())
    assert saved == planner.energy_model.to_dict()


async def test_visits_teach_on_site_power_and_gaps_teach_nothing(tmp_path: Path) -> None:
    planner, _state, _clock, _sink = make(tmp_path)
    emitter = EnergyLearner(planner=planner)
    site_before = planner.energy_model.site_kw(-12.0)
    drive_before = planner.energy_model.drive_kwh_per_km(-12.0)
    emitter.on_event(leg(20.0, 40.0, -12.0, gap_s=30.0))  # data gap: ignored
    emitter.on_event(visit_ended(place_kind="depot", duration_min=60, out_kwh=20, temp_c=-12.0))
    assert emitter.learned == 0
    assert planner.energy_model.drive_kwh_per_km(-12.0) == drive_before
    emitter.on_event(visit_ended(place_kind="stop", duration_min=90,
                             out_kwh=1.5 * site_before * 1.5, temp_c=-12.0))
    assert emitter.learned == 1
    assert planner.energy_model.site_kw(-12.0) > site_before


# --- saving the learned model --------------------------------------------------------


async def test_the_model_is_written_in_a_worker_thread_not_on_the_loop(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    planner, _state, _clock, _sink = make(tmp_path)
    threads: list[threading.Thread] = []

    def recording(*args: Any, **kwargs: Any) -> None:
        threads.append(threading.current_thread())
        write_atomic(*args, **kwargs)

    monkeypatch.setattr(component, "write_atomic", recording)
    emitter = EnergyLearner(planner=planner)
    emitter.on_event(leg(20.0, 12.0, -12.0))
    assert threads == []  # emit only took a snapshot: no file I/O on the loop
    await planner.flush_energy()
    assert len(threads) == 1 and threads[0] is not threading.main_thread()
    assert (tmp_path / "planner" / "energy.json").exists()


async def test_the_running_component_saves_lessons_and_the_last_one_at_shutdown(
    tmp_path: Path,
) -> None:
    planner, _state, _clock, _sink = make(tmp_path)
    written = threading.Event()
    real = planner._write_energy

    def signalling(seq: int, text: str) -> None:
        real(seq, text)
        written.set()

    planner._write_energy = signalling  # type: ignore[method-assign]
    task = asyncio.create_task(planner.run(ctx()))
    emitter = EnergyLearner(planner=planner)
    emitter.on_event(leg(20.0, 12.0, -12.0))
    assert await asyncio.to_thread(written.wait, 10)  # the saver task wrote it
    path = tmp_path / "planner" / "energy.json"
    assert json.loads(path.read_text()) == planner.energy_model.to_dict()
    # A lesson just before the stop is still saved.
    planner.energy_model.learn_leg(20.0, 14.0, -12.0)
    planner.save_energy()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert json.loads(path.read_text()) == planner.energy_model.to_dict()


async def test_a_reader_never_sees_half_a_file(tmp_path: Path) -> None:
    planner, _state, _clock, _sink = make(tmp_path)
    path = tmp_path / "planner" / "energy.json"
    model = planner.energy_model
    planner.save_energy()
    await planner.flush_energy()
    snapshots = {path.read_text()}
    stop = threading.Event()
    bad: list[str] = []
    reads = 0

    def reader() -> None:
        nonlocal reads
        while not stop.is_set():
            text = path.read_text()
            reads += 1
            try:
                json.loads(text)
            except ValueError:
                bad.append(text)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for k in range(60):
            model.learn_leg(20.0, 8.0 + k * 0.1, -12.0)
            planner.save_energy()
            await planner.flush_energy()
            snapshots.add(path.read_text())
    finally:
        stop.set()
        thread.join()
    assert reads > 0 and bad == []
    assert json.loads(path.read_text()) == model.to_dict()
    assert [p.name for p in path.parent.iterdir()] == ["energy.json"]  # no temporaries left


async def test_a_failed_write_leaves_the_old_file_whole_and_keeps_the_lesson(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planner, _state, _clock, _sink = make(tmp_path)
    path = tmp_path / "planner" / "energy.json"
    planner.save_energy()
    await planner.flush_energy()
    old = path.read_text()

    def power_cut(fd: int) -> None:  # the data never reaches the disk
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", power_cut)
    planner.energy_model.learn_leg(20.0, 14.0, -12.0)
    planner.save_energy()
    await planner.flush_energy()
    assert path.read_text() == old
    assert [p.name for p in path.parent.iterdir()] == ["energy.json"]
    monkeypatch.undo()
    await planner.flush_energy()  # the kept snapshot goes out with the next write
    assert json.loads(path.read_text()) == planner.energy_model.to_dict()


def test_an_older_snapshot_never_lands_over_a_newer_one(tmp_path: Path) -> None:
    planner, _state, _clock, _sink = make(tmp_path)
    planner._write_energy(2, json.dumps({"v": 2}))
    planner._write_energy(1, json.dumps({"v": 1}))  # a slow, cancelled write finishing late
    assert json.loads((tmp_path / "planner" / "energy.json").read_text()) == {"v": 2}



async def test_a_failing_loop_fails_with_its_own_error_and_stops_the_saver(tmp_path: Path) -> None:
    planner, _state, _clock, _sink = make(tmp_path)

    class Broken:
        def plan_for(self, day: date) -> Plan | None:
            raise RuntimeError("plan store unreadable")

    planner._source = Broken()
    with pytest.raises(RuntimeError, match="unreadable"):  # not an ExceptionGroup around it
        await planner.run(ctx())
    assert planner._saver is not None and planner._saver.done()


async def test_a_dead_saver_fails_the_component(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    planner, _state, _clock, _sink = make(tmp_path)

    async def broken_flush() -> None:
        raise ValueError("snapshot not serialisable")

    monkeypatch.setattr(planner, "flush_energy", broken_flush)
    planner.save_energy()
    with pytest.raises(ValueError, match="serialisable"):
        async with asyncio.timeout(10):
            await planner.run(ctx())


def test_todays_lessons_count_on_their_own_and_a_new_day_starts_afresh() -> None:
    cfg = PlannerConfig()
    model = EnergyModel(cfg)
    for _ in range(20):  # the long run: the seed was right
        model.learn_visit(60.0, model.seed_site_kw(-10.0), -10.0)
    model.start_day(date(2026, 12, 14))
    assert model.site_kw(-10.0) == pytest.approx(model.seed_site_kw(-10.0))
    # Today the heater works 30 % harder: one visit says so, and counts for most of it (the
    # long run weighs like a fraction of a lesson), where the long-run mean alone would
    # move by learn_rate.
    model.learn_visit(60.0, 1.3 * model.seed_site_kw(-10.0), -10.0)
    today = 1 + 0.3 / (1 + energy._TODAY_PRIOR_N)
    assert 1.2 < today < 1.3
    assert model.site_kw(-10.0) == pytest.approx(today * model.seed_site_kw(-10.0), rel=1e-6)
    # A restart the same day keeps today's lessons; the next day starts from the long run.
    again = EnergyModel.from_dict(cfg, model.to_dict())
    again.start_day(date(2026, 12, 14))
    assert again.site_kw(-10.0) == pytest.approx(model.site_kw(-10.0))
    again.start_day(date(2026, 12, 15))
    long_run = 1 + (1.3 - 1) * cfg.learn_rate
    assert again.site_kw(-10.0) == pytest.approx(long_run * model.seed_site_kw(-10.0), rel=1e-6)
