"""The rate rule's four promises (issue 13), as properties over generated frame streams."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.can.plausibility import CONFIRM_FRAMES, RateGate

MAX_RATE = 50.0  # V/s
MAX_STEP = 40.0  # V a confirmed step may jump at once

periods = st.floats(0.01, 0.5)
levels = st.floats(300.0, 800.0)
noise = st.lists(st.floats(-0.2, 0.2), min_size=CONFIRM_FRAMES, max_size=60)


def gate() -> RateGate:
    return RateGate(MAX_RATE, MAX_STEP)


def warm(g: RateGate, level: float, period: float, frames: int = CONFIRM_FRAMES) -> float:
    """Establish ``level`` as the reference; returns the time of the last frame."""
    t = 0.0
    for i in range(frames):
        t = i * period
        g.admit(level, t)
    assert g.reference == level
    return t


@settings(max_examples=200, deadline=None)
@given(levels, st.floats(-MAX_STEP, MAX_STEP), periods, st.integers(CONFIRM_FRAMES, 20))
def test_a_true_step_is_adopted_within_k_frames(
    level: float, step: float, period: float, frames: int
) -> None:
    g = gate()
    t = warm(g, level, period)
    admitted = []
    for i in range(1, frames + 1):
        admitted.append(g.admit(level + step, t + i * period))
    assert True in admitted[:CONFIRM_FRAMES]
    assert all(admitted[admitted.index(True):])  # and kept from then on


@settings(max_examples=200, deadline=None)
@given(levels, noise, periods, st.lists(st.floats(0.0, 100.0), min_size=1, max_size=60),
       st.booleans())
def test_junk_alternating_one_to_one_with_good_values_is_never_published(
    level: float, wiggle: list[float], period: float, junk: list[float], junk_first: bool
) -> None:
    # Good values drift slowly (within the rate); junk is anything far from them
    # (a second layout under the same id, 0 V from a sleeping module).
    g = gate()
    t = 0.0
    good = [level + w for w in wiggle]
    for i in range(max(len(good), len(junk))):
        pair = [("good", good[i % len(good)]), ("junk", junk[i % len(junk)])]
        for kind, value in reversed(pair) if junk_first else pair:
            published = g.admit(value, t)
            assert not (published and kind == "junk"), (i, value)
            t += period


@settings(max_examples=200, deadline=None)
@given(levels, st.floats(0.0, 100.0), noise, periods)
def test_a_junk_first_value_does_not_anchor_the_rule(
    level: float, junk: float, wiggle: list[float], period: float
) -> None:
    g = gate()
    assert not g.admit(junk, 0.0)  # never published, never the reference
    admitted = [g.admit(level + w, (i + 1) * period) for i, w in enumerate(wiggle)]
    assert True in admitted[:CONFIRM_FRAMES]
    assert all(admitted[CONFIRM_FRAMES - 1:])
    assert g.reference is not None and abs(g.reference - level) < 1.0


@settings(max_examples=200, deadline=None)
@given(st.floats(60.0, 100.0), st.floats(0.0, 10.0), st.integers(1, 1000))
def test_a_flood_of_consistent_frames_cannot_carry_a_value_past_max_step(
    start: float, end: float, frames: int
) -> None:
    # SOC 81 % -> 0 % within a second: never adopted, however many frames repeat it.
    g = RateGate(max_rate=2.0, max_step=10.0)  # % per second; % per confirmed step
    t = warm(g, start, 0.1)
    for i in range(1, frames + 1):
        assert not g.admit(end, t + i / frames)  # all within one second
    assert g.reference == start


def test_silence_makes_the_next_value_another_power_on() -> None:
    g = gate()
    warm(g, 650.0, 0.1)
    # An hour asleep: the rate would allow anything now, so the reference is forgotten
    # and a junk wake-up value is not published on its own.
    assert not g.admit(0.0, 3600.0)
    assert [g.admit(648.0, 3600.0 + i / 10) for i in range(1, 4)] == [False, False, True]


def test_a_step_is_only_adopted_at_the_rate_without_max_step() -> None:
    g = RateGate(max_rate=2.0)
    t = warm(g, 80.0, 0.1)
    assert not any(g.admit(70.0, t + i / 10) for i in range(1, 20))  # 10 % needs 5 s
    assert g.admit(70.0, t + 5.01)


def test_max_step_without_max_rate_is_a_config_error() -> None:
    import pytest
    from pydantic import ValidationError

    from busd.config import SignalMapping

    with pytest.raises(ValidationError, match="max_step bounds the max_rate rule"):
        SignalMapping(message="BMS_Status", signal="StateOfCharge", target="battery.soc",
                      max_step=10.0)
