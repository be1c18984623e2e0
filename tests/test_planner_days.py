"""Ten simulated days against the oracle (issue 17): safe days, and an oracle never beaten."""

from __future__ import annotations

from simulators.days.evaluation import run


def test_ten_days_end_above_the_reserve_and_the_oracle_is_never_beaten() -> None:
    figures, days = run(10, seed=3, warmup_days=5)
    assert len(days) == 20 and figures.days == 10
    for day in days:
        label = f"{day.bus} {day.spec.label()}"
        assert day.end_margin >= -1.0, label
        assert day.oracle.best.safe, label
        assert day.oracle_not_worse(), label
        # what the bus served fits the day: never more than planned, never an unknown stop
        assert set(day.outcome.served) <= {s.id for s in day.oracle.instance.stops}, label
    assert figures.days_below_reserve == 0 and figures.oracle_violations == 0
    assert 0 < figures.minutes_ratio <= 1.2
