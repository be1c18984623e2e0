from __future__ import annotations

import asyncio

import pytest

from busd import signals as sig
from busd.clock import ManualClock
from busd.state import VehicleState


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def state(clock: ManualClock) -> VehicleState:
    return VehicleState(clock)


def test_value_unit_timestamp_and_source(state: VehicleState, clock: ManualClock) -> None:
    state.update(sig.BATTERY_SOC, 81.5, source="can")
    view = state.view(sig.BATTERY_SOC)
    assert (view.value, view.unit, view.source, view.stale) == (81.5, "%", "can", False)
    assert view.ts == clock.now()
    assert state.value(sig.BATTERY_SOC) == 81.5


async def test_signal_past_its_freshness_reads_stale(
    state: VehicleState, clock: ManualClock
) -> None:
    state.update(sig.BATTERY_SOC, 80.0, source="can")
    limit = state.freshness(sig.BATTERY_SOC)
    await clock.advance(limit - 0.01)
    assert state.value(sig.BATTERY_SOC) == 80.0
    await clock.advance(0.02)
    view = state.view(sig.BATTERY_SOC)
    assert view.stale and view.value == 80.0 and view.fresh_value is None
    assert state.value(sig.BATTERY_SOC) is None


async def test_value_is_the_views_fresh_value_at_every_age(
    state: VehicleState, clock: ManualClock,
) -> None:
    # value() reads the reading directly (no view built): the same answer as the view,
    # the freshness limit itself included, and the same KeyError for an unknown name.
    assert state.value(sig.BATTERY_SOC) is None is state.view(sig.BATTERY_SOC).fresh_value
    state.update(sig.BATTERY_SOC, 80.0, source="can")
    limit = state.freshness(sig.BATTERY_SOC)
    for step in (0.0, limit / 2, limit / 2, 0.001):
        await clock.advance(step)
        assert state.value(sig.BATTERY_SOC) == state.view(sig.BATTERY_SOC).fresh_value
    assert state.value(sig.BATTERY_SOC) is None
    with pytest.raises(KeyError):
        state.value("no.such.signal")
    with pytest.raises(KeyError):
        state.view("no.such.signal")


def test_never_received_is_stale(state: VehicleState) -> None:
    view = state.view(sig.GPS_LAT)
    assert view.stale and view.value is None and view.age_s is None


def test_freshness_override(clock: ManualClock) -> None:
    state = VehicleState(clock, freshness_overrides={sig.VEHICLE_SPEED: 9.0})
    assert state.freshness(sig.VEHICLE_SPEED) == 9.0
    with pytest.raises(KeyError):
        VehicleState(clock, freshness_overrides={"no.such": 1.0})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (sig.BATTERY_SOC, "high"),
        (sig.BATTERY_SOC, float("nan")),
        (sig.BATTERY_SOC, float("inf")),  # update's fast path for floats must refuse it too
        (sig.BATTERY_SOC, -float("inf")),
        (sig.CHARGER_STATE, "exploding"),
        (sig.LIFT_CYCLES, 2.5),
        (sig.CHARGER_PLUGGED, "yes"),
    ],
)
def test_bad_values_are_refused(state: VehicleState, name: str, value: object) -> None:
    with pytest.raises(ValueError):
        state.update(name, value, source="test")
    assert state.view(name).value is None


async def test_a_frame_records_in_order_and_skips_only_the_values_that_do_not_fit(
    state: VehicleState, clock: ManualClock
) -> None:
    watcher = state.watch([sig.BATTERY_SOC, sig.VEHICLE_SPEED, sig.CHARGER_STATE])
    errors = state.update_frame(
        [(sig.BATTERY_SOC, 80.0), (sig.VEHICLE_SPEED, float("nan")), (sig.CHARGER_STATE, "idle"),
         (sig.BATTERY_SOC, 79.5), (sig.CHARGER_PLUGGED, 1.0)],
        source="can", ts=123.0, received=clock.monotonic(),
    )
    assert [str(e) for e in errors] == ["vehicle.speed got a non-finite number"]
    assert state.value(sig.BATTERY_SOC) == 79.5  # the later value wins
    assert state.value(sig.CHARGER_STATE) == "idle" and state.value(sig.CHARGER_PLUGGED) is True
    assert state.view(sig.BATTERY_SOC).ts == 123.0 and state.view(sig.VEHICLE_SPEED).value is None
    assert watcher.pending() == {sig.BATTERY_SOC, sig.CHARGER_STATE}
    assert state.updates == 4


def test_power_is_derived_once_a_frame_is_in(state: VehicleState, clock: ManualClock) -> None:
    state.update_frame([(sig.BATTERY_VOLTAGE, 600.0), (sig.BATTERY_CURRENT, 10.0)],
                       source="can", ts=1.0, received=clock.monotonic())
    watcher = state.watch([sig.BATTERY_POWER])
    # A new voltage is never paired with the previous frame's current.
    state.update_frame([(sig.BATTERY_VOLTAGE, 500.0), (sig.BATTERY_CURRENT, 20.0)],
                       source="can", ts=2.0, received=clock.monotonic())
    assert state.value(sig.BATTERY_POWER) == pytest.approx(10.0)
    assert watcher.pending() == {sig.BATTERY_POWER} and state.updates == 6  # 4 inputs, 2 powers
    # A batch of frames derives power once per frame, each from its own pair.
    state.update_frames([[(sig.BATTERY_VOLTAGE, 400.0), (sig.BATTERY_CURRENT, 5.0)],
                         [(sig.BATTERY_CURRENT, 50.0), (sig.BATTERY_VOLTAGE, 300.0)]],
                        source="can", ts=3.0, received=clock.monotonic())
    assert state.value(sig.BATTERY_POWER) == pytest.approx(15.0) and state.updates == 12


def test_unknown_signal_is_refused(state: VehicleState) -> None:
    with pytest.raises(KeyError):
        state.update("battery.flux", 1.0, source="test")


def test_power_is_derived_from_voltage_and_current(state: VehicleState) -> None:
    state.update(sig.BATTERY_VOLTAGE, 600.0, source="can")
    assert state.view(sig.BATTERY_POWER).value is None
    state.update(sig.BATTERY_CURRENT, -50.0, source="can")  # charging
    assert state.value(sig.BATTERY_POWER) == pytest.approx(-30.0)


class PowerLog(VehicleState):
    """Records every battery.power value written, so a momentary one is seen too."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.powers: list[float] = []

    def update(self, name: str, value: object, *, source: str, ts: float | None = None,
               received: float | None = None) -> None:
        super().update(name, value, source=source, ts=ts, received=received)
        if name == sig.BATTERY_POWER:
            self.powers.append(float(value))  # type: ignore[arg-type]


async def test_a_junk_frame_never_pairs_with_the_last_frames_current(clock: ManualClock) -> None:
    # The 126 kW spike: a source sends voltage and current in one frame (BMS_Pack,
    # Tesla 0x132); a junk frame under the same id carried a voltage of 6300 V
    # and no current. It was multiplied by the previous frame's 20 A.
    state = PowerLog(clock)
    with state.frame(source="can"):
        state.update(sig.BATTERY_VOLTAGE, 630.0, source="can")
        state.update(sig.BATTERY_CURRENT, 20.0, source="can")
    await clock.advance(0.02)  # well within any tolerance: the pairing is by frame
    with state.frame(source="can"):
        state.update(sig.BATTERY_VOLTAGE, 6300.0, source="can")
    assert state.powers == [pytest.approx(12.6)]
    assert state.power_unpaired == 1
    await clock.advance(0.1)
    with state.frame(source="can"):  # a good frame pairs again
        state.update(sig.BATTERY_VOLTAGE, 631.0, source="can")
        state.update(sig.BATTERY_CURRENT, 10.0, source="can")
    assert state.powers == [pytest.approx(12.6), pytest.approx(6.31)]


def test_a_frame_with_both_updates_both_before_deriving_power(clock: ManualClock) -> None:
    state = PowerLog(clock)
    with state.frame(source="can"):
        state.update(sig.BATTERY_VOLTAGE, 630.0, source="can")
        state.update(sig.BATTERY_CURRENT, 20.0, source="can")
    with state.frame(source="can"):  # junk in both: the new voltage meets the new current
        state.update(sig.BATTERY_VOLTAGE, 6300.0, source="can")
        state.update(sig.BATTERY_CURRENT, 0.0, source="can")
    assert state.powers == [pytest.approx(12.6), 0.0]  # never 6300 V x 20 A = 126 kW


async def test_separate_frames_pair_only_within_the_stated_tolerance(
    state: VehicleState, clock: ManualClock
) -> None:
    from busd.state import POWER_PAIR_TOLERANCE_S

    with state.frame(source="can"):
        state.update(sig.BATTERY_VOLTAGE, 600.0, source="can")
    await clock.advance(POWER_PAIR_TOLERANCE_S / 2)
    with state.frame(source="can"):
        state.update(sig.BATTERY_CURRENT, 50.0, source="can")
    assert state.value(sig.BATTERY_POWER) == pytest.approx(30.0)
    await clock.advance(POWER_PAIR_TOLERANCE_S * 3)  # the current is of another instant now
    with state.frame(source="can"):
        state.update(sig.BATTERY_VOLTAGE, 6000.0, source="can")
    assert state.value(sig.BATTERY_POWER) == pytest.approx(30.0)
    assert state.power_unpaired == 1


async def test_watcher_sees_changes_not_repeats(state: VehicleState) -> None:
    watcher = state.watch([sig.BATTERY_SOC, sig.VEHICLE_SPEED])
    state.update(sig.BATTERY_SOC, 70.0, source="can")
    state.update(sig.GPS_LAT, 56.35, source="gps")  # not watched
    assert watcher.pending() == {sig.BATTERY_SOC}
    state.update(sig.BATTERY_SOC, 70.0, source="can")  # same value: not a change
    assert watcher.pending() == set()


async def test_watcher_wakes_on_update_without_polling(state: VehicleState) -> None:
    watcher = state.watch([sig.VEHICLE_SPEED])

    async def woken() -> tuple[set[str], object]:
        changed = await watcher.changed()
        return changed, state.value(sig.VEHICLE_SPEED)

    waiting = asyncio.create_task(woken())
    await asyncio.sleep(0)  # the watcher starts waiting
    state.update(sig.VEHICLE_SPEED, 42.0, source="can")
    async with asyncio.timeout(1):
        # Woken by the update, not before it (the value was not there yet).
        assert await waiting == ({sig.VEHICLE_SPEED}, 42.0)


async def test_each_watcher_has_its_own_view(state: VehicleState) -> None:
    first, second = state.watch(), state.watch()
    state.update(sig.BATTERY_SOC, 50.0, source="can")
    assert first.pending() == {sig.BATTERY_SOC}
    assert second.pending() == {sig.BATTERY_SOC}


async def test_going_stale_notifies_watchers(state: VehicleState, clock: ManualClock) -> None:
    state.update(sig.VEHICLE_SPEED, 30.0, source="can")
    watcher = state.watch([sig.VEHICLE_SPEED])
    waiting = asyncio.create_task(watcher.changed())
    await clock.advance(state.freshness(sig.VEHICLE_SPEED) + 0.1)
    assert state.check_freshness() == [sig.VEHICLE_SPEED]
    async with asyncio.timeout(1):
        assert await waiting == {sig.VEHICLE_SPEED}
    assert state.check_freshness() == []  # reported once
    state.update(sig.VEHICLE_SPEED, 30.0, source="can")  # fresh again, same value
    assert watcher.pending() == {sig.VEHICLE_SPEED}


async def test_wait_for_condition_with_timeout(state: VehicleState) -> None:
    async def later() -> None:
        await asyncio.sleep(0)
        state.update(sig.BATTERY_SOC, 20.0, source="can")

    task = asyncio.create_task(later())
    await state.wait_for(lambda s: s.value(sig.BATTERY_SOC) == 20.0, timeout=1)
    await task
    with pytest.raises(TimeoutError):
        await state.wait_for(lambda s: s.value(sig.BATTERY_SOC) == 99.0, timeout=0.05)


def test_catalogue_has_every_product_signal() -> None:
    expected = {
        "battery": {"soc", "voltage", "current", "power", "temp_min", "temp_max", "cell_v_min",
                    "cell_v_max", "soh", "fault"},
        "charger": {"plugged", "state", "power", "session_energy", "fault_code"},
        "vehicle": {"speed", "odometer", "ready", "parking_brake", "door_open", "outside_temp",
                    "hvac_power", "aux_voltage"},
        "gps": {"fix", "lat", "lon", "speed", "heading", "time", "hdop", "satellites"},
        "lift": {"state", "interlock", "door_open", "cycles"},
    }
    names = {f"{group}.{leaf}" for group, leaves in expected.items() for leaf in leaves}
    assert names == set(sig.SIGNALS)
    for spec in sig.SIGNALS.values():
        assert spec.freshness_s > 0 and spec.vss.startswith("Vehicle.")
